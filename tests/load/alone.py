"""What every load test is marked with: the ``load`` marker, and a skip when it would run
beside other tests (pytest-xdist), whose CPU use would move its latencies and memory."""

from __future__ import annotations

import os

import pytest


def run_alone(timeout_seconds: int) -> list[pytest.MarkDecorator]:
    """``pytestmark`` of a load test: run with ``pytest -n 0 -m load tests/load``."""
    return [
        pytest.mark.load,
        pytest.mark.timeout(timeout_seconds),
        pytest.mark.skipif(
            "PYTEST_XDIST_WORKER" in os.environ,
            reason="a load test runs alone: pytest -n 0 -m load tests/load",
        ),
    ]
