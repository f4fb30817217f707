"""Two-input elementwise ops with numpy broadcasting.

Rules return cotangents of the broadcast output's shape; the reverse sweep
un-broadcasts them once, centrally, so no rule here mentions broadcasting.
Each ``back(g, needs)`` computes only the cotangents ``needs`` asks for (the
other input is often a constant: ``x * 0.9``, ``x ** 2``).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.batching import spread
from engine.ops.broadcasting import BINARY_CASES, elementwise_shape, vectorize_sympy
from engine.ops.costs import CHEAP, CHEAP_ELEMENTWISE, ELEMENTWISE, Cost, CostRule, size
from engine.ops.registry import Case, Domain, F, OpDef, Shape, Sparsity, defop
from engine.ops.vjp import VJP, constant_like, times_into, uncurried, value_of
from engine.tensor import Tensor

ANYWHERE = Domain()
BOTH = (True, True)


def binary(
    name: str,
    forward: Callable[[Any, Any], Any],
    vjp: VJP | None,
    sympy: Callable[[Any, Any], Any],
    formula: str,
    *,
    convention: str = "smooth on its domain",
    domains: tuple[Domain, Domain] = (ANYWHERE, ANYWHERE),
    kink: Callable[[Any, Any], Any] | None = None,
    nonfinite: str = "overflow",
    sample: Callable[..., tuple[np.ndarray, ...]] | None = None,
    sparsity: Sparsity = rules.SMOOTH,
    cost: CostRule = ELEMENTWISE,
    rule_into: Callable[..., tuple] | None = None,
) -> Callable[..., Tensor]:
    """Register a two-input broadcasting op (``sparsity``: nonlinear unless said otherwise)."""
    return defop(
        OpDef(
            name=name,
            arity=2,
            forward=forward,
            vjp=vjp,
            sympy=vectorize_sympy(sympy),
            infer_shape=elementwise_shape,
            formula=formula,
            convention=convention,
            domains=domains,
            cases=BINARY_CASES,
            kink=kink,
            nonfinite=nonfinite,
            family="binary",
            sample=sample,
            sparsity=sparsity,
            cost=cost,
            rule_into=rule_into,
        )
    )


# Python's operators, not np.add & co.: on numpy scalars they are ~10x cheaper,
# and on arrays they dispatch to the same ufuncs. sub and div keep rules of their
# own rather than add(a, neg(b)) and mul(a, reciprocal(b)): fewer ops per step on
# the long scalar chains the engine is benchmarked on.
add = binary(
    "add", operator.add, uncurried(lambda g, _needs, _ans, _a, _b: (g, g)), operator.add,
    "a + b; d/da = 1, d/db = 1", sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
)
sub = binary(
    "sub", operator.sub,
    uncurried(lambda g, needs, _ans, _a, _b: (g, -g if needs[1] else None)), operator.sub,
    "a - b; d/da = 1, d/db = -1", sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
    # with a constant a (1 - x), -g goes into g (OpDef.rule_into)
    rule_into=lambda g, needs, _ans, _a, _b: (
        (g, -g if needs[1] else None) if needs[0]
        else (None, np.negative(g, out=g) if needs[1] else None)
    ),
)


def _mul_into(g: Any, needs: tuple[bool, bool], _ans: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """mul's rule with one cotangent written into ``g`` (``OpDef.rule_into``); d/db = g * a
    reads ``g`` before d/da is written there."""
    if not needs[0]:
        return None, times_into(g, a) if needs[1] else None
    gb = g * a if needs[1] else None
    return times_into(g, b), gb


mul = binary(
    "mul", operator.mul,
    uncurried(lambda g, needs, _ans, a, b: (
        g * b if needs[0] else None, g * a if needs[1] else None
    )),
    operator.mul,
    "a * b; d/da = b, d/db = a", sparsity=rules.PRODUCT,
    cost=CHEAP_ELEMENTWISE,
    rule_into=_mul_into,
)


def _div_rule(
    g: Tensor, needs: tuple[bool, bool], ans: Tensor, _a: Tensor, b: Tensor
) -> tuple[Tensor, Tensor | None]:
    # g/b serves both inputs: d/db = -(a/b)/b = -ans/b, three ops in all
    g_b = g / b
    return g_b, -g_b * ans if needs[1] else None


div = binary(
    "div", operator.truediv, uncurried(_div_rule), operator.truediv,
    "a / b; d/da = 1/b, d/db = -a/b²",
    domains=(ANYWHERE, Domain(kinks=(0.0,), gap=0.5)),
    nonfinite="division by zero", sparsity=rules.QUOTIENT,
    cost=CHEAP_ELEMENTWISE,
)


_SCALARS = (float, int, np.float64)


def _zero_base_and_exponent(a: Any, b: Any) -> np.ndarray | None:
    """Where base and exponent are both 0 (a constant mask), or None where nowhere; a
    non-zero scalar exponent, the common case, is told without numpy (its test cost 5 µs
    a pow, 28 µs on the seed request)."""
    exponent = value_of(b)
    if type(exponent) in _SCALARS and exponent != 0:
        return None
    hole = (np.asarray(exponent) == 0) & (np.asarray(value_of(a)) == 0)
    return hole if hole.any() else None


def _pow_vjp(ans: Tensor, a: Tensor, b: Tensor):
    def d_da(g: Tensor) -> Tensor:
        # b·a^(b-1) is 0 where b = 0 (a^0 is constant in a), even at a = 0 where a^(b-1)
        # is infinite, as PyTorch: there (``hole``) the factor b is taken as 0 and the
        # base as 1, so no 0·inf reaches x**1's second derivative or x**2's third at 0.
        # The exponent is left alone: an exponent that is a source keeps its own
        # derivatives (d/db of b·a^(b-1) is a^(b-1)·(1 + b·log a) at any other point)
        hole = _zero_base_and_exponent(a, b)
        if hole is None:
            return g * b * a ** (b - 1.0)
        keep = ~hole
        return g * (b * keep) * (a * keep + hole * 1.0) ** (b - 1.0)

    def d_db(g: Tensor) -> Tensor:
        # log(a) only where a > 0 and 0 elsewhere, as TensorFlow's PowGrad; the
        # mask is a constant (its derivative is genuinely zero off a = 0)
        positive = np.asarray(value_of(a)) > 0
        if positive.all():
            return g * ans * F.log(a)
        return g * ans * F.log(a * positive + (~positive) * 1.0)

    return lambda g, needs=BOTH: (
        d_da(g) if needs[0] else None, d_db(g) if needs[1] else None
    )


EXACT_POW_BITS = 4096
"""Two numbers whose exact power would run past this many bits are raised in 30-digit
floats (the check's precision) instead: SymPy would write out every digit (9^9^9 has 370
million) and hold its worker for the whole budget."""
FLOAT_POW_BITS = 2.0**53
"""Past this even a float's exponent is too long to compute with (9^9^9^9): float64's
own power is taken, as the tape takes it (inf, 0 or nan)."""


def _sympy_pow(a: Any, b: Any) -> Any:
    """``a ** b`` for SymPy: exact, unless both are numbers and the exact power is huge."""
    if not (isinstance(a, sp.Number) and isinstance(b, sp.Number)):
        return a**b
    bits = _power_bits(a, b)
    if bits <= EXACT_POW_BITS:
        return a**b
    if bits <= FLOAT_POW_BITS:
        return sp.Float(a, 30) ** b
    with np.errstate(all="ignore"):
        r = float(np.power(float(a), float(b)))
    if np.isnan(r):
        return sp.nan
    if np.isinf(r):
        return sp.oo if r > 0 else -sp.oo
    return sp.Float(r)


def _power_bits(a: sp.Number, b: sp.Number) -> float:
    """About how many bits the exact ``a ** b`` has: |b| times the bits of a's larger part
    (nan when that is unbounded, which compares as too many)."""
    if isinstance(a, sp.Rational):
        size = max(abs(a.p), a.q)
        if size <= 1:  # 0, 1, -1: any power is as small
            return 0.0
        return abs(float(b)) * size.bit_length()
    if a in (sp.Integer(0), sp.Integer(1), sp.Integer(-1)):
        return 0.0
    return abs(float(b)) * abs(float(sp.log(abs(a), 2)))


POW_NEGATIVE_BASE = "a negative base with a non-integer exponent"
POW_ZERO_BASE = "zero to a negative power"
POW_OVERFLOW = "overflow (the result is beyond float64's range)"
POW_ANY = f"{POW_NEGATIVE_BASE}, {POW_ZERO_BASE}, or {POW_OVERFLOW}"

pow_ = binary(
    "pow", operator.pow, _pow_vjp, _sympy_pow,
    "a ** b; d/da = b·a^(b-1), d/db = a^b·log(a)",
    convention="d/db is 0 where a <= 0, as TensorFlow (log(a) is replaced by 0 there); "
               "d/da is 0 where b = 0, also at a = 0, as PyTorch (TensorFlow's is NaN there)",
    domains=(Domain(0.5, 2.0), Domain(-2.0, 2.0)),
    nonfinite=POW_ANY,
)


def pow_nonfinite(a: Any, b: Any, out: Any) -> str:
    """Which causes made ``a ** b`` non-finite from finite inputs, read off the values.

    Each asks the user for a different change: a NaN is a negative base under a
    non-integer exponent, an infinity at a zero base a negative power, any other
    infinity (``10 ** 1000``) an overflow. Inputs that do not broadcast against the
    output (a points axis on one input only) cannot tell them apart: all three.
    """
    try:
        bad = np.isfinite(a) & np.isfinite(b) & ~np.isfinite(out)
        infinite = bad & np.isinf(out)
        zero = infinite & (np.asarray(a) == 0)
        hits = (bad & np.isnan(out), zero, infinite & ~zero)
    except ValueError:
        return POW_ANY
    causes = [c for c, hit in zip(_POW_CAUSES, hits, strict=True) if hit.any()]
    return " and ".join(causes) or POW_ANY


_POW_CAUSES = (POW_NEGATIVE_BASE, POW_ZERO_BASE, POW_OVERFLOW)


def _tie_free(rng: np.random.Generator, shapes: tuple[Shape, ...]) -> tuple[np.ndarray, ...]:
    """a on the grid k/2 + 1/4, b on k/2, both jittered: every pair is >= 0.15 apart,
    and either may be the larger, so both branches of maximum/minimum are tested."""
    a = rng.integers(-4, 4, shapes[0]) / 2 + 0.25 + rng.uniform(-0.05, 0.05, shapes[0])
    b = rng.integers(-4, 4, shapes[1]) / 2 + rng.uniform(-0.05, 0.05, shapes[1])
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


def _select_vjp(first: Callable[[Any, Any], Any]) -> VJP:
    """Route g to a where ``first(a, b)`` holds (ties included), else to b, as TF."""

    def vjp(_ans: Tensor, a: Tensor, b: Tensor):
        to_a = first(value_of(a), value_of(b)) * 1.0  # a constant 0/1 mask, float64
        return lambda g, needs=BOTH: (
            g * to_a if needs[0] else None, g * (1.0 - to_a) if needs[1] else None
        )

    return vjp


maximum = binary(
    "maximum", np.maximum, _select_vjp(operator.ge), sp.Max,
    "maximum(a, b); d/da = 1 where a >= b else 0, d/db = 1 where a < b else 0",
    convention="a tie (a == b) sends the whole gradient to the first input, as TensorFlow",
    kink=operator.eq, sample=_tie_free, sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
)
minimum = binary(
    "minimum", np.minimum, _select_vjp(operator.le), sp.Min,
    "minimum(a, b); d/da = 1 where a <= b else 0, d/db = 1 where a > b else 0",
    convention="a tie (a == b) sends the whole gradient to the first input, as TensorFlow",
    kink=operator.eq, sample=_tie_free, sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
)


def _atan2_vjp(_ans: Tensor, y: Tensor, x: Tensor):
    def vjp(g: Tensor, needs: tuple[bool, bool] = BOTH) -> tuple[Tensor | None, ...]:
        g_r2 = g / (x * x + y * y)
        return g_r2 * x if needs[0] else None, -g_r2 * y if needs[1] else None

    return vjp


atan2 = binary(
    "atan2", np.arctan2, _atan2_vjp, sp.atan2,
    "atan2(y, x): the angle of (x, y); d/dy = x/(x² + y²), d/dx = -y/(x² + y²)",
    convention="jumps by 2π across y = 0 for x < 0; at the origin the gradient is NaN "
    "(0/0), as TensorFlow",
    domains=(Domain(kinks=(0.0,), gap=0.3), ANYWHERE),
    kink=lambda y, x: (y == 0) & (x <= 0),
    nonfinite="a NaN input (atan2 itself is always finite)",
)


# ------------------------------------------------------- TensorFlow's safe products


def _xlogy_forward(x: Any, y: Any) -> Any:
    """x·log(y), and 0 wherever x == 0 (whatever y is, NaN included), as tf.math.xlogy."""
    with np.errstate(all="ignore"):
        return np.where(np.asarray(x) == 0, 0.0, x * np.log(y))


def _xlogy_rule(g: Any, needs: tuple[bool, bool], _ans: Any, x: Any, y: Any) -> tuple:
    """TF's _XLogyGrad: d/dx = xlogy(x != 0, y), d/dy = x/y, both 0 where x == 0."""
    nonzero = constant_like(g, np.asarray(value_of(x)) != 0)
    return (
        g * F.xlogy(nonzero, y) if needs[0] else None,
        g * F.where(nonzero, x / y, 0.0) if needs[1] else None,
    )


xlogy = binary(
    "xlogy", _xlogy_forward, uncurried(_xlogy_rule),
    lambda x, y: sp.Piecewise((sp.Integer(0), sp.Eq(x, 0)), (x * sp.log(y), True)),
    "xlogy(x, y) = x·log(y), 0 where x = 0; d/dx = log(y), d/dy = x/y (both 0 where x = 0)",
    convention="0 where x = 0 (even for y = 0), and so are both derivatives, as TensorFlow",
    domains=(ANYWHERE, Domain(0.2, 3.0)),
    nonfinite="log of a negative or zero y where x != 0",
)


def _div_no_nan_forward(x: Any, y: Any) -> Any:
    """x / y, and 0 wherever y == 0 (x NaN or infinite included), as tf.math.divide_no_nan."""
    with np.errstate(all="ignore"):
        return np.where(np.asarray(y) == 0, 0.0, np.asarray(x) / np.where(y == 0, 1.0, y))


def _div_no_nan_rule(g: Any, needs: tuple[bool, bool], _ans: Any, x: Any, y: Any) -> tuple:
    """TF's _DivNoNanGrad: d/dx = div_no_nan(g, y), d/dy = g·div_no_nan(div_no_nan(-x, y), y)."""
    return (
        F.div_no_nan(g, y) if needs[0] else None,
        g * F.div_no_nan(F.div_no_nan(-x, y), y) if needs[1] else None,
    )


div_no_nan = binary(
    "div_no_nan", _div_no_nan_forward, uncurried(_div_no_nan_rule),
    lambda x, y: sp.Piecewise((sp.Integer(0), sp.Eq(y, 0)), (x / y, True)),
    "div_no_nan(x, y) = x / y, 0 where y = 0; d/dx = 1/y, d/dy = -x/y² (both 0 where y = 0)",
    convention="0 where y = 0, and so are both derivatives, as TensorFlow",
    domains=(ANYWHERE, Domain(kinks=(0.0,), gap=0.5)),
    kink=lambda _x, y: np.asarray(y) == 0,
    nonfinite="overflow (x / y for a tiny y)",
    sparsity=rules.QUOTIENT,
    cost=CHEAP_ELEMENTWISE,
)


# ------------------------------------------------------------ add_n


def _add_n_shape(*shapes: Shape) -> Shape:
    for s in shapes[1:]:
        if s != shapes[0]:
            raise ShapeError(f"add_n needs equal shapes, got {list(shapes[0])} and {list(s)}")
    return shapes[0]


def _add_n_cost(ins: tuple[Shape, ...], out: Shape, _attrs: Any) -> Cost:
    """A pass over the output per input each way: the sum of k inputs adds k - 1 times,
    and the sweep adds the cotangent into each of them (one input read k times over
    was priced as one pass: 1000 of a million elements took 0.58 s against 3 ms)."""
    passes = CHEAP * size(out) * len(ins)
    return Cost(passes, passes)


add_n = defop(
    OpDef(
        name="add_n",
        arity=None,
        forward=lambda *xs: functools.reduce(operator.add, xs),
        vjp=uncurried(lambda g, needs, _ans, *_xs: tuple(g if n else None for n in needs)),
        sympy=lambda *xs: functools.reduce(operator.add, xs),
        infer_shape=_add_n_shape,
        formula="add_n(x1, ..., xn) = x1 + ... + xn, equal shapes, as tf.add_n; each input "
        "gets the cotangent",
        convention="linear, no kinks",
        domains=(ANYWHERE,),
        cases=(Case(((), (), ())), Case(((3, 4), (3, 4)))),
        family="variadic",  # equal shapes, no broadcasting: not "binary"
        # over points: inputs without the batch axis repeated for every point first
        batch=lambda xs, batched: F.add_n(*spread(xs, batched)),
        sparsity=rules.LINEAR,
        cost=_add_n_cost,
    )
)
