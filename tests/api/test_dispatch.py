"""Which compute requests run inline on the event loop and which go to the threadpool."""

from __future__ import annotations

import threading

import pytest

from app import dispatch
from app.wire.requests import ComputeRequest
from tests.api.support import SEED_3, graph, op, post, var

SEED = {**SEED_3, "check": "none"}


def _request(body: dict) -> ComputeRequest:
    return ComputeRequest.model_validate(body)


def test_the_seed_without_a_check_is_tiny():
    assert dispatch.is_tiny("gradient", _request(SEED))
    expression = {"expression": "x**2", "values": {"x": 3}, "check": "none"}
    assert dispatch.is_tiny("evaluate", _request(expression))
    assert dispatch.is_tiny("hessian", _request(SEED))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("gradient", {**SEED, "check": "auto"}),  # may wait on a SymPy worker
        ("gradient", {**SEED, "check": "numeric"}),
        ("hessian", {**SEED, "check": "auto"}),
        ("gradient", graph(var("x", [0.5] * 200), op("y", "sin", "x"), check="none")),
        ("gradient", graph(*[var(f"v{i}", 1.0) for i in range(40)], check="none")),
        ("gradient", {"graph_id": "g_" + "0" * 64, "check": "none"}),
        ("evaluate", {"expression": "+".join(["x"] * 100), "values": {"x": 1}, "check": "none"}),
    ],
)
def test_anything_larger_goes_to_the_threadpool(kind, body):
    assert not dispatch.is_tiny(kind, _request(body))


def test_where_requests_run(client, monkeypatch):
    threads: list[str] = []
    run = client.app.state.service.run

    def spy(kind, request):
        threads.append(threading.current_thread().name)
        return run(kind, request)

    monkeypatch.setattr(client.app.state.service, "run", spy)
    post(client, "gradient", SEED)
    post(client, "gradient", {**SEED, "check": "numeric"})
    loop_thread, pool_thread = threads
    assert loop_thread != pool_thread
