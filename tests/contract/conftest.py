"""Registers the ``contract`` marker (schemathesis against the committed OpenAPI document)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "contract: fuzzes a loopback server against openapi/openapi.json"
    )
