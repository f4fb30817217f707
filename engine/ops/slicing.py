"""Strided slicing and its transpose, ``pad_slice``; each op's VJP is the other.

``slice {begin, end, step}`` takes per-axis lists as Python's ``x[b:e:s]``:
negative indices count from the end, out-of-range bounds clamp, missing
trailing axes (and a null ``end`` or ``step``) mean the full axis.
``pad_slice`` writes its input into zeros of ``shape`` at that slice: the
scatter that carries a slice's cotangent back, itself recorded so that
higher derivatives of slices work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.batching import batch_of, batched_shape, batched_slice
from engine.ops.costs import CHEAP_ELEMENTWISE
from engine.ops.registry import Case, Domain, F, OpDef, defop
from engine.tensor import Tensor

Shape = tuple[int, ...]


def slices(shape: Shape, begin: Any, end: Any = None, step: Any = None) -> tuple[slice, ...]:
    """Per-axis Python slices for ``shape``; ShapeError for too many axes or a zero step.

    A slice and its transpose ask for them at every op, forward and backward: built by
    ``map(slice, ...)`` over the padded attrs (0.7 µs against a loop's 1.2 µs). Not
    remembered between calls: a memory of them, churned by a flood of slices with new
    attrs on four threads, cut the throughput of such requests by more than half."""
    ndim = len(shape)
    begin, end, step = tuple(begin or ()), tuple(end or ()), tuple(step or ())
    for name, v in (("begin", begin), ("end", end), ("step", step)):
        if len(v) > ndim:
            raise ShapeError(f"{name} {list(v)} has more entries than shape {list(shape)} "
                             "has axes")
    if 0 in step:
        raise ShapeError(f"step {list(step)} has a zero entry")
    full = (None,) * ndim  # a missing trailing axis: the whole axis
    return tuple(map(slice, begin + full[len(begin):], end + full[len(end):],
                     step + full[len(step):]))


def sliced_shape(shape: Shape, begin: Any, end: Any = None, step: Any = None) -> Shape:
    cuts = slices(shape, begin, end, step)
    return tuple(len(range(*s.indices(n))) for s, n in zip(cuts, shape, strict=True))


def _slice_shape(in_shape: Shape, begin: Any = None, end: Any = None, step: Any = None) -> Shape:
    return sliced_shape(in_shape, begin, end, step)


def _slice_forward(x: Any, begin: Any = None, end: Any = None, step: Any = None) -> Any:
    # a copy: values stay immutable and independent of their inputs
    return np.array(np.asarray(x)[slices(np.shape(x), begin, end, step)])


def _slice_vjp(_ans: Tensor, x: Tensor, begin: Any = None, end: Any = None, step: Any = None):
    """d/dx x[b:e:s] = zeros of x's shape with g written at [b:e:s]."""

    def vjp(g: Tensor) -> tuple[Tensor]:
        batch = batch_of(g, x.ndim)
        if not batch:
            return (F.pad_slice(g, shape=list(x.shape), begin=begin, end=end, step=step),)
        shape = batched_shape(batch, x.shape)
        return (F.pad_slice(g, shape=shape, **batched_slice(batch, begin, end, step)),)

    return vjp


def _pad_slice_vjp(ans: Tensor, _x: Tensor, begin: Any = None, end: Any = None,
                   step: Any = None, **_: Any):
    """d/dx pad_slice(x) = g[b:e:s]."""
    return lambda g: (
        F.slice(g, **batched_slice(batch_of(g, ans.ndim), begin, end, step)),
    )


def _slice_batch(xs: Any, _batched: Any, begin: Any = None, end: Any = None,
                 step: Any = None) -> Tensor:
    """Over points: the batch axis taken whole, each point sliced as given."""
    return F.slice(xs[0], **batched_slice(xs[0].shape[:1], begin, end, step))


def _pad_slice_batch(xs: Any, _batched: Any, shape: Any = None, begin: Any = None,
                     end: Any = None, step: Any = None) -> Tensor:
    """Over points: each point padded into its own zeros, the batch axis taken whole."""
    batch = xs[0].shape[:1]
    return F.pad_slice(xs[0], shape=batched_shape(batch, shape),
                       **batched_slice(batch, begin, end, step))


slice_ = defop(
    OpDef(
        name="slice",
        arity=1,
        batch=_slice_batch,
        forward=_slice_forward,
        vjp=_slice_vjp,
        sympy=lambda x, begin=None, end=None, step=None: np.asarray(
            x[slices(np.shape(x), begin, end, step)], dtype=object),
        infer_shape=_slice_shape,
        formula="slice(x) = x[begin:end:step] per axis; the cotangent is scattered back "
        "(pad_slice)",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(
            Case(((5,),), {"begin": [1], "end": [4]}),
            Case(((3, 4),), {"begin": [0, 1], "end": [3, 4], "step": [2, 1]}),
            Case(((3, 4),), {"begin": [-2]}),
            Case(((3, 4),), {"begin": [0, -1], "end": None, "step": [1, -2]}),
            Case(((2, 3, 4),), {"begin": [1, 0, 1], "end": [2, 3, 3]}),
            Case(((),), {"begin": []}),
        ),
        attrs={
            "begin": Attr("ints", required=True, doc="start index per axis, negative from the end"),
            "end": Attr("ints", None, doc="stop index per axis (exclusive); null: to the end"),
            "step": Attr("ints", None, doc="stride per axis, non-zero; null: 1"),
        },
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


def _pad_slice_shape(
    in_shape: Shape, shape: Any = None, begin: Any = None, end: Any = None, step: Any = None
) -> Shape:
    target = tuple(shape)
    if any(n < 0 for n in target):
        raise ShapeError(f"invalid shape {list(target)}")
    hole = sliced_shape(target, begin, end, step)
    if hole != in_shape:
        raise ShapeError(
            f"a tensor of shape {list(in_shape)} does not fit the slice of {list(target)}, "
            f"which has shape {list(hole)}"
        )
    return target


def _pad_slice_forward(
    x: Any, shape: Any = None, begin: Any = None, end: Any = None, step: Any = None
) -> Any:
    out = np.zeros(tuple(shape))
    out[slices(out.shape, begin, end, step)] = x
    return out


def _pad_slice_sympy(
    x: Any, shape: Any = None, begin: Any = None, end: Any = None, step: Any = None
) -> Any:
    out = np.full(tuple(shape), sp.Integer(0), dtype=object)
    out[slices(out.shape, begin, end, step)] = x
    return out


pad_slice = defop(
    OpDef(
        name="pad_slice",
        arity=1,
        batch=_pad_slice_batch,
        forward=_pad_slice_forward,
        vjp=_pad_slice_vjp,
        sympy=_pad_slice_sympy,
        infer_shape=_pad_slice_shape,
        formula="pad_slice(x) = zeros(shape) with x at [begin:end:step], the transpose of "
        "slice; the cotangent is sliced",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(
            Case(((3,),), {"shape": [5], "begin": [1], "end": [4]}),
            Case(((2, 3),),
                 {"shape": [3, 4], "begin": [0, -1], "end": [3, 0], "step": [2, -1]}),
        ),
        attrs={
            "shape": Attr("shape", required=True, doc="output shape"),
            "begin": Attr("ints", required=True, doc="as slice's begin, on the output"),
            "end": Attr("ints", None, doc="as slice's end, on the output"),
            "step": Attr("ints", None, doc="as slice's step, on the output"),
        },
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)

