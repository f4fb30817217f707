"""SymPy's check at the edges of its own arithmetic: inline decimal constants, empty
tensors and tiny imaginary parts (``engine.check.symbolic``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from engine.check.symbolic import number, to_float
from engine.ops import OPS
from tests.engine.test_verify import node, run, var, wrong_vjp


@pytest.mark.parametrize(("op", "constant"), [("relu", None), ("abs", None),
                                              ("minimum", 0.1), ("maximum", 0.3)])
def test_a_kink_at_an_inline_decimal_is_a_kink_for_sympy_too(op, constant):
    """x - 0.1 at x = 0.1 is exactly 0 in float64: SymPy's constant is the same binary
    number, not 1/10, so it finds the kink the tape's convention answers."""
    at = 0.1 if constant is None else constant
    inner = (node("d", "sub", "x", at), node("r", op, "d")) if constant is None else (
        node("r", op, "x", constant),)
    result, report = run("gradient", [var("x", at), *inner], "sympy")
    assert report.status == "skipped" and "at a kink" in report.detail, report.detail
    assert report.disagreements == []
    assert np.isfinite(result.gradients["x"])


def test_inline_decimals_are_their_binary_value_and_read_as_written():
    assert number(0.1) == sp.Float(0.1) and number(0.1) != sp.Rational(1, 10)
    assert number(0.375) == sp.Rational(3, 8) and number(2.0) == 2
    x = sp.Symbol("x")
    assert str(x - number(0.1)) == "x - 0.1"
    result, report = run("gradient", [var("x", 0.7), node("a", "mul", "x", 0.1),
                                      node("s", "sin", "x"), node("L", "add", "a", "s")],
                         "sympy")
    assert report.status == "agree" and report.compared == 1, report.detail
    assert report.symbolic["gradients"]["x"] == "cos(x) + 0.1"


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "mean", "logsumexp", "norm",
                                "softmax", "cumprod"])
@pytest.mark.parametrize("kind", ["evaluate", "gradient", "hessian"])
def test_an_empty_tensor_is_checked_without_failing(op, kind):
    nodes = [var("x", []), node("m", op, "x")]
    if op in ("softmax", "cumprod"):  # a tensor: summed into the Hessian's scalar
        nodes.append(node("s", "sum", "m"))
    report = run(kind, nodes, "sympy")[1]
    assert "failed" not in report.detail, report.detail
    assert report.status in ("agree", "skipped"), report.detail


@pytest.mark.parametrize(("value", "real"), [
    (complex(6e-19, 2.7e-18), False),  # (-2)**y*log(-2) at y = -60: complex, however small
    (complex(1.0, 1e-20), True),  # rounding against the real part
    (complex(0.0, 1e-40), True),  # rounding below what DPS digits leave
    (complex(-3.0, 0.5), False),
])
def test_an_imaginary_part_is_rounding_only_when_negligible(value, real):
    got = to_float(sp.Float(value.real, 30) + sp.I * sp.Float(value.imag, 30))
    assert (got == value.real) if real else math.isnan(got)


def test_xlogys_convention_at_zero_is_left_out_where_the_slope_differs():
    """d/dx xlogy(x, 5) at x = 0 is log(5); TensorFlow's (and the tape's) is 0: an op's
    point convention, not compared. d/dy there is 0 either way: compared."""
    nodes = [var("x", 0.0), var("y", 5.0), node("p", "xlogy", "x", "y"),
             node("L", "add", "p", "x")]
    result, report = run("gradient", nodes, "sympy")
    assert (result.gradients["x"], result.gradients["y"]) == (1.0, 0.0)
    assert report.status == "agree" and report.compared == 1, report.detail
    assert "1 entry at a kink" in report.detail and "xlogy" in report.detail
    # away from 0 both are compared
    nodes[0] = var("x", 0.5)
    report = run("gradient", nodes, "sympy")[1]
    assert report.status == "agree" and report.compared == 2, report.detail


def test_a_wrong_slope_next_to_a_point_convention_is_caught():
    """div_no_nan's d/dy at y = 0 is a convention; d/dx elsewhere is still checked."""
    nodes = [var("x", 1.0), var("y", 2.0), node("q", "div_no_nan", "x", "y")]
    with wrong_vjp(OPS["div_no_nan"], lambda _ans, _x, _y: lambda g, _n: (g * 7.0, g * 0.0)):
        report = run("gradient", nodes, "sympy")[1]
    assert report.status == "disagree"
    assert {d["source"] for d in report.disagreements} == {"x", "y"}
