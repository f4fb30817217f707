"""Small requests that once cost the most: exact powers of numbers in SymPy, and empty
tensors of many rows in the cost model."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy as sp

from engine import cost
from engine.ops.registry import OPS


def sympy_pow(a, b):
    return OPS["pow"].sympy(np.array(a, dtype=object), np.array(b, dtype=object))[()]


def test_small_exact_powers_stay_exact() -> None:
    assert sympy_pow(sp.Integer(2), sp.Integer(10)) == sp.Integer(1024)
    assert sympy_pow(sp.Rational(1, 3), sp.Integer(5)) == sp.Rational(1, 243)
    x = sp.Symbol("x")
    assert sympy_pow(x, sp.Integer(10**9)) == x ** (10**9)


@pytest.mark.parametrize(
    ("a", "b", "digits"),
    [(9, 9**9, 369693100), (2, 10**9, 301029996), (sp.Rational(1, 7), 10**8, 84509805)],
)
def test_huge_exact_powers_are_taken_in_floats_at_once(a, b, digits) -> None:
    start = time.monotonic()
    got = sympy_pow(sp.sympify(a), sp.Integer(b))
    assert time.monotonic() - start < 0.5
    assert isinstance(got, sp.Float)
    assert abs(int(sp.floor(sp.log(abs(got), 10)))) + 1 in (digits, digits - 1, digits + 1)


def test_a_power_past_any_float_exponent_is_float64s_at_once() -> None:
    huge = sp.Float(9, 30) ** sp.Integer(9**9)
    start = time.monotonic()
    assert sympy_pow(sp.Integer(9), huge) == sp.oo
    assert sympy_pow(sp.Rational(1, 9), huge) == sp.Float(0)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize(
    ("shape", "cells"),
    [((), 1), ((3, 4), 12), ((0,), 1), ((10**9, 0), 10**9), ((5, 0, 10**9), 5), ((2, 3, 0), 6)],
)
def test_an_empty_tensor_costs_its_rows(shape, cells) -> None:
    assert cost.cells(shape) == cells
