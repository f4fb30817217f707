"""SymPy's check where its derivative has no real value at the point: a removable 0/0 in
its formula is resolved (``engine.check.symbolic._powers_merged``); an entry it can give
no real number for, where the tape has a finite one (TensorFlow's convention), still
disagrees, and the report says why (``engine.check.agreement.Tally``)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.ops import OPS
from tests.engine.test_verify import node, run, var, wrong_vjp

NO_REAL = "where the reference is no real number"


def power(x: float, y: float, *more: dict) -> list[dict]:
    return [var("x", x), var("y", y), node("p", "pow", "x", "y"), *more]


def sources(*names: str) -> dict:
    return {"sources": list(names)}


@pytest.mark.parametrize(("y", "slope"), [(2.0, 0.0), (3.0, 0.0), (1.0, 1.0), (2.5, 0.0)])
def test_d_dx_of_x_to_the_y_at_zero_is_compared_once_sympys_powers_are_merged(y, slope):
    """SymPy writes d/dx x**y as x**y*y/x, 0/0 at x = 0; the derivative is y*x**(y-1)."""
    result, report = run("gradient", power(0.0, y), "sympy", **sources("x"))
    assert result.gradients["x"] == slope
    assert report.status == "agree" and report.compared == 1, report.detail


def test_a_wrong_slope_at_zero_is_still_caught():
    """The merged reference is compared, not skipped: a tape 5 off there disagrees."""
    with wrong_vjp(OPS["pow"], lambda _ans, _x, _y: lambda g, _needs: (g * 5.0, g * 0.0)):
        report = run("gradient", power(0.0, 2.0), "sympy", **sources("x"))[1]
    assert report.status == "disagree"
    assert [(d["source"], d["tape"], d["reference"]) for d in report.disagreements] == [
        ("x", 5.0, 0.0)]


def test_the_second_derivative_at_zero_is_compared_too():
    """d2/dx2 x**y is x**y*y*(y - 1)/x**2 to SymPy: 2 at x = 0, y = 2, once merged."""
    result, report = run("hessian", power(0.0, 2.0), "sympy", **sources("x"))
    assert float(result.matrix[0, 0]) == 2.0
    assert report.status == "agree", report.detail


@pytest.mark.parametrize(("x", "y"), [(-2.0, 3.0), (0.0, 2.0), (-2.0, -60.0)])
def test_d_dy_where_no_real_derivative_exists_disagrees_and_says_why(x, y):
    """(-2)**y is real only at integer y, and d/dy of 0**y is 0*log(0) to SymPy: the
    tape's 0 is TensorFlow's convention, which no real derivative supports."""
    result, report = run("gradient", power(x, y), "sympy")
    assert result.gradients["y"] == 0.0
    assert report.status == "disagree", report.detail
    assert [d["source"] for d in report.disagreements] == ["y"]
    assert np.isnan(report.disagreements[0]["reference"])
    assert f"1 entry disagrees {NO_REAL}" in report.detail


def test_an_asymmetric_mixed_derivative_at_zero_is_not_called_agreement():
    """x**y at (0, 1): the tape's mixed entries are 1 and 0; neither exists."""
    result, report = run("hessian", power(0.0, 1.0), "sympy")
    assert result.matrix[0, 1] != result.matrix[1, 0]
    assert report.status == "disagree", report.detail


def test_entries_alike_but_for_their_symbols_are_all_compared():
    """d/dx_i of sum(x**y) at x = 0: each entry's formula is merged (once for all)."""
    nodes = [var("x", np.zeros(12)), var("y", 3.0), node("p", "pow", "x", "y"),
             node("L", "sum", "p")]
    result, report = run("gradient", nodes, "sympy", **sources("x"))
    assert result.gradients["x"].tolist() == [0.0] * 12
    assert report.status == "agree" and report.compared == 12, report.detail
