"""Comparisons, logical ops and ``where``: truth values as float64 1.0 and 0.0.

The engine holds float64 only, so a boolean tensor is one of 1.0 (true) and 0.0
(false); an op reading a condition takes it as true where it is positive. Comparisons
and logical ops have no gradient (TensorFlow registers them NotDifferentiable:
the gradient is None, or zeros with ``unconnected_gradients="zero"``); ``where`` routes
the cotangent to ``x`` where the condition holds and to ``y`` elsewhere, never to the
condition, as TensorFlow's SelectV2 gradient.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from engine.ops import batching
from engine.ops import dependence as rules
from engine.ops.broadcasting import (
    BINARY_CASES,
    UNARY_CASES,
    elementwise_shape,
    vectorize_sympy,
)
from engine.ops.costs import CHEAP_ELEMENTWISE
from engine.ops.registry import Case, Domain, F, OpDef, Shape, defop
from engine.ops.vjp import uncurried, value_of
from engine.tensor import Tensor

NO_GRADIENT = (
    "no gradient: the output is piecewise constant, so TensorFlow gives None (zeros with "
    "unconnected_gradients='zero'), and so does the engine"
)
TRUTH = "1.0 where true, 0.0 where false (the engine is float64 only)"


def truth(x: Any) -> Any:
    """Where a condition holds: where it is positive (comparisons give 1.0 and 0.0)."""
    return np.asarray(x) > 0


def _as_float(mask: Any) -> Any:
    return np.asarray(mask, dtype=np.float64)


def _sympy_truth(x: Any) -> Any:
    return sp.Gt(x, 0)


def _predicate(
    name: str,
    arity: int,
    forward: Callable[..., Any],
    sympy_relation: Callable[..., Any],
    formula: str,
) -> Callable[..., Tensor]:
    """Register a comparison or logical op: 1.0/0.0 out, no gradient."""
    return defop(
        OpDef(
            name=name,
            arity=arity,
            forward=lambda *xs: _as_float(forward(*xs)),
            vjp=None,
            sympy=vectorize_sympy(
                lambda *xs: sp.Piecewise(
                    (sp.Integer(1), sympy_relation(*xs)), (sp.Integer(0), True)
                )
            ),
            infer_shape=elementwise_shape,
            formula=f"{formula}: {TRUTH}",
            convention=NO_GRADIENT,
            domains=(Domain(),),
            cases=BINARY_CASES if arity == 2 else UNARY_CASES,
            nonfinite="a NaN input compares false (the output itself is always finite)",
            family="binary" if arity == 2 else "elementwise",  # no batch rule: broadcasting
            sparsity=rules.ZERO,
            cost=CHEAP_ELEMENTWISE,
        )
    )


less = _predicate("less", 2, operator.lt, sp.Lt, "a < b")
greater = _predicate("greater", 2, operator.gt, sp.Gt, "a > b")
less_equal = _predicate("less_equal", 2, operator.le, sp.Le, "a <= b")
greater_equal = _predicate("greater_equal", 2, operator.ge, sp.Ge, "a >= b")
equal = _predicate("equal", 2, operator.eq, sp.Eq, "a == b")
not_equal = _predicate("not_equal", 2, operator.ne, sp.Ne, "a != b")
logical_and = _predicate(
    "logical_and",
    2,
    lambda a, b: truth(a) & truth(b),
    lambda a, b: sp.And(_sympy_truth(a), _sympy_truth(b)),
    "a and b, each true where positive",
)
logical_or = _predicate(
    "logical_or",
    2,
    lambda a, b: truth(a) | truth(b),
    lambda a, b: sp.Or(_sympy_truth(a), _sympy_truth(b)),
    "a or b, each true where positive",
)
logical_not = _predicate(
    "logical_not",
    1,
    lambda a: ~truth(a),
    lambda a: sp.Not(_sympy_truth(a)),
    "not a, a true where positive",
)


# ------------------------------------------------------------------- where


def _where_forward(cond: Any, x: Any, y: Any) -> Any:
    return np.where(truth(cond), x, y)


def _where_rule(g: Any, needs: tuple[bool, ...], _ans: Any, cond: Any, _x: Any, _y: Any) -> tuple:
    """select(cond, g, 0) to x, select(cond, 0, g) to y: a select, not a product, so an
    infinite or NaN cotangent on one branch never leaks into the other (as TF)."""
    c = _as_float(truth(value_of(cond)))
    c = Tensor(c) if isinstance(g, Tensor) else c
    return (
        None,
        F.where(c, g, 0.0) if needs[1] else None,
        F.where(c, 0.0, g) if needs[2] else None,
    )


def _where_sample(rng: np.random.Generator, shapes: tuple[Shape, ...]) -> tuple[np.ndarray, ...]:
    """A condition of 1.0 and -1.0, a whole unit from where it switches, so that finite
    differences through every input (the condition too) stay on one branch."""
    cond = rng.choice([-1.0, 1.0], size=shapes[0])
    return (cond, *(rng.uniform(-2.0, 2.0, s) for s in shapes[1:]))


def _where_sympy(cond: Any, x: Any, y: Any) -> Any:
    return sp.Piecewise((x, _sympy_truth(cond)), (y, True))


where = defop(
    OpDef(
        name="where",
        arity=3,
        forward=_where_forward,
        vjp=uncurried(_where_rule),
        sympy=vectorize_sympy(_where_sympy),
        infer_shape=elementwise_shape,
        formula="where(cond, x, y) = x where cond > 0 else y, numpy broadcasting; "
        "d/dx = 1 where cond > 0 else 0, d/dy the rest",
        convention="the condition gets no gradient (None), as TensorFlow; x and y get the "
        "cotangent selected, not multiplied, so a NaN or infinity on one branch stays there",
        inputs_without_gradient=(0,),
        domains=(Domain(),),
        cases=(
            Case(((), (), ())),
            Case(((3, 4), (3, 4), (3, 4))),
            Case(((3, 1), (1, 4), ())),
            Case(((4,), (3, 4), (3, 1))),
        ),
        nonfinite="a non-finite x or y where it is selected",
        family="logic",
        batch=lambda xs, batched: batching.elementwise(F.where, xs, batched),
        sample=_where_sample,
        sparsity=rules.Sparsity(
            lambda op, ins, out, attrs: (None, *rules.elementwise(op, ins[1:], out, attrs)),
            "linear",
        ),
        cost=CHEAP_ELEMENTWISE,
    )
)
