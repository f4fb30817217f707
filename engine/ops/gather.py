"""Ops that copy elements to many places: ``gather`` and its transpose ``scatter_add``,
and ``tile``. Each VJP sums the copies' cotangents back into the element copied.

``gather``'s indices are an attr, checked against the input's shape before anything
runs: an index out of ``[0, n)`` is a ShapeError naming the node, as TensorFlow's
InvalidArgumentError on CPU. The output's size (indices x the other axes, or the
tiled shape) comes out of the shape rule, so the graph's element limits and the cost
model bound it before any allocation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.batching import batch_of, batched_shape
from engine.ops.costs import CHEAP, CHEAP_ELEMENTWISE, per_element
from engine.ops.index_attrs import indices_shape
from engine.ops.registry import Case, Domain, F, OpDef, Shape, Sparsity, defop
from engine.tensor import Tensor

# np.add.at, the scatter: 20 to 50 ns per element measured (numpy 2.4, 10^6 elements,
# axis 0 and 1), against ~3 ns for gather's np.take; a gather's VJP is a scatter
SCATTER = 50.0
GATHER_COST = per_element(CHEAP, backward=SCATTER)
SCATTER_COST = per_element(SCATTER, backward=3 * CHEAP)


def _axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for a tensor of rank {ndim}")
    return axis % ndim


def _check_indices(indices: Any, n: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64)
    bad = np.flatnonzero((idx < 0) | (idx >= n))
    if bad.size:
        at = np.unravel_index(bad[0], idx.shape) if idx.ndim else ()
        where = "".join(f"[{int(i)}]" for i in at)
        raise ShapeError(f"indices{where} = {int(idx.flat[bad[0]])} is not in [0, {n})")
    return idx


def _gather_shape(in_shape: Shape, indices: Any = None, axis: int = 0) -> Shape:
    if not in_shape:
        raise ShapeError("gather needs a tensor of rank >= 1, got a scalar")
    ax = _axis(axis, len(in_shape))
    _check_indices(indices, in_shape[ax])
    return in_shape[:ax] + indices_shape(indices) + in_shape[ax + 1 :]


def _gather_forward(x: Any, indices: Any = None, axis: int = 0) -> Any:
    ax = _axis(axis, np.ndim(x))
    return np.take(x, _check_indices(indices, np.shape(x)[ax]), axis=ax)


def _gather_vjp(_ans: Tensor, x: Tensor, indices: Any = None, axis: int = 0):
    """d/dx gather(x) = the cotangent scatter-added into zeros of x's shape (a
    duplicated index collects every copy's cotangent), as TF's IndexedSlices."""
    ax = _axis(axis, x.ndim)

    def vjp(g: Tensor) -> tuple[Tensor]:
        batch = batch_of(g, x.ndim - 1 + len(indices_shape(indices)))
        return (
            F.scatter_add(
                g, shape=batched_shape(batch, x.shape), indices=indices, axis=ax + len(batch)
            ),
        )

    return vjp


def _gather_batch(xs: Any, _batched: Any, indices: Any = None, axis: int = 0) -> Tensor:
    """Over points: the same gather in each point, past the batch axis."""
    x = xs[0]
    return F.gather(x, indices=indices, axis=_axis(axis, x.ndim - 1) + 1)


def _gather_sympy(x: Any, indices: Any = None, axis: int = 0) -> Any:
    return np.take(
        np.asarray(x, dtype=object),
        np.asarray(indices, dtype=np.int64),
        axis=_axis(axis, np.ndim(x)),
    )


INDICES_DOC = "an integer or a nested list of integers, each in [0, n) of the axis"

gather = defop(
    OpDef(
        name="gather",
        arity=1,
        batch=_gather_batch,
        forward=_gather_forward,
        vjp=_gather_vjp,
        sympy=_gather_sympy,
        infer_shape=_gather_shape,
        formula="gather(x, indices, axis): x's slices along axis at indices, as tf.gather; "
        "the cotangent is scatter-added back (scatter_add)",
        convention="linear, no kinks; a repeated index sums its cotangents; an index "
        "outside [0, n) is an error, as TensorFlow on CPU",
        domains=(Domain(),),
        cases=(
            Case(((5,),), {"indices": [3, 0, 3]}),
            Case(((3, 4),), {"indices": [[2, 0], [1, 1]], "axis": 1}),
            Case(((3, 4),), {"indices": 2, "axis": -2}),
            Case(((2, 3, 2),), {"indices": [0, 2, 2, 1], "axis": 1}),
        ),
        attrs={
            "indices": Attr("indices", required=True, doc=INDICES_DOC),
            "axis": Attr("int", 0, doc="the axis to gather along; negative from the end"),
        },
        family="shape",
        cost=GATHER_COST,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


# ------------------------------------------------------------------ scatter_add


def _scatter_shape(in_shape: Shape, shape: Any = None, indices: Any = None, axis: int = 0) -> Shape:
    target = tuple(shape)
    if any(n < 0 for n in target):
        raise ShapeError(f"invalid shape {list(target)}")
    expected = _gather_shape(target, indices, axis)
    if expected != in_shape:
        raise ShapeError(
            f"a tensor of shape {list(in_shape)} does not scatter into "
            f"{list(target)} at these indices, which take shape {list(expected)}"
        )
    return target


def _scatter(x: Any, out: np.ndarray, indices: Any, axis: int) -> np.ndarray:
    ax = _axis(axis, out.ndim)
    idx = _check_indices(indices, out.shape[ax])
    k = idx.ndim
    moved = np.moveaxis(np.asarray(x, dtype=out.dtype), list(range(ax, ax + k)), list(range(k)))
    np.add.at(np.moveaxis(out, ax, 0), idx, moved)  # unbuffered: repeats add up
    return out


def _scatter_forward(x: Any, shape: Any = None, indices: Any = None, axis: int = 0) -> Any:
    return _scatter(x, np.zeros(tuple(shape)), indices, axis)


def _scatter_sympy(x: Any, shape: Any = None, indices: Any = None, axis: int = 0) -> Any:
    return _scatter(x, np.full(tuple(shape), sp.Integer(0), dtype=object), indices, axis)


def _scatter_vjp(_ans: Tensor, _x: Tensor, shape: Any = None, indices: Any = None, axis: int = 0):
    """d/dx scatter_add(x) = gather(g): each element reads the sum it was added to."""
    ax = _axis(axis, len(shape))
    return lambda g: (F.gather(g, indices=indices, axis=ax + len(batch_of(g, len(shape)))),)


def _scatter_batch(
    xs: Any, _batched: Any, shape: Any = None, indices: Any = None, axis: int = 0
) -> Tensor:
    """Over points: each point scattered into its own zeros."""
    x = xs[0]
    return F.scatter_add(
        x, shape=[x.shape[0], *shape], indices=indices, axis=_axis(axis, len(shape)) + 1
    )


def _scatter_deps(_op: OpDef, _in_shapes: tuple[Shape, ...], out_shape: Shape, attrs: Any) -> tuple:
    """Input element e is added into the output element gather reads it from."""
    target = np.take(
        rules.flat_ids(out_shape),
        np.asarray(attrs["indices"], dtype=np.int64),
        axis=_axis(attrs["axis"], len(out_shape)),
    )
    return (rules.Pairs(target.ravel(), np.arange(target.size, dtype=np.int64)),)


scatter_add = defop(
    OpDef(
        name="scatter_add",
        arity=1,
        batch=_scatter_batch,
        forward=_scatter_forward,
        vjp=_scatter_vjp,
        sympy=_scatter_sympy,
        infer_shape=_scatter_shape,
        formula="scatter_add(x, shape, indices, axis) = zeros(shape) with x's slices added "
        "at indices along axis, the transpose of gather; the cotangent is gathered",
        convention="linear, no kinks; a repeated index adds every slice sent to it",
        domains=(Domain(),),
        cases=(
            Case(((3,),), {"shape": [5], "indices": [3, 0, 3]}),
            Case(((3, 2, 2),), {"shape": [3, 4], "indices": [[2, 0], [1, 1]], "axis": 1}),
        ),
        attrs={
            "shape": Attr("shape", required=True, doc="output shape"),
            "indices": Attr("indices", required=True, doc=INDICES_DOC),
            "axis": Attr("int", 0, doc="the axis of the output the slices are added along"),
        },
        family="shape",
        cost=SCATTER_COST,
        sparsity=Sparsity(_scatter_deps, "linear"),
    )
)


# ------------------------------------------------------------------ tile


def _tile_shape(in_shape: Shape, multiples: Any = None) -> Shape:
    reps = tuple(multiples)
    if len(reps) != len(in_shape):
        raise ShapeError(f"multiples {list(reps)} must have one entry per axis of {list(in_shape)}")
    if any(m < 0 for m in reps):
        raise ShapeError(f"multiples {list(reps)} must be non-negative")
    return tuple(n * m for n, m in zip(in_shape, reps, strict=True))


def _tile_forward(x: Any, multiples: Any = None) -> Any:
    return (
        _tiled(x, multiples, np.asarray(x).dtype) if np.ndim(x) else np.array(x, dtype=np.float64)
    )


def _tiled(x: Any, multiples: Any, dtype: Any) -> np.ndarray:
    """np.tile, except that an empty answer is made empty at once: np.tile repeats one
    axis at a time, so multiples [10**9, 0] would first build 10**9 copies of x."""
    shape = _tile_shape(np.shape(x), multiples)
    if 0 in shape:
        return np.zeros(shape, dtype=dtype)
    return np.tile(np.asarray(x, dtype=dtype), tuple(multiples))


def _tile_vjp(_ans: Tensor, x: Tensor, multiples: Any = None):
    """d/dx tile(x) = the cotangent summed over its copies: reshaped to (m0, n0, m1, n1,
    ...) and summed over every m axis."""
    split = [d for m, n in zip(multiples, x.shape, strict=True) for d in (m, n)]

    def vjp(g: Tensor) -> tuple[Tensor]:
        if not x.ndim:
            return (g,)
        batch = batch_of(g, x.ndim)
        nb = len(batch)
        parts = F.reshape(g, shape=batched_shape(batch, split))
        summed = F.sum(parts, axis=[nb + 2 * i for i in range(x.ndim)])
        return (summed,)

    return vjp


def _tile_batch(xs: Any, _batched: Any, multiples: Any = None) -> Tensor:
    return F.tile(xs[0], multiples=[1, *multiples])


tile = defop(
    OpDef(
        name="tile",
        arity=1,
        batch=_tile_batch,
        forward=_tile_forward,
        vjp=_tile_vjp,
        sympy=lambda x, multiples=None: _tiled(x, multiples, object),
        infer_shape=_tile_shape,
        formula="tile(x, multiples): x repeated multiples[i] times along axis i, as tf.tile; "
        "the cotangent is summed over the copies",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(
            Case(((3,),), {"multiples": [2]}),
            Case(((2, 3),), {"multiples": [2, 1]}),
            Case(((2, 1, 2),), {"multiples": [1, 3, 2]}),
            Case(((),), {"multiples": []}),
        ),
        attrs={
            "multiples": Attr(
                "ints", required=True, doc="copies per axis, one non-negative entry per axis"
            )
        },
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)
