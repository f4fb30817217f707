"""Non-finite entries past the gradient (Jacobian, Hessian, higher orders) are noted, and a
finite-difference NaN is no reference.

Where an op's derivative is infinite (sqrt at 0), a reverse sweep multiplies it by zero
cotangents too: 0·inf is NaN in entries whose true derivative is finite, as in TensorFlow,
JAX and PyTorch. Every value being finite, no value note named it; and the numeric check,
whose own steps left the domain there, counted NaN against NaN as agreement.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.check.limits import CheckLimits
from engine.check.verify import check
from engine.derive import derivatives
from engine.derive.kinds import KINDS
from engine.derive.query import Query
from engine.graphs.build import build_graph
from engine.graphs.expression import parse_expression

LIMITS = CheckLimits(sympy_seconds=120.0)
# sum(sqrt(x[1:] - x[:-1])) with x[2] == x[3]: sqrt at 0, its derivative infinite
ROOTS = [{"id": "x", "op": "variable", "value": [0.1, 0.2, 0.4, 0.4, 0.7, 0.9]},
         {"id": "a", "op": "slice", "inputs": ["x"], "attrs": {"begin": [1], "end": [6]}},
         {"id": "b", "op": "slice", "inputs": ["x"], "attrs": {"begin": [0], "end": [5]}},
         {"id": "d", "op": "sub", "inputs": ["a", "b"]},
         {"id": "r", "op": "sqrt", "inputs": ["d"]},
         {"id": "s", "op": "sum", "inputs": ["r"]}]


def _non_finite(result) -> list[str]:
    return [n.detail for n in result.notes if n.reason == "non_finite" and n.source is None]


@pytest.mark.parametrize("fmt", ["dense", "coo"])
def test_a_hessians_non_finite_entries_are_noted(fmt):
    result = derivatives.hessian(Query(graph=build_graph(ROOTS), format=fmt))
    matrix = result.matrix if fmt == "dense" else result.sparse.todense()
    bad = int((~np.isfinite(matrix)).sum())
    assert bad  # the sweep's 0·inf: the premise of the note
    (note,) = _non_finite(result)
    assert note.startswith("hessian entries are not finite in ")
    assert "0·inf" in note
    if fmt == "dense":
        assert f"x/x ({bad} of {matrix.size})" in note


def test_a_nan_from_finite_differences_is_no_agreement():
    q = Query(graph=build_graph(ROOTS), format="dense")
    result = derivatives.hessian(q)
    report = check(KINDS["hessian"], q, result, "numeric", LIMITS)
    finite = int(np.isfinite(result.matrix).sum())
    # the block and the matrix: only entries with a finite tape value can have agreed
    assert report.compared <= 2 * finite, report.detail
    assert "(no reference) not compared" in report.detail
    assert check(KINDS["hessian"], q, result, "sympy", LIMITS).status == "disagree"


def test_a_jacobians_and_higher_orders_non_finite_entries_are_noted():
    q = Query(graph=parse_expression("sqrt(x)"), values={"x": [0.0, 1.0]})
    result = derivatives.jacobian(q)
    assert "_1/x (2 of 4)" in _non_finite(result)[0]  # parse_expression names its output _1
    q = Query(graph=parse_expression("sqrt(x) * x"), values={"x": 0.0})
    result = derivatives.derivative(dataclasses.replace(q, order=3))
    assert "order 2 (1 of 1), order 3 (1 of 1)" in _non_finite(result)[0]


def test_finite_derivatives_have_no_such_note():
    q = Query(graph=parse_expression("x**3 * y + sqrt(x)"), values={"x": 0.5, "y": 2.0})
    assert not _non_finite(derivatives.hessian(q))
    assert not _non_finite(derivatives.jacobian(q))
    assert not _non_finite(derivatives.derivative(dataclasses.replace(q, order=3)))
