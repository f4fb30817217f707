"""SymPy's check where its derivative has no real value at the point: a removable 0/0 in
its formula is resolved (``engine.check.symbolic._powers_merged``), and an entry it can
give no real number for, where the tape has a finite one (TensorFlow's convention), is
left out and said, not called a disagreement (``engine.check.methods._NoRealReference``)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.check.agreement import Tally
from engine.check.methods import _NoRealReference
from engine.ops import OPS
from tests.engine.test_verify import node, run, var, wrong_vjp

NO_REAL = "SymPy's derivative is not a real number"


def power(x: float, y: float) -> list[dict]:
    return [var("x", x), var("y", y), node("p", "pow", "x", "y")]


@pytest.mark.parametrize(("y", "slope"), [(2.0, 0.0), (3.0, 0.0), (1.0, 1.0), (2.5, 0.0)])
def test_d_dx_of_x_to_the_y_at_zero_is_compared_once_sympys_powers_are_merged(y, slope):
    """SymPy writes d/dx x**y as x**y*y/x, 0/0 at x = 0; the derivative is y*x**(y-1)."""
    result, report = run("gradient", power(0.0, y), "sympy")
    assert result.gradients["x"] == slope
    assert report.status == "agree", report.detail
    # d/dy is x**y*log(x): 0*log(0) at x = 0, which SymPy cannot evaluate
    assert report.compared == 1 and NO_REAL in report.detail


def test_a_wrong_slope_at_zero_is_still_caught():
    """The merged reference is compared, not skipped: a tape 5 off there disagrees."""
    with wrong_vjp(OPS["pow"], lambda _ans, _x, _y: lambda g, _needs: (g * 5.0, g * 0.0)):
        report = run("gradient", power(0.0, 2.0), "sympy")[1]
    assert report.status == "disagree"
    assert [(d["source"], d["tape"], d["reference"]) for d in report.disagreements] == [
        ("x", 5.0, 0.0)]


def test_the_second_derivative_at_zero_is_compared_too():
    """d2/dx2 x**y is x**y*y*(y - 1)/x**2 to SymPy: 2 at x = 0, y = 2, once merged."""
    result, report = run("hessian", power(0.0, 2.0), "sympy", sources=["x"])
    assert float(result.matrix[0, 0]) == 2.0
    assert report.status == "agree", report.detail


def test_d_dy_at_a_negative_base_is_the_tapes_convention_and_said_so():
    """(-2)**y is real only at integer y: d/dy has no real value, and TF's is 0."""
    result, report = run("gradient", power(-2.0, 3.0), "sympy")
    assert result.gradients["x"] == 12.0 and result.gradients["y"] == 0.0
    assert report.status == "agree", report.detail
    assert report.compared == 1 and f"1 entry where {NO_REAL}" in report.detail
    assert report.disagreements == []


def test_only_finite_tape_entries_against_a_non_real_reference_are_left_out():
    tape = np.array([1.0, 2.0, np.nan, 4.0, np.inf])
    ref = np.array([np.nan, 3.0, np.nan, np.nan, np.nan])
    kink = np.array([False, False, False, True, False])
    alone, after_kinks = _NoRealReference(), _NoRealReference()
    assert alone.masked(tape, ref, None).tolist() == [True, False, False, True, False]
    assert after_kinks.masked(tape, ref, kink).tolist() == [True, False, False, True, False]
    assert (alone.count, after_kinks.count) == (2, 1)  # a skipped kink is not counted again
    assert alone.masked(tape, np.array([1.0, 3.0, 2.0, 4.0, 1.0]), None) is None
    # a tape larger than its reference (compared broadcast) is compared as before
    assert alone.masked(tape, np.float64(np.nan), None) is None
    tally = Tally(1e-7, 1e-9, 5)
    alone.note(tally)
    assert len(tally.notes) == 1 and tally.notes[0].startswith(f"2 entries where {NO_REAL}")
