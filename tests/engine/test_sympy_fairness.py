"""SymPy fairness: a check's budget covers its wait for a worker, heavy jobs leave a worker to
the light ones, a long queue is refused at once, and the check policy falls back (``auto``)
or answers ``timeout`` (``sympy``) saying the workers are busy, and refuses outright a job
far over its budget instead of letting it hold a worker."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from engine.check import sympy_pool, verify
from engine.check.agreement import CheckReport
from engine.check.job import build_job, sympy_work
from engine.check.limits import CheckLimits
from engine.check.sympy_pool import Admission, Pool, WorkerBusy, WorkerTimeout
from engine.derive import derivatives
from engine.derive.kinds import DERIVATIVE, GRADIENT
from engine.derive.query import Query
from engine.graphs.build import build_graph

pytestmark = pytest.mark.timeout(120)

SLACK = 0.3  # scheduling, killing an overrunning worker, a loaded CI machine


def job(nodes: list, values: dict[str, float], target: str, sources: list[str]) -> dict:
    """A plain-data SymPy job (engine.check.job.build_job's shape) for a gradient."""
    return {"quantities": ["gradients"], "order": 1, "nodes": nodes, "targets": [target],
            "sources": sources, "values": {k: np.float64(v) for k, v in values.items()},
            "weights": {}, "frozen": [], "text_max": 16}


def squares_chain(depth: int) -> dict:
    """b_k = b_{k-1}**2 + b_{k-1}: tiny as a graph; at depth 14 about a minute of SymPy."""
    nodes, prev = [["x", "variable", [], {}]], "x"
    for k in range(depth):
        nodes += [[f"a{k}", "mul", [prev, prev], {}], [f"b{k}", "add", [f"a{k}", prev], {}]]
        prev = f"b{k}"
    return job(nodes, {"x": 0.01}, prev, ["x"])


HOG = squares_chain(14)
SEED = job([["x", "variable", [], {}], ["y", "variable", [], {}],
            ["x2", "pow", ["x", 2.0], {}], ["y3", "pow", ["y", 3.0], {}],
            ["z", "add", ["x2", "y3"], {}]], {"x": 2.0, "y": 3.0}, "z", ["x", "y"])


def warm_pool(size: int) -> Pool:
    pool = Pool(size)
    pool.start()
    assert pool.warm(60), "the SymPy workers did not start"
    return pool


@pytest.fixture
def pool1() -> Iterator[Pool]:
    pool = warm_pool(1)
    yield pool
    pool.close()


@pytest.fixture
def pool2() -> Iterator[Pool]:
    pool = warm_pool(2)
    yield pool
    pool.close()


def hold(pool: Pool, seconds: float, heavy: bool = False) -> threading.Thread:
    """A thread whose job holds one worker of ``pool`` for ``seconds`` (then is killed)."""
    busy = pool.stats()["busy"]

    def run() -> None:
        with pytest.raises(WorkerTimeout):
            pool.run(HOG, seconds, Admission(heavy=heavy))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while pool.stats()["busy"] == busy:
        assert time.monotonic() < deadline, "the holding job never got a worker"
        time.sleep(0.01)
    return thread


def timed(call: Any) -> tuple[float, Any]:
    """Seconds ``call()`` took, and what it returned or raised."""
    start = time.monotonic()
    try:
        out = call()
    except Exception as e:  # the tests look at what was raised
        out = e
    return time.monotonic() - start, out


def seed_gradients(reply: Any) -> dict[str, float]:
    assert isinstance(reply, dict), reply
    return {k: float(v) for k, v in reply["values"]["gradients"].items()}


# ------------------------------------------------------------------ the pool


def test_the_wait_for_a_worker_counts_in_the_budget(pool1: Pool) -> None:
    """The only worker is held for 0.6 s, then replaced; a job that never finishes, with a
    1 s budget, waits for the fresh worker and runs only what is left of its second (when
    the wait was free it ran 0.6 s + the start-up + a whole second)."""
    holder = hold(pool1, 0.6)
    took, out = timed(lambda: pool1.run(HOG, 1.0))
    assert isinstance(out, WorkerTimeout), out
    assert took < 1.0 + SLACK, (took, out)
    holder.join(5)


def test_a_job_behind_a_busy_worker_is_refused_after_its_short_wait(pool1: Pool) -> None:
    holder = hold(pool1, 2.0)
    took, out = timed(lambda: pool1.run(SEED, 2.0, Admission(wait=0.2)))
    assert isinstance(out, WorkerBusy) and str(out).startswith(verify.BUSY), out
    assert 0.2 <= took < 0.2 + SLACK, took
    assert pool1.stats()["refused"] == 1
    holder.join(5)


def test_heavy_jobs_leave_a_worker_to_the_light_ones(pool2: Pool) -> None:
    holder = hold(pool2, 2.0, heavy=True)
    took, out = timed(lambda: pool2.run(HOG, 2.0, Admission(heavy=True, wait=0.2)))
    assert isinstance(out, WorkerBusy), out  # the second worker is not lent to a heavy job
    assert took < 0.2 + SLACK, took
    took, out = timed(lambda: pool2.run(SEED, 2.0, Admission(wait=0.2)))
    assert seed_gradients(out) == {"x": 4.0, "y": 27.0}
    assert took < 1.0, took
    holder.join(5)


def test_a_long_queue_is_refused_at_once(pool1: Pool) -> None:
    holder = hold(pool1, 2.0)
    waiter = threading.Thread(target=lambda: pytest.raises(
        WorkerTimeout, pool1.run, SEED, 1.5, Admission(work=1000, wait=1.0)), daemon=True)
    waiter.start()
    deadline = time.monotonic() + 5
    while pool1.stats()["waiting"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    took, out = timed(lambda: pool1.run(SEED, 2.0, Admission(work=10, max_ahead=500)))
    assert isinstance(out, WorkerBusy) and "1000 units of work queued ahead" in str(out), out
    assert took < 0.1, took
    waiter.join(5)
    holder.join(5)


# ------------------------------------------------------------------ the check policy


def det_nodes(n: int) -> list[dict]:
    a = np.eye(n) * 3 + np.random.default_rng(n).uniform(-1, 1, (n, n))
    return [{"id": "A", "op": "variable", "value": a.tolist()},
            {"id": "d", "op": "det", "inputs": ["A"]}]


def check_gradient(nodes: list[dict], method: str, limits: CheckLimits
                   ) -> CheckReport:
    query = Query(graph=build_graph(nodes))
    return verify.check(GRADIENT, query, derivatives.gradient(query), method, limits)


def test_sympy_work_counts_the_cofactor_expansion_of_a_determinant() -> None:
    def work(n: int) -> int:
        query = Query(graph=build_graph(det_nodes(n)))
        built, shapes, _ = build_job(GRADIENT, query, derivatives.gradient(query),
                                     CheckLimits())
        return sympy_work(built, shapes)

    # SymPy's time grows ~10x per size (4x4 under a second, 6x6 over 15 s): n * n! terms
    assert work(5) > 8 * work(4) and work(8) > 10_000 * work(4)


def test_an_explicit_sympy_check_far_over_its_budget_is_not_run() -> None:
    took, report = timed(lambda: check_gradient(det_nodes(8), "sympy", CheckLimits()))
    assert (report.method, report.status) == ("sympy", "skipped"), report.detail
    assert "far over" in report.detail and "not run" in report.detail
    assert took < 1.0, took
    report = check_gradient(det_nodes(3), "sympy", CheckLimits())
    assert (report.method, report.status) == ("sympy", "agree"), report.detail


@pytest.fixture
def busy_pool(pool1: Pool, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pool]:
    """The process's SymPy pool is ``pool1``, its only worker held for 3 s."""
    monkeypatch.setattr(sympy_pool, "get_pool", lambda size=1: pool1)
    holder = hold(pool1, 3.0)
    yield pool1
    holder.join(5)


SEED_NODES = [{"id": "x", "op": "variable", "value": 2.0},
              {"id": "y", "op": "variable", "value": 3.0},
              {"id": "z", "op": "add", "inputs": ["x", "y"]}]
QUICK = CheckLimits(sympy_queue_seconds=0.1)


def test_auto_is_checked_by_finite_differences_at_once_when_the_workers_are_busy(
    busy_pool: Pool,
) -> None:
    took, report = timed(lambda: check_gradient(SEED_NODES, "auto", QUICK))
    assert (report.method, report.status) == ("numeric", "agree"), report.detail
    assert report.detail.startswith("SymPy workers busy; checked by finite differences: ")
    assert took < 0.1 + SLACK, took


def test_an_explicit_sympy_check_answers_timeout_when_the_workers_are_busy(
    busy_pool: Pool,
) -> None:
    took, report = timed(lambda: check_gradient(SEED_NODES, "sympy", QUICK))
    assert (report.method, report.status) == ("sympy", "timeout"), report.detail
    assert report.detail.startswith("SymPy workers busy: ") and "not checked" in report.detail
    assert took < 0.1 + SLACK, took


def test_a_derivative_check_falls_back_too_when_the_workers_are_busy(busy_pool: Pool) -> None:
    nodes = [{"id": "x", "op": "variable", "value": 3.0},
             {"id": "y", "op": "pow", "inputs": ["x", 3]}]
    query = Query(graph=build_graph(nodes))
    result = derivatives.derivative(dataclasses.replace(query, order=2, max_order=6))
    report = verify.check(DERIVATIVE, query, result, "auto", QUICK)
    assert (report.method, report.status) == ("numeric", "agree"), report.detail
    assert report.detail.startswith("SymPy workers busy; checked by finite differences: ")
