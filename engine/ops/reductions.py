"""Reductions over ``axis`` (int, list or null for all) with ``keepdims``.

``prod``'s gradient uses ``cumprod`` (engine.ops.scan); ``logsumexp`` has a dedicated
rule, for numerical stability.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.axes import keep_reduced, normalize_axes, reduced_shape, stable_shift
from engine.ops.batching import batch_of, batched_shape, shift_axes
from engine.ops.broadcasting import vectorize_sympy
from engine.ops.costs import CHEAP_ELEMENTWISE, ELEMENTWISE, CostRule
from engine.ops.registry import BatchRule, Case, Domain, F, OpDef, defop
from engine.ops.vjp import value_of
from engine.tensor import Tensor

AXES_ATTRS = {
    "axis": Attr("axes", None, doc="int, list of ints, or null for every axis"),
    "keepdims": Attr("bool", False, doc="keep reduced axes with size 1"),
}
REDUCTION_CASES = (
    Case(((),)),
    Case(((3, 4),)),
    Case(((3, 4),), {"axis": 0}),
    Case(((3, 4),), {"axis": -1, "keepdims": True}),
    Case(((2, 3, 4),), {"axis": [0, 2]}),
)


def point_axes(axis: Any, ndim: int) -> list[int]:
    """The axes ``axis`` names in one point of rank ``ndim`` (null: all of them), as axes
    of the batched tensor: past its batch axis, never that axis itself."""
    return shift_axes(normalize_axes(axis, ndim), 1)


def reduce_batch(name: str) -> BatchRule:
    """Over points: the same reduction over the axes of one point (``point_axes``)."""

    def rule(xs: Any, _batched: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
        x = xs[0]
        return getattr(F, name)(x, axis=point_axes(axis, x.ndim - 1), keepdims=keepdims)

    return rule


def _sum_forward(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    axes = normalize_axes(axis, np.ndim(x))
    return np.sum(x, axis=axes, keepdims=keepdims)


def _sum_vjp(_ans: Tensor, x: Tensor, axis: Any = None, keepdims: bool = False):
    """d/dx sum(x) = ones: g broadcast back over the reduced axes (batch dims kept)."""

    def vjp(g: Tensor) -> tuple[Tensor]:
        gk = keep_reduced(g, x.shape, axis, keepdims)
        return (F.broadcast_to(gk, shape=batched_shape(batch_of(gk, x.ndim), x.shape)),)

    return vjp


def _sum_sympy(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    axes = normalize_axes(axis, np.ndim(x))
    return np.asarray(np.sum(x, axis=axes, keepdims=keepdims), dtype=object)


sum_ = defop(
    OpDef(
        name="sum",
        arity=1,
        batch=reduce_batch("sum"),
        forward=_sum_forward,
        vjp=_sum_vjp,
        sympy=_sum_sympy,
        infer_shape=reduced_shape,
        formula="sum of x over axis; d/dx = ones broadcast from the reduced shape",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=REDUCTION_CASES,
        attrs=AXES_ATTRS,
        family="reductions",
        sparsity=rules.LINEAR_REDUCTION,
        cost=CHEAP_ELEMENTWISE,
    )
)


def reduction(
    name: str, forward: Any, vjp: Any, sympy: Any, formula: str, *,
    convention: str = "smooth, no kinks", domain: Domain | None = None, kink: Any = None,
    nonfinite: str = "overflow", sparsity: Any = rules.REDUCTION,
    cost: CostRule = CHEAP_ELEMENTWISE,
) -> Any:
    """Register a reduction over ``axis`` with ``keepdims`` (``sparsity``: nonlinear unless
    said otherwise; ``cost``: a cheap pass over the input unless said otherwise)."""
    return defop(
        OpDef(
            name=name, arity=1, forward=forward, vjp=vjp, sympy=sympy,
            infer_shape=reduced_shape, formula=formula, convention=convention,
            domains=(domain or Domain(),), cases=REDUCTION_CASES, attrs=AXES_ATTRS, kink=kink,
            nonfinite=nonfinite, family="reductions", sparsity=sparsity,
            batch=reduce_batch(name), cost=cost,
        )
    )


def _count(shape: tuple[int, ...], axis: Any) -> int:
    return math.prod(shape[i] for i in normalize_axes(axis, len(shape)))


# ---------------------------------------------------------------------- mean
# A composition: sum / count, in the forward, the rule and the SymPy form.


def _mean_vjp(ans: Tensor, x: Tensor, axis: Any = None, keepdims: bool = False):
    """d/dx mean(x) = (d/dx sum(x)) / count."""
    scale = np.float64(1.0) / _count(x.shape, axis)  # inf for an empty reduction, like 0/0
    summed = _sum_vjp(ans, x, axis=axis, keepdims=keepdims)
    return lambda g: (summed(g)[0] * scale,)


mean = reduction(
    "mean",
    lambda x, axis=None, keepdims=False: _sum_forward(x, axis, keepdims)
    / np.float64(_count(np.shape(x), axis)),
    _mean_vjp,
    lambda x, axis=None, keepdims=False: _sum_sympy(x, axis, keepdims)
    / sp.Integer(_count(np.shape(x), axis)),
    "mean = sum / count over axis; d/dx = ones / count, broadcast from the reduced shape",
    convention="linear, no kinks",
    nonfinite="mean over an empty axis", sparsity=rules.LINEAR_REDUCTION,
)


# ---------------------------------------------------------------------- prod


def _prod_forward(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return np.prod(x, axis=normalize_axes(axis, np.ndim(x)), keepdims=keepdims)


def _prod_vjp(_ans: Tensor, x: Tensor, axis: Any = None, keepdims: bool = False):
    """d/dx_i prod(x) = prod_{j != i} x_j = (exclusive cumprod) · (reverse exclusive cumprod),
    as TensorFlow's ProdGrad: no division, so right where elements are zero."""
    axes = list(normalize_axes(axis, x.ndim))
    others = [i for i in range(x.ndim) if i not in axes]
    perm = others + axes  # reduced axes last, then flattened into one
    lead = [x.shape[i] for i in others]

    def vjp(g: Tensor) -> tuple[Tensor]:
        gk = keep_reduced(g, x.shape, axis, keepdims)
        if not axes:  # a product over no axis is the identity
            return (gk,)
        flat = F.reshape(F.transpose(x, perm=perm), shape=[*lead, _count(x.shape, axes)])
        left = F.cumprod(flat, axis=-1, exclusive=True)
        right = F.cumprod(flat, axis=-1, exclusive=True, reverse=True)
        others_prod = F.reshape(left * right, shape=[*lead, *(x.shape[i] for i in axes)])
        back = [int(i) for i in np.argsort(perm)]
        return (gk * F.transpose(others_prod, perm=back),)

    return vjp


prod = reduction(
    "prod", _prod_forward, _prod_vjp,
    lambda x, axis=None, keepdims=False: np.asarray(_prod_forward(x, axis, keepdims),
                                                    dtype=object),
    "prod of x over axis; d/dx_i = product of the other elements (exclusive cumprods)",
    convention="polynomial, no kinks; the gradient is exact where elements are zero, "
    "as TensorFlow's ProdGrad",
    domain=Domain(-1.5, 1.5),
)


# ------------------------------------------------------------------ max, min


def _extremum(pick: Any, initial: float) -> Any:
    """An empty reduction gives ``initial`` (-inf for max), as TensorFlow; numpy would raise."""

    def forward(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        axes = normalize_axes(axis, np.ndim(x))
        return pick(x, axis=axes, keepdims=keepdims, initial=initial)

    return forward


_max_forward = _extremum(np.max, -np.inf)
_min_forward = _extremum(np.min, np.inf)


def _ties(forward: Any) -> Any:
    """Kink mask: elements equal to their group's extremum where two or more share it."""

    def kink(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: ARG001
        axes = normalize_axes(axis, np.ndim(x))
        hit = x == forward(x, axis=axes, keepdims=True)
        return hit & (np.sum(hit, axis=axes, keepdims=True) > 1)

    return kink


def _extremum_vjp(ans: Tensor, x: Tensor, axis: Any = None, keepdims: bool = False):
    """d/dx max(x) = indicator(x == max) / (number of ties), as TensorFlow's _MinOrMaxGrad."""

    def vjp(g: Tensor) -> tuple[Tensor]:
        axes = normalize_axes(axis, x.ndim)
        hit = value_of(x) == np.reshape(value_of(ans), reduced_shape(x.shape, axis, True))
        # piecewise constant in x, so a constant: its derivative is genuinely zero
        share = hit / np.sum(hit, axis=axes, keepdims=True)
        return (keep_reduced(g, x.shape, axis, keepdims) * share,)

    return vjp


def _sympy_reduce(fn: Any) -> Any:
    """Lift ``fn(*elements)`` (sympy.Max, sympy.Min) to a reduction over object arrays."""

    def apply(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        x = np.asarray(x, dtype=object)
        axes = list(normalize_axes(axis, x.ndim))
        others = [i for i in range(x.ndim) if i not in axes]
        lead = tuple(x.shape[i] for i in others)
        rows = np.transpose(x, others + axes).reshape(lead + (_count(x.shape, axes),))
        out = np.empty(lead, dtype=object)
        for idx in np.ndindex(lead):
            out[idx] = fn(*rows[idx])
        return out.reshape(reduced_shape(x.shape, axis, keepdims))

    return apply


TIE_RULE = ("at a tie the gradient is split evenly among the tied elements, as "
            "TensorFlow's reduce_{} (indicators / count)")

max_ = reduction(
    "max", _max_forward, _extremum_vjp, _sympy_reduce(sp.Max),
    "max of x over axis; d/dx = 1 at the maximum, 0 elsewhere",
    convention=TIE_RULE.format("max"), kink=_ties(_max_forward),
    sparsity=rules.LINEAR_REDUCTION,  # piecewise linear: no second derivative
)
min_ = reduction(
    "min", _min_forward, _extremum_vjp, _sympy_reduce(sp.Min),
    "min of x over axis; d/dx = 1 at the minimum, 0 elsewhere",
    convention=TIE_RULE.format("min"), kink=_ties(_min_forward),
    sparsity=rules.LINEAR_REDUCTION,
)



# ----------------------------------------------------------------- logsumexp
# A dedicated rule: as log of sum of exp, it overflows for large inputs (exp(1000) is
# inf); the group's max is subtracted first, so every exp is at most 1.


def _logsumexp_forward(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    axes = normalize_axes(axis, np.ndim(x))
    m = stable_shift(x, axes)
    out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return out if keepdims else np.reshape(out, reduced_shape(np.shape(x), axes))


def _logsumexp_vjp(ans: Tensor, x: Tensor, axis: Any = None, keepdims: bool = False):
    """d/dx logsumexp(x) = exp(x - logsumexp(x)) = softmax(x)."""
    return lambda g: (keep_reduced(g, x.shape, axis, keepdims)
                      * F.exp(x - keep_reduced(ans, x.shape, axis, keepdims)),)


def _logsumexp_sympy(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    e = np.sum(_vexp(x), axis=normalize_axes(axis, np.ndim(x)), keepdims=keepdims)
    return np.asarray(_vlog(e), dtype=object)


_vexp = vectorize_sympy(sp.exp)
_vlog = vectorize_sympy(sp.log)

logsumexp = reduction(
    "logsumexp", _logsumexp_forward, _logsumexp_vjp, _logsumexp_sympy,
    "log(sum(exp(x))) over axis; d/dx = exp(x - logsumexp(x)) (softmax). A dedicated "
    "rule for stability: the max is subtracted before exp, so large x does not overflow",
    nonfinite="an infinite input", cost=ELEMENTWISE,
)
