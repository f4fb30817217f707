"""The symbolic-derivative job and its bounds, and the honest verdicts of the check."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from engine.check import symbolic_run, sympy_job, sympy_pool
from engine.check.agreement import Tally
from engine.check.job import plain_nodes
from engine.check.limits import CheckLimits
from engine.check.symbolic_job import BUDGETS
from engine.check.symbolic_query import SymbolicQuery, symbolic, symbolic_work
from engine.check.symbolic_simplify import REPLACE_SECONDS
from engine.errors import CostError
from engine.graphs.expression import parse_expression
from engine.graphs.graph import Limits


def _job(text: str, order: int = 1, simplify: bool = True, seconds: float = 10.0) -> dict[str, Any]:
    graph = parse_expression(text, Limits())
    nodes = plain_nodes(graph, [graph.last])
    leaves = sorted(graph.leaves)
    return {
        "kind": "symbolic",
        "nodes": nodes,
        "target": graph.last,
        "order": order,
        "sources": [[s, []] for s in leaves],
        "shapes": {s: [] for s in leaves},
        "frozen": [],
        "values": None,
        "simplify": simplify,
        "simplify_seconds": seconds,
    }


def test_the_job_gives_each_distinct_entry_once() -> None:
    reply = sympy_job.run_job(_job("x**2*y", order=2))
    assert reply["keys"] == [[], [0], [1], [0, 0], [0, 1], [1, 1]]
    assert reply["text"] == ["x**2*y", "2*x*y", "x**2", "2*y", "2*x", "0"]
    assert reply["unsimplified"] == 0


def test_simplification_stops_being_started_past_its_deadline() -> None:
    reply = sympy_job.run_job(_job("x/(x+1)", order=1, seconds=0.0))
    assert reply["unsimplified"] == 2  # the function and its derivative
    assert reply["text"][1] == "-x/(x + 1)**2 + 1/(x + 1)"


def test_a_simplification_past_the_hard_budget_falls_back_to_the_plain_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker running the simplified job is killed (WorkerTimeout): the answer is the
    unsimplified job's, with a note, not an error."""
    asked: list[bool] = []

    class Pool:
        def run(self, job: dict[str, Any], _seconds: float, _admission: Any) -> dict[str, Any]:
            asked.append(job["simplify"])
            if job["simplify"]:
                raise sympy_pool.WorkerTimeout("SymPy ran past its budget of 4 s")
            return sympy_job.run_job(job)

    monkeypatch.setattr(sympy_pool, "get_pool", lambda _size: Pool())
    got = symbolic(SymbolicQuery(parse_expression("x/(x+1)", Limits()), {}))
    assert asked == [True, False]
    assert got.derivatives == ["-x/(x + 1)**2 + 1/(x + 1)"] and not got.simplified
    assert [n.reason for n in got.notes] == ["not_simplified"]
    assert "SymPy ran past its budget" in got.notes[0].detail


def test_a_simplification_killed_at_its_limit_leaves_the_plain_job_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One ``simplify`` call cannot be interrupted inside the worker: the simplified job's
    hard limit must end early enough for the plain job to run in what is left."""
    now = [0.0]
    given: list[tuple[bool, float]] = []

    class Pool:
        def run(self, job: dict[str, Any], seconds: float, _admission: Any) -> dict[str, Any]:
            given.append((job["simplify"], seconds))
            if job["simplify"]:
                now[0] += seconds  # killed at its hard limit
                raise sympy_pool.WorkerTimeout("SymPy ran past its budget")
            return sympy_job.run_job(job)

    monkeypatch.setattr(sympy_pool, "get_pool", lambda _size: Pool())
    monkeypatch.setattr(symbolic_run, "time", SimpleNamespace(monotonic=lambda: now[0]))
    got = symbolic(SymbolicQuery(parse_expression("tanh(x*y) + log(1 + x**2)", Limits()), {}))
    (simplified, simplify_limit), (plain, plain_left) = given
    assert simplified and not plain
    assert plain_left >= REPLACE_SECONDS
    budget = CheckLimits().sympy_seconds * BUDGETS
    assert simplify_limit + plain_left == pytest.approx(budget)
    assert got.derivatives[0] and [n.reason for n in got.notes] == ["not_simplified"]


def test_busy_workers_are_the_callers_to_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    class Pool:
        def run(self, *_args: Any) -> dict[str, Any]:
            raise sympy_pool.WorkerBusy("SymPy workers busy: none came free within 0.2 s")

    monkeypatch.setattr(sympy_pool, "get_pool", lambda _size: Pool())
    with pytest.raises(sympy_pool.WorkerBusy):
        symbolic(SymbolicQuery(parse_expression("x**2", Limits()), {}))


def test_work_grows_with_the_order_of_a_nested_composition() -> None:
    graph = parse_expression("tanh(tanh(tanh(tanh(x*y))))", Limits())
    nodes = plain_nodes(graph, [graph.last])
    shapes = dict.fromkeys(graph.nodes, ())
    work = [symbolic_work(nodes, shapes, 2, k) for k in range(1, 7)]
    assert all(b > 4 * a for a, b in zip(work[1:], work[2:], strict=False))
    with pytest.raises(CostError) as err:
        symbolic(SymbolicQuery(graph, {}, order=6))
    assert err.value.limit == "sympy_work" and err.value.estimate == work[-1]


def test_a_number_against_nan_is_an_unbounded_error_not_zero() -> None:
    tally = Tally(1e-7, 1e-9, 10)
    tally.add(("gradients", "x"), np.array(np.nan), np.array(0.0))
    report = tally.report("sympy", "SymPy's derivative")
    assert report.status == "disagree" and report.max_abs_error == np.inf
    assert report.disagreements[0]["abs_error"] == np.inf


def test_sign_at_0_is_a_value_in_outputs_but_a_kink_in_derivatives() -> None:
    """sign(0) = 0 is the sign op's value; in a derivative, sign(x) is |x|'s slope, which
    does not exist at 0."""
    nodes = [["x", "variable", [], {}], ["s", "sign", ["x"], {}], ["a", "abs", ["x"], {}]]
    job = {
        "quantities": ["outputs", "gradients"],
        "order": 0,
        "nodes": nodes,
        "values": {"x": np.float64(0.0)},
        "targets": ["s", "a"],
        "sources": ["x"],
        "weights": {},
        "frozen": ["s"],
        "text_max": 16,
    }
    reply = sympy_job.run_job(job)
    assert float(reply["values"]["outputs"]["s"]) == 0.0
    assert reply["kinks"] == [["gradients", "x", []]]
