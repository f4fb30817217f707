"""softmax, with a dedicated rule for numerical stability.

As a composition (exp over sum of exp) it overflows for large inputs: exp(1000)
is inf. It subtracts the group's max first, so every exp is at most 1, and its
rule reuses the forward output. (``logsumexp``, likewise stabilised, is a
reduction: engine.ops.reductions.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.axes import normalize_axes, stable_shift
from engine.ops.batching import shift_axis
from engine.ops.broadcasting import vectorize_sympy
from engine.ops.registry import Case, Domain, F, OpDef, Sparsity, defop
from engine.tensor import Tensor

_vexp = vectorize_sympy(sp.exp)


def _softmax_shape(in_shape: tuple[int, ...], axis: int = -1) -> tuple[int, ...]:
    if not in_shape:
        raise ShapeError("softmax needs a tensor of rank >= 1, got a scalar")
    normalize_axes(axis, len(in_shape))
    return in_shape


def _softmax_forward(x: Any, axis: int = -1) -> Any:
    e = np.exp(x - stable_shift(x, (axis,)))
    return e / np.sum(e, axis=axis, keepdims=True)


def _softmax_vjp(ans: Tensor, _x: Tensor, axis: int = -1):
    """d/dx softmax(x)ᵀg = s · (g - sum(g · s)), s = softmax(x)."""

    def vjp(g: Tensor) -> tuple[Tensor]:
        ax = shift_axis(axis, ans.ndim, g.ndim - ans.ndim)
        return (ans * (g - F.sum(g * ans, axis=ax, keepdims=True)),)

    return vjp


def _softmax_batch(xs: Any, _batched: Any, axis: int = -1) -> Tensor:
    """Over points: the same axis of each point, past the batch axis."""
    return F.softmax(xs[0], axis=shift_axis(axis, xs[0].ndim - 1, 1))


def _softmax_deps(_op: OpDef, in_shapes: Any, _out: Any, attrs: Any) -> rules.Maps:
    """Each output element depends on its whole line along ``axis``."""
    return (rules.along(in_shapes[0], attrs["axis"], prefix=False),)


def _softmax_sympy(x: Any, axis: int = -1) -> Any:
    e = _vexp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


softmax = defop(
    OpDef(
        name="softmax",
        arity=1,
        batch=_softmax_batch,
        forward=_softmax_forward,
        vjp=_softmax_vjp,
        sympy=_softmax_sympy,
        infer_shape=_softmax_shape,
        formula="softmax(x) = exp(x) / sum(exp(x)) along axis; d/dx: s · (g - sum(g · s)). "
        "Dedicated for stability: the max is subtracted before exp",
        convention="smooth, no kinks",
        domains=(Domain(),),
        cases=(Case(((4,),)), Case(((3, 4),), {"axis": 0}), Case(((2, 3, 4),), {"axis": 1})),
        attrs={"axis": Attr("int", -1, doc="axis the probabilities sum to 1 along")},
        nonfinite="an infinite input",
        family="reductions",
        sparsity=Sparsity(_softmax_deps),
    )
)
