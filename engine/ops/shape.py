"""Shape ops: they move elements, never change them, so their VJPs move cotangents back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.batching import (
    batch_of,
    batched_perm,
    batched_shape,
    shift_axis,
    spread,
    with_rank,
)
from engine.ops.costs import CHEAP_ELEMENTWISE
from engine.ops.registry import Case, Domain, F, OpDef, defop
from engine.ops.vjp import linear_vjp
from engine.tensor import Tensor


def _reshape_back(ans: Tensor, x: Tensor, **_: Any):
    """d/dx of any reshape: the cotangent reshaped back to x's shape (batch dims kept)."""
    return lambda g: (F.reshape(g, shape=batched_shape(batch_of(g, ans.ndim), x.shape)),)


def _reshape_shape(in_shape: tuple[int, ...], shape: Any = None) -> tuple[int, ...]:
    target = list(shape)
    unknown = [i for i, n in enumerate(target) if n == -1]
    if len(unknown) > 1 or any(n < -1 for n in target):
        raise ShapeError(f"invalid shape {target}: at most one -1, no other negatives")
    known = math.prod(n for n in target if n != -1)
    total = math.prod(in_shape)
    if unknown:
        if known == 0 or total % known:
            raise ShapeError(f"cannot reshape {list(in_shape)} into {target}")
        target[unknown[0]] = total // known
    if math.prod(target) != total:
        raise ShapeError(f"cannot reshape {list(in_shape)} ({total} elements) into {target}")
    return tuple(target)


def _reshape_batch(xs: Any, _batched: Any, shape: Any = None) -> Tensor:
    """Over points: each point reshaped, so the target shape gains the batch axis."""
    return F.reshape(xs[0], shape=[xs[0].shape[0], *shape])


reshape = defop(
    OpDef(
        name="reshape",
        arity=1,
        batch=_reshape_batch,
        forward=lambda x, shape=None: np.reshape(x, _reshape_shape(np.shape(x), shape)),
        vjp=_reshape_back,
        sympy=lambda x, shape=None: np.reshape(x, _reshape_shape(np.shape(x), shape)),
        infer_shape=_reshape_shape,
        formula="reshape(x, shape); the cotangent is reshaped back",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(Case(((3, 4),), {"shape": [4, 3]}), Case(((2, 6),), {"shape": [-1]}),
               Case(((),), {"shape": [1, 1]})),
        attrs={"shape": Attr("shape", required=True, doc="target shape; one -1 is inferred")},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


def _broadcast_shape(in_shape: tuple[int, ...], shape: Any = None) -> tuple[int, ...]:
    target = tuple(shape)
    if any(n < 0 for n in target):
        raise ShapeError(f"invalid shape {list(target)}")
    try:
        if np.broadcast_shapes(in_shape, target) != target:
            raise ValueError
    except ValueError:
        raise ShapeError(f"cannot broadcast {list(in_shape)} to {list(target)}") from None
    return target


def _broadcast_batch(xs: Any, _batched: Any, shape: Any = None) -> Tensor:
    """Over points: each point broadcast (size-1 axes first, so that a point of lower
    rank aligns right as numpy would, not with the batch axis)."""
    x = with_rank(xs[0], len(shape))
    return F.broadcast_to(x, shape=[x.shape[0], *shape])


broadcast_to = defop(
    OpDef(
        name="broadcast_to",
        arity=1,
        batch=_broadcast_batch,
        # a copy: values stay immutable and independent of their inputs
        forward=lambda x, shape=None: np.array(np.broadcast_to(x, tuple(shape))),
        # the sweep's central unbroadcast sums the cotangent back to x's shape
        vjp=linear_vjp(lambda g, shape=None: (g,)),  # noqa: ARG005
        sympy=lambda x, shape=None: np.array(np.broadcast_to(x, tuple(shape)), dtype=object),
        infer_shape=_broadcast_shape,
        formula="broadcast_to(x, shape); the cotangent is summed over broadcast axes",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(Case(((),), {"shape": [3]}), Case(((3, 1),), {"shape": [2, 3, 4]})),
        attrs={"shape": Attr("shape", required=True, doc="target shape, numpy broadcasting")},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


# ------------------------------------------------------------------ transpose


def _perm(ndim: int, perm: Any) -> tuple[int, ...]:
    """``perm`` as non-negative axes; null reverses the axes, as numpy."""
    if perm is None:
        return tuple(range(ndim))[::-1]
    if len(perm) != ndim or any(not -ndim <= p < ndim for p in perm):
        raise ShapeError(f"perm {list(perm)} is not a permutation of the {ndim} axes")
    out = tuple(p % ndim for p in perm)
    if sorted(out) != list(range(ndim)):
        raise ShapeError(f"perm {list(perm)} is not a permutation of the {ndim} axes")
    return out


def _transpose_shape(in_shape: tuple[int, ...], perm: Any = None) -> tuple[int, ...]:
    return tuple(in_shape[p] for p in _perm(len(in_shape), perm))


def _transpose_vjp(_ans: Tensor, x: Tensor, perm: Any = None):
    """d/dx transpose(x, perm) = transpose(g, argsort(perm))."""
    back = [int(i) for i in np.argsort(_perm(x.ndim, perm))]
    return lambda g: (F.transpose(g, perm=batched_perm(back, g.ndim - x.ndim)),)


def _transpose_batch(xs: Any, _batched: Any, perm: Any = None) -> Tensor:
    """Over points: each point's axes permuted (null reverses them), the batch axis kept."""
    return F.transpose(xs[0], perm=batched_perm(_perm(xs[0].ndim - 1, perm), 1))


transpose = defop(
    OpDef(
        name="transpose",
        arity=1,
        batch=_transpose_batch,
        forward=lambda x, perm=None: np.transpose(x, _perm(np.ndim(x), perm)),
        vjp=_transpose_vjp,
        sympy=lambda x, perm=None: np.transpose(x, _perm(np.ndim(x), perm)),
        infer_shape=_transpose_shape,
        formula="transpose(x, perm); the cotangent is transposed by the inverse permutation",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(Case(((3, 4),)), Case(((2, 3, 4),), {"perm": [1, 2, 0]}),
               Case(((2, 3, 4),), {"perm": [0, -1, 1]}), Case(((),))),
        attrs={"perm": Attr("perm", None, doc="a permutation of the axes; null reverses them")},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


# ------------------------------------------------------------ expand_dims, squeeze


def _expand_shape(in_shape: tuple[int, ...], axis: int = 0) -> tuple[int, ...]:
    rank = len(in_shape) + 1
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for expanding shape {list(in_shape)}")
    axis %= rank
    return in_shape[:axis] + (1,) + in_shape[axis:]


def _expand_batch(xs: Any, _batched: Any, axis: int = 0) -> Tensor:
    """Over points: the axis counts in one point's output, past the batch axis."""
    return F.expand_dims(xs[0], axis=shift_axis(axis, xs[0].ndim, 1))


expand_dims = defop(
    OpDef(
        name="expand_dims",
        arity=1,
        batch=_expand_batch,
        forward=lambda x, axis=0: np.reshape(x, _expand_shape(np.shape(x), axis)),
        vjp=_reshape_back,
        sympy=lambda x, axis=0: np.reshape(x, _expand_shape(np.shape(x), axis)),
        infer_shape=_expand_shape,
        formula="expand_dims(x, axis) inserts a size-1 axis; the cotangent is reshaped back",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(Case(((),)), Case(((3, 4),), {"axis": 1}), Case(((3, 4),), {"axis": -1})),
        attrs={"axis": Attr("int", 0, doc="position of the new axis in the output")},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


def _squeeze_shape(in_shape: tuple[int, ...], axis: Any = None) -> tuple[int, ...]:
    ndim = len(in_shape)
    if axis is None:
        return tuple(n for n in in_shape if n != 1)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    drop = set()
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for shape {list(in_shape)}")
        if in_shape[a % ndim] != 1:
            raise ShapeError(f"cannot squeeze axis {a} of shape {list(in_shape)}: size is not 1")
        drop.add(a % ndim)
    return tuple(n for i, n in enumerate(in_shape) if i not in drop)


def _squeeze_batch(xs: Any, _batched: Any, axis: Any = None) -> Tensor:
    """Over points: the size-1 axes of a point, named explicitly, so that null never
    drops the batch axis (B may be 1)."""
    x = xs[0]
    point = x.shape[1:]
    if axis is None:
        axes = [i + 1 for i, n in enumerate(point) if n == 1]
    else:
        axes = [a % len(point) + 1 for a in ((axis,) if isinstance(axis, int) else axis)]
    return F.squeeze(x, axis=axes)


squeeze = defop(
    OpDef(
        name="squeeze",
        arity=1,
        batch=_squeeze_batch,
        forward=lambda x, axis=None: np.reshape(x, _squeeze_shape(np.shape(x), axis)),
        vjp=_reshape_back,
        sympy=lambda x, axis=None: np.reshape(x, _squeeze_shape(np.shape(x), axis)),
        infer_shape=_squeeze_shape,
        formula="squeeze(x, axis) drops size-1 axes; the cotangent is reshaped back",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(Case(((1, 3, 1),)), Case(((1, 3, 1),), {"axis": 0}),
               Case(((1, 3, 1),), {"axis": [0, -1]}), Case(((1,),))),
        attrs={"axis": Attr("axes", None, doc="int, list of ints, or null for every size-1 axis")},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


def _stack_shape(*shapes: tuple[int, ...], axis: int = 0) -> tuple[int, ...]:
    first = shapes[0]
    for s in shapes[1:]:
        if s != first:
            raise ShapeError(f"stack needs equal shapes, got {list(first)} and {list(s)}")
    rank = len(first) + 1
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for stacking rank-{len(first)} tensors")
    axis %= rank
    return first[:axis] + (len(shapes),) + first[axis:]


def _stack_vjp(_ans: Tensor, *xs: Tensor, axis: int = 0):
    rank = xs[0].ndim + 1

    def vjp(g: Tensor, needs: tuple[bool, ...] | None = None) -> tuple[Tensor | None, ...]:
        batch = batch_of(g, rank)
        ax = axis % rank + len(batch)
        out: list[Tensor | None] = []
        for i in range(len(xs)):
            if needs is not None and not needs[i]:
                out.append(None)
                continue
            begin = [0] * g.ndim
            end = list(g.shape)
            begin[ax], end[ax] = i, i + 1
            piece = F.slice(g, begin=begin, end=end, step=None)
            out.append(F.reshape(piece, shape=batched_shape(batch, xs[i].shape)))
        return tuple(out)

    return vjp


def _stack_batch(xs: Any, batched: Any, axis: int = 0) -> Tensor:
    """Over points: inputs without the batch axis repeated for every point first."""
    whole = spread(xs, batched)
    return F.stack(*whole, axis=shift_axis(axis, whole[0].ndim, 1))


stack = defop(
    OpDef(
        name="stack",
        arity=None,
        batch=_stack_batch,
        forward=lambda *xs, axis=0: np.stack(xs, axis=axis),
        vjp=_stack_vjp,
        sympy=lambda *xs, axis=0: np.stack(xs, axis=axis),
        infer_shape=_stack_shape,
        formula="stack(x1, ..., xn, axis); each input gets its slice of the cotangent",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(Case(((), ())), Case(((3,), (3,), (3,)), {"axis": 1})),
        attrs={"axis": Attr("int", 0, doc="new axis position")},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


def _concat_shape(*shapes: tuple[int, ...], axis: int = 0) -> tuple[int, ...]:
    first = shapes[0]
    rank = len(first)
    if rank == 0:
        raise ShapeError("concat needs tensors of rank >= 1, got a scalar")
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for concatenating rank-{rank} tensors")
    axis %= rank
    for s in shapes[1:]:
        if len(s) != rank or s[:axis] + s[axis + 1:] != first[:axis] + first[axis + 1:]:
            raise ShapeError(
                f"concat along axis {axis} needs equal other dims, got {list(first)} and {list(s)}"
            )
    return first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1:]


def _concat_vjp(_ans: Tensor, *xs: Tensor, axis: int = 0):
    """d/dxi concat(x1, ..., xn) = the cotangent's slice where xi was placed."""
    def vjp(g: Tensor, needs: tuple[bool, ...] | None = None) -> tuple[Tensor | None, ...]:
        xax = axis % xs[0].ndim
        ax = xax + g.ndim - xs[0].ndim  # the same axis, past g's batch dims
        out: list[Tensor | None] = []
        start = 0
        for i, x in enumerate(xs):
            begin = [0] * g.ndim
            end = list(g.shape)
            begin[ax], end[ax] = start, start + x.shape[xax]
            skip = needs is not None and not needs[i]
            out.append(None if skip else F.slice(g, begin=begin, end=end, step=None))
            start += x.shape[xax]
        return tuple(out)

    return vjp


def _concat_batch(xs: Any, batched: Any, axis: int = 0) -> Tensor:
    """Over points: inputs without the batch axis repeated for every point first."""
    whole = spread(xs, batched)
    return F.concat(*whole, axis=shift_axis(axis, whole[0].ndim - 1, 1))


concat = defop(
    OpDef(
        name="concat",
        arity=None,
        batch=_concat_batch,
        forward=lambda *xs, axis=0: np.concatenate(xs, axis=axis),
        vjp=_concat_vjp,
        sympy=lambda *xs, axis=0: np.concatenate(xs, axis=axis),
        infer_shape=_concat_shape,
        formula="concat(x1, ..., xn, axis); each input gets its slice of the cotangent",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(Case(((2,), (3,))), Case(((2, 3), (2, 1), (2, 2)), {"axis": 1}),
               Case(((1, 3), (2, 3)), {"axis": -2}), Case(((4,),))),
        attrs={"axis": Attr("int", 0, doc="existing axis to join along")},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)
