"""Which compute requests run inline on the event loop and which go to the threadpool, and
how work in the threadpool is stopped when no one waits for it any more."""

from __future__ import annotations

import asyncio
import re
import threading

import numpy as np
import pytest

from app import dispatch
from app.activity import Activity
from app.endpoints import ENDPOINTS
from app.examples import rosenbrock
from app.service import INLINE_ALONE_MAX_WORK, INLINE_MAX_WORK
from app.wire.requests import ComputeRequest
from engine.check import shared_checks
from engine.lru import LRU
from tests.api.support import SEED_3, graph, op, post, var

SEED = {**SEED_3, "check": "none"}


def _request(body: dict) -> ComputeRequest:
    return ComputeRequest.model_validate(body)


@pytest.mark.parametrize("check", ["none", "auto", "sympy"])
def test_the_seed_is_tiny_unless_differenced(check):
    assert dispatch.is_tiny(ENDPOINTS["gradient"], _request({**SEED, "check": check}))
    expression = {"expression": "x**2", "values": {"x": 3}, "check": check}
    assert dispatch.is_tiny(ENDPOINTS["evaluate"], _request(expression))
    assert dispatch.is_tiny(ENDPOINTS["hessian"], _request({**SEED, "check": check}))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("gradient", {**SEED, "check": "numeric"}),  # runs the graph again and again
        ("hessian", {**SEED, "check": "numeric"}),
        ("gradient", graph(var("x", [0.5] * 200), op("y", "sin", "x"), check="none")),
        ("gradient", graph(*[var(f"v{i}", 1.0) for i in range(40)], check="none")),
        ("gradient", {"graph_id": "g_" + "0" * 64, "check": "none"}),
        ("evaluate", {"expression": "+".join(["x"] * 100), "values": {"x": 1}, "check": "none"}),
    ],
)
def test_anything_larger_goes_to_the_threadpool(kind, body):
    assert not dispatch.is_tiny(ENDPOINTS[kind], _request(body))


def test_many_values_are_not_tiny_and_not_summed(monkeypatch):
    """More values than a tiny request has elements: refused before their sizes are read."""
    read: list[object] = []
    monkeypatch.setattr(dispatch, "_elements", lambda v: read.append(v) or 1)
    names = {f"v{i}": 1.0 for i in range(dispatch.INLINE_MAX_ELEMENTS + 1)}
    body = {"expression": "v0", "values": names, "check": "none"}
    assert not dispatch.is_tiny(ENDPOINTS["gradient"], _request(body))
    assert read == []
    assert dispatch.is_tiny(ENDPOINTS["gradient"], _request({**body, "values": {"v0": 1.0}}))


def _where_it_ran(client, monkeypatch) -> list[tuple[str, float]]:
    """(thread, inline bound) of every ``service.run`` from here on."""
    threads: list[tuple[str, float]] = []
    run = client.app.state.service.run

    def spy(kind, request, **how):
        threads.append((threading.current_thread().name, how.get("inline", 0.0)))
        return run(kind, request, **how)

    monkeypatch.setattr(client.app.state.service, "run", spy)
    return threads


def test_where_requests_run(client, monkeypatch):
    threads = _where_it_ran(client, monkeypatch)
    post(client, "gradient", SEED)
    post(client, "gradient", {**SEED, "check": "numeric"})
    (loop_thread, _), (pool_thread, _) = threads
    assert loop_thread != pool_thread


def _graphs_counted(client) -> float:
    """Graphs of compute requests, as /metrics counts them."""
    found = re.search(r"^deriv_graph_nodes_count (\S+)$", client.get("/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


def _same_check(a: dict, b: dict) -> None:
    def timeless(answer: dict) -> dict:
        return {**answer, "check": {**answer["check"], "elapsed_ms": None}}

    assert timeless(a) == timeless(b)


@pytest.mark.parametrize("check", ["auto", "sympy"])
def test_a_check_compiled_here_is_done_on_the_loop_and_nothing_else_is(client, monkeypatch,
                                                                       check):
    """The first request of a structure computes inline, finds no SymPy derivative of it
    compiled here, and computes again in a thread, where the worker derives it; the next
    one is checked from the compiled derivative, inline. A structure the worker must
    answer (a kink) leaves the loop every time."""
    monkeypatch.setattr(shared_checks, "_local", LRU(shared_checks.LOCAL_SIZE))
    threads = _where_it_ran(client, monkeypatch)
    body = {**SEED, "check": check}
    counted = _graphs_counted(client)
    first = post(client, "gradient", body)
    (loop, tried), (pool, again) = threads
    assert tried > 0 and again == 0.0 and loop != pool
    assert _graphs_counted(client) == counted + 1  # built twice, one request's graph
    threads.clear()
    second = post(client, "gradient", body)
    assert threads == [(loop, tried)]  # inline only
    assert second["check"]["method"] == "sympy" and second["check"]["status"] == "agree"
    _same_check(first, second)
    moved = post(client, "gradient", {**SEED, "values": {"x": 1.0, "y": -2.0}, "check": check})
    assert moved["gradients"] == {"x": 2.0, "y": 12.0} and moved["check"]["status"] == "agree"
    threads.clear()
    monkeypatch.setattr(shared_checks, "LOCAL_ONLY_MAX_TREE", 7)  # the seed's tree is 8 nodes
    _same_check(post(client, "gradient", body), second)  # too large to evaluate on the loop
    assert [inline for _, inline in threads] == [tried, 0.0]
    monkeypatch.setattr(shared_checks, "LOCAL_ONLY_MAX_TREE", 8)
    threads.clear()
    post(client, "gradient", body)
    assert [inline for _, inline in threads] == [tried]
    threads.clear()
    kink = {"expression": "abs(x) + x^2", "values": {"x": 0.0}, "check": check}
    answers = [post(client, "gradient", kink) for _ in range(2)]
    assert [inline for _, inline in threads] == [tried, 0.0, tried, 0.0]
    _same_check(*answers)


def test_a_small_body_that_costs_much_leaves_the_event_loop(client, monkeypatch):
    """Content cannot prove a request tiny: one scalar broadcast to 10^5 elements is a few
    bytes. It starts inline, is found costly once its shapes are known, and moves to a
    thread before computing anything."""
    body = graph(var("x", 0.5), op("b", "broadcast_to", "x", shape=[100_000]),
                 op("s", "sin", "b"), op("t", "sum", "s"), check="none")
    assert dispatch.is_tiny(ENDPOINTS["gradient"], _request(body))
    threads = _where_it_ran(client, monkeypatch)
    answer = post(client, "gradient", body)
    assert answer["gradients"]["x"] == pytest.approx(100_000 * np.cos(0.5))
    (loop, tried_inline), (pool, inline_again) = threads
    assert tried_inline and not inline_again
    assert loop != pool


def test_a_request_alone_may_spend_more_on_the_loop_and_not_when_others_wait(client,
                                                                          monkeypatch):
    """A Rosenbrock Hessian of 100 sources costs ~1.3 ms: over the bound for the loop
    while other compute requests are in flight, within the bound when it is alone."""
    body = {"graph": rosenbrock(100)["graph"], "check": "none"}
    assert dispatch.is_tiny(ENDPOINTS["hessian"], _request(body))
    threads = _where_it_ran(client, monkeypatch)
    alone = post(client, "hessian", body)
    assert threads == [(threads[0][0], INLINE_ALONE_MAX_WORK)]
    activity = client.app.state.activity
    # "a moment ago", however slowly the machine runs this test
    monkeypatch.setattr(activity, "window", 60.0)
    for crowd in ("computing", "another client"):
        threads.clear()
        if crowd == "computing":
            activity.computing += 1  # as if another request were computing
        else:
            activity.start(("192.0.2.1", 40000))  # another client, a moment ago
            activity.end()
        try:
            crowded = post(client, "hessian", body)
        finally:
            if crowd == "computing":
                activity.computing -= 1
        (loop, tried), (pool, again) = threads
        assert (tried, again) == (INLINE_MAX_WORK, 0.0) and loop != pool, crowd
        assert crowded["matrix"] == alone["matrix"]


def test_activity_tells_a_lone_client_from_a_crowd():
    clock = [100.0]
    activity = Activity(window=0.01, clock=lambda: clock[0])
    a, b = ("127.0.0.1", 50001), ("127.0.0.1", 50002)
    assert activity.start(a)  # nobody else
    activity.end()
    clock[0] += 0.001
    assert activity.start(a)  # the same client again: still alone
    assert not activity.start(b)  # while a computes
    activity.end()
    activity.end()
    clock[0] += 0.005
    assert not activity.start(a)  # b started 5 ms ago
    activity.end()
    clock[0] += 0.02
    assert activity.start(a)  # b is quiet for longer than the window
    activity.end()
    assert activity.computing == 0


@pytest.mark.parametrize("client", [None, ("203.0.113.7", 0)])
def test_a_client_that_cannot_be_told_apart_is_never_alone(client):
    """No client, or one a gateway forwarded (its port is 0: every client of one host
    looks the same), may be one of many: the small bound."""
    activity = Activity()
    assert not activity.start(client)
    activity.end()


# ----------------------------------------- off_loop: the client's presence, polled


class _Client:
    """A stand-in for the request: the client hangs up after ``polls`` questions."""

    def __init__(self, polls: int | None) -> None:
        self.polls, self.asked = polls, 0

    async def is_disconnected(self) -> bool:
        self.asked += 1
        return self.polls is not None and self.asked >= self.polls


def test_off_loop_cancels_the_work_of_a_client_that_hangs_up(monkeypatch):
    monkeypatch.setattr(dispatch, "DISCONNECT_POLL_SECONDS", 0.01)
    http, abandoned = _Client(polls=3), []

    def work(cancel):  # stops only when cancelled; gives up after 5 s so a failure cannot hang
        return "stopped" if cancel.wait(5.0) else "never cancelled"

    got = asyncio.run(dispatch.off_loop(http, work, abandoned=lambda: abandoned.append(1)))
    assert got == "stopped" and http.asked >= 3
    assert abandoned == []  # its result was delivered: the caller gives the room back


def test_off_loop_delivers_a_result_or_an_error_without_abandoning(monkeypatch):
    monkeypatch.setattr(dispatch, "DISCONNECT_POLL_SECONDS", 0.01)
    abandoned, seen = [], []

    def answer(cancel):
        seen.append(cancel)
        return 42

    def fail(_cancel):
        raise ValueError("the work's own error")

    def note() -> None:
        abandoned.append(1)

    assert asyncio.run(dispatch.off_loop(_Client(None), answer, abandoned=note)) == 42
    assert not seen[0].is_set()
    with pytest.raises(ValueError, match="the work's own error"):
        asyncio.run(dispatch.off_loop(_Client(None), fail, abandoned=note))
    assert abandoned == []


def test_off_loop_cancelled_while_waiting_stops_the_work_and_abandons_it_once_it_ends(
    monkeypatch,
):
    """A shutdown cancels the awaiting request: the thread is told to stop, and what it
    held is given back only when it has ended, once."""
    monkeypatch.setattr(dispatch, "DISCONNECT_POLL_SECONDS", 0.01)
    started, finish = threading.Event(), threading.Event()
    events: list[str] = []

    def work(cancel):
        started.set()
        stopped = cancel.wait(5.0)
        finish.wait(5.0)  # still running after it was told to stop
        events.append("work ended" if stopped else "never cancelled")

    async def scenario() -> None:
        task = asyncio.ensure_future(
            dispatch.off_loop(_Client(None), work, abandoned=lambda: events.append("abandoned"))
        )
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert events == []  # not given back while the thread still runs
        finish.set()
        for _ in range(500):
            if "abandoned" in events:
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert events == ["work ended", "abandoned"]
