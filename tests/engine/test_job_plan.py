"""A check's job plan is kept with a small reused graph (engine.check.job.planned_job): the
job it gives must be the one made afresh, with this request's values, never an earlier
request's; and a graph too large to keep one makes it afresh every time."""

from __future__ import annotations

import numpy as np
import pytest

from engine.check import verify
from engine.check.job import PLAN_MEMO_ELEMENTS, PLAN_MEMO_NODES, planned_job
from engine.check.limits import CheckLimits
from engine.derive.kinds import KINDS
from engine.derive.query import Query
from engine.graphs.build import build_graph
from engine.graphs.reusable import ReusableGraph

NODES = [
    {"id": "x", "op": "variable", "value": 2.0},
    {"id": "y", "op": "variable", "value": 3.0},
    {"id": "x2", "op": "pow", "inputs": ["x", 2.0]},
    {"id": "s", "op": "sin", "inputs": ["y"]},
    {"id": "z", "op": "mul", "inputs": ["x2", "s"]},
]
LIMITS = CheckLimits(sympy_seconds=120.0)


def _gradient(graph, values: dict[str, float]):
    q = Query(graph=graph, values=values)
    return q, KINDS["gradient"].compute(q)


def test_a_kept_plan_gives_the_job_made_afresh_with_this_requests_values():
    reused = ReusableGraph.of(build_graph(NODES))
    fresh_graph = build_graph(NODES)  # not reusable: no plan is kept
    plans = []
    for x, y in [(2.0, 3.0), (-1.5, 0.25), (2.0, 3.0), (7.0, -4.0)]:
        values = {"x": x, "y": y}
        q, result = _gradient(reused, values)
        job, plan, _ = planned_job(KINDS["gradient"], q, result, LIMITS)
        q_fresh, result_fresh = _gradient(fresh_graph, values)
        fresh, fresh_plan, _ = planned_job(KINDS["gradient"], q_fresh, result_fresh, LIMITS)
        assert job.keys() == fresh.keys()
        assert {k: v for k, v in job.items() if k != "values"} == \
               {k: v for k, v in fresh.items() if k != "values"}
        assert {k: float(v) for k, v in job["values"].items()} == values
        assert (plan.unchecked, plan.sympy_auto, plan.numeric) == \
               (fresh_plan.unchecked, fresh_plan.sympy_auto, fresh_plan.numeric)
        plans.append(plan)
    assert all(p is plans[0] for p in plans)  # one plan, kept with the graph


def test_the_check_at_new_values_compares_against_those_values():
    """A check that read an earlier request's values would disagree (or agree wrongly)."""
    reused = ReusableGraph.of(build_graph(NODES))
    for x, y in [(2.0, 3.0), (-1.5, 0.25), (0.5, 2.0)]:
        q, result = _gradient(reused, {"x": x, "y": y})
        assert result.gradients["x"] == pytest.approx(2 * x * np.sin(y))
        report = verify.check(KINDS["gradient"], q, result, "sympy", LIMITS)
        assert report.status == "agree", report.detail
        wrong = result.gradients["x"] + 1.0
        result.gradients["x"] = np.float64(wrong)
        report = verify.check(KINDS["gradient"], q, result, "sympy", LIMITS)
        assert report.status == "disagree", report.detail


def test_a_graph_past_the_lines_keeps_no_plan():
    chain = [{"id": "x", "op": "variable", "value": 0.5}]
    chain += [{"id": f"h{i}", "op": "sin", "inputs": [f"h{i - 1}" if i else "x"]}
              for i in range(PLAN_MEMO_NODES)]
    big = ReusableGraph.of(build_graph(chain))
    q, result = _gradient(big, {"x": 0.25})
    assert planned_job(KINDS["gradient"], q, result, LIMITS)[1] is not \
           planned_job(KINDS["gradient"], q, result, LIMITS)[1]
    constant = np.ones((PLAN_MEMO_ELEMENTS + 1, 4)).tolist()
    wide = [{"id": "x", "op": "variable", "value": np.zeros(4).tolist()},
            {"id": "y", "op": "add", "inputs": ["x", constant]},
            {"id": "z", "op": "sum", "inputs": ["y"]}]
    graph = ReusableGraph.of(build_graph(wide))
    assert graph.inline_elements == 4 * (PLAN_MEMO_ELEMENTS + 1)
    q, result = _gradient(graph, {})
    assert planned_job(KINDS["gradient"], q, result, LIMITS)[1] is not \
           planned_job(KINDS["gradient"], q, result, LIMITS)[1]


def test_a_graph_keeps_one_plan_whatever_is_asked():
    """Plans weigh more than their graph: each asks for its own, only the last is kept."""
    reused = ReusableGraph.of(build_graph(NODES))
    q, result = _gradient(reused, {"x": 1.0, "y": 2.0})
    first = planned_job(KINDS["gradient"], q, result, LIMITS)[1]
    q2, result2 = _gradient(reused, {"x": [1.0, 2.0], "y": 2.0})  # other leaf shapes
    second = planned_job(KINDS["gradient"], q2, result2, LIMITS)[1]
    assert second is not first
    assert planned_job(KINDS["gradient"], q2, result2, LIMITS)[1] is second
    assert planned_job(KINDS["gradient"], q, result, LIMITS)[1] is not first  # made again
    assert len(reused._last) == 1


def test_a_kept_plan_holds_no_values_and_no_weights():
    """Client data is the request's: a kept plan holds ids and shapes only (a variable of a
    million elements and its output_gradients would otherwise stay with the graph)."""
    graph = ReusableGraph.of(build_graph([
        {"id": "x", "op": "variable", "value": [1.0, 2.0, 3.0]},
        {"id": "y", "op": "mul", "inputs": ["x", "x"]},
    ]))
    q = Query(graph=graph, values={"x": [4.0, 5.0, 6.0]},
              output_gradients={"y": [7.0, 8.0, 9.0]})
    result = KINDS["gradient"].compute(q)
    job, plan, _ = planned_job(KINDS["gradient"], q, result, LIMITS)
    assert job["weights"]["y"].tolist() == [7.0, 8.0, 9.0]
    assert job["values"]["x"].tolist() == [4.0, 5.0, 6.0]
    kept = vars(plan)
    assert kept["_skeleton"]["weights"] == {}
    assert set(kept["_skeleton"]["values"].values()) == {None}


OPTIONS = [  # every request option the job depends on, beside values and weights
    {"sources": ["x", "w"], "unconnected_gradients": "zero"},
    {"sources": ["x", "w"], "unconnected_gradients": "none"},
    {"sources": ["x", "w"], "watch": ["w"], "unconnected_gradients": "none"},
    {"sources": ["x", "w"], "watch_accessed_variables": False, "watch": ["x"]},
    {"sources": ["x"]},
]


@pytest.mark.parametrize("order", [OPTIONS, OPTIONS[::-1]], ids=["forward", "reversed"])
def test_a_kept_plan_is_the_job_made_afresh_whatever_options_came_before(order):
    """A plan kept from an earlier request with other options (``unconnected_gradients``
    says what an unwatched source's entries are) must not be this request's: the check of
    a right answer would say "disagree"."""
    nodes = [{"id": "x", "op": "variable", "value": 2.0},
             {"id": "w", "op": "variable", "value": 3.0, "trainable": False},
             {"id": "z", "op": "mul", "inputs": ["x", "w"]}]
    reused = ReusableGraph.of(build_graph(nodes))
    for options in order * 2:
        q = Query(graph=reused, **options)
        result = KINDS["gradient"].compute(q)
        job, _, unwatched = planned_job(KINDS["gradient"], q, result, LIMITS)
        fresh_q = Query(graph=build_graph(nodes), **options)
        fresh_result = KINDS["gradient"].compute(fresh_q)
        fresh, _, fresh_unwatched = planned_job(KINDS["gradient"], fresh_q, fresh_result,
                                                LIMITS)
        assert (job, unwatched) == (fresh, fresh_unwatched), options
        for method in ("sympy", "numeric"):
            report = verify.check(KINDS["gradient"], q, result, method, LIMITS)
            assert report.status == "agree", (options, method, report.detail)
