"""Registers the ``load`` marker (a bounded load test against the gateway stack)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "load: a bounded load test through nginx and two replicas (run it alone)"
    )
