"""Which compute requests run inline on the event loop and which go to the threadpool."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app import dispatch
from app.endpoints import ENDPOINTS
from app.wire.requests import ComputeRequest
from tests.api.support import SEED_3, graph, op, post, var

SEED = {**SEED_3, "check": "none"}


def _request(body: dict) -> ComputeRequest:
    return ComputeRequest.model_validate(body)


def test_the_seed_without_a_check_is_tiny():
    assert dispatch.is_tiny(ENDPOINTS["gradient"], _request(SEED))
    expression = {"expression": "x**2", "values": {"x": 3}, "check": "none"}
    assert dispatch.is_tiny(ENDPOINTS["evaluate"], _request(expression))
    assert dispatch.is_tiny(ENDPOINTS["hessian"], _request(SEED))


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
    assert not dispatch.is_tiny(ENDPOINTS[kind], _request(body))


def test_where_requests_run(client, monkeypatch):
    threads: list[str] = []
    run = client.app.state.service.run

    def spy(kind, request, **how):
        threads.append(threading.current_thread().name)
        return run(kind, request, **how)

    monkeypatch.setattr(client.app.state.service, "run", spy)
    post(client, "gradient", SEED)
    post(client, "gradient", {**SEED, "check": "numeric"})
    loop_thread, pool_thread = threads
    assert loop_thread != pool_thread


def test_a_small_body_that_costs_much_leaves_the_event_loop(client, monkeypatch):
    """Content cannot prove a request tiny: one scalar broadcast to 10^5 elements is a few
    bytes. It starts inline, is found costly once its shapes are known, and moves to a
    thread before computing anything."""
    body = graph(var("x", 0.5), op("b", "broadcast_to", "x", shape=[100_000]),
                 op("s", "sin", "b"), op("t", "sum", "s"), check="none")
    assert dispatch.is_tiny(ENDPOINTS["gradient"], _request(body))
    threads: list[tuple[str, bool]] = []
    run = client.app.state.service.run

    def spy(kind, request, **how):
        threads.append((threading.current_thread().name, how.get("inline", False)))
        return run(kind, request, **how)

    monkeypatch.setattr(client.app.state.service, "run", spy)
    answer = post(client, "gradient", body)
    assert answer["gradients"]["x"] == pytest.approx(100_000 * np.cos(0.5))
    (loop, tried_inline), (pool, inline_again) = threads
    assert tried_inline and not inline_again
    assert loop != pool
