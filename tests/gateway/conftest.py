"""Registers the ``gateway`` marker (tests that start nginx and uvicorn replicas)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gateway: starts nginx and two uvicorn replicas on loopback ports"
    )
