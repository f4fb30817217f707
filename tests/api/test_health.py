"""Liveness and readiness, including while a heavy request computes."""

from __future__ import annotations

import threading
import time

import pytest

from app.main import create_app
from tests.api.support import ValidatingClient, graph, op, var
from tests.conftest import make_settings


def test_healthz_is_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_is_ready(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def _heavy_body(width: int = 1000, n_nodes: int = 2000) -> dict:
    """A 1000 x 1000 Jacobian of a long chain: one vectorised reverse sweep, over a second."""
    nodes = [var("n0", [0.5] * width)]
    nodes += [op(f"n{i}", "sin", f"n{i - 1}") for i in range(1, n_nodes)]
    return graph(*nodes, check="none")


@pytest.mark.slow
def test_healthz_answers_while_a_heavy_request_computes():
    settings = make_settings(time_budget_seconds=30.0, max_work=1e13)
    with ValidatingClient(create_app(settings)) as client:
        done = threading.Event()
        started = time.monotonic()

        statuses: list[int] = []

        def heavy() -> None:
            statuses.append(client.post("/v1/jacobian", json=_heavy_body()).status_code)
            done.set()

        thread = threading.Thread(target=heavy)
        thread.start()
        time.sleep(0.3)  # the heavy request is computing by now
        latencies = []
        while not done.is_set() and len(latencies) < 5:
            t0 = time.monotonic()
            assert client.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - t0)
        thread.join(60)
        heavy_seconds = time.monotonic() - started
    assert statuses == [200]
    assert latencies, f"the heavy request finished too soon ({heavy_seconds:.2f}s) to test"
    assert max(latencies) < 0.5, latencies
