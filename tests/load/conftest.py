"""Registers the ``load`` marker: a latency or memory bound under concurrency, run alone."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "load: a latency or memory bound under concurrency (run it alone, -n 0)"
    )
