"""The SymPy check of a loss weighted by non-finite ``output_gradients``.

SymPy's ``nan`` absorbs what it multiplies, so the weighted loss ``nan * sin(u)`` was a
constant whose derivative is 0: the reference said 0 where the tape said NaN, and a right
answer was reported as "disagree". A term the source does not reach must still add
nothing (the other half of a concat), as on the tape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from engine.check.limits import CheckLimits
from engine.check.verify import check
from engine.derive.kinds import KINDS
from engine.derive.query import Query
from engine.graphs.build import build_graph

LIMITS = CheckLimits(sympy_seconds=120.0)
NAN, INF = math.nan, math.inf


def _checked(kind: str, nodes: list[dict], method: str, **query: Any):
    q = Query(graph=build_graph(nodes), **query)
    result = KINDS[kind].compute(q)
    return result, check(KINDS[kind], q, result, method, LIMITS)


SIN_OF_SCALED = [{"id": "x", "op": "variable", "value": 2.0},
                 {"id": "c", "op": "constant", "value": [1.0, 2.0]},
                 {"id": "u", "op": "mul", "inputs": ["x", "c"]},
                 {"id": "z", "op": "sin", "inputs": ["u"]}]
HALVES = [{"id": "x", "op": "variable", "value": [0.5]},
          {"id": "y", "op": "variable", "value": [1.5]},
          {"id": "z", "op": "concat", "inputs": ["x", "y"], "attrs": {"axis": 0}}]


@pytest.mark.parametrize("method", ["sympy", "numeric", "auto"])
@pytest.mark.parametrize("weight", [NAN, INF, -INF, 2.0])
def test_a_weighted_gradient_is_checked_as_the_tape_weighs_it(method, weight):
    result, report = _checked("gradient", SIN_OF_SCALED, method,
                              output_gradients={"z": [1.0, weight]})
    expected = np.cos(2.0) + 2.0 * np.cos(4.0) * weight  # d/dx sum(w * sin(c x))
    np.testing.assert_equal(result.gradients["x"], expected)
    assert report.status in ("agree", "skipped"), report.detail
    if method != "numeric":
        # a NaN matched by a NaN vouches for nothing: left out, and said
        assert report.status == ("skipped" if math.isnan(weight) else "agree"), report.detail


@pytest.mark.parametrize("weight", [NAN, INF])
def test_a_part_the_source_does_not_reach_adds_nothing(weight):
    result, report = _checked("gradient", HALVES, "sympy", sources=["x", "y"],
                              output_gradients={"z": [3.0, weight]})
    np.testing.assert_equal(result.gradients["x"], [3.0])
    np.testing.assert_equal(result.gradients["y"], [weight])
    assert report.status == "agree", report.detail
    assert report.compared >= 1


@pytest.mark.parametrize("weight", [NAN, INF])
def test_a_weighted_hessian_is_checked_as_the_tape_weighs_it(weight):
    cube = [{"id": "x", "op": "variable", "value": 3.0},
            {"id": "y", "op": "pow", "inputs": ["x", 3.0]}]
    result, report = _checked("hessian", cube, "sympy", output_gradients={"y": weight})
    np.testing.assert_equal(result.gradients["x"], 27.0 * weight)
    np.testing.assert_equal(result.matrix, [[18.0 * weight]])
    assert report.status == ("skipped" if math.isnan(weight) else "agree"), report.detail


def test_a_wrong_weighted_gradient_still_disagrees():
    q = Query(graph=build_graph(HALVES), sources=["x", "y"],
              output_gradients={"z": [3.0, NAN]})
    result = KINDS["gradient"].compute(q)
    result.gradients["x"] = np.array([4.0])
    assert check(KINDS["gradient"], q, result, "sympy", LIMITS).status == "disagree"
