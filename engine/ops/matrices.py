"""Stacks of matrices, as matmul and the LAPACK ops (engine.ops.linalg) take them: the
transpose of each matrix, the broadcast batch dims, the batch rule over points of a
two-input op, and element ids as matrix stacks for the sparsity rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.ops import dependence as rules
from engine.ops.batching import point_rank, points_of, with_rank
from engine.ops.broadcasting import broadcast
from engine.ops.registry import F, Shape
from engine.tensor import Tensor


def mT(x: Tensor) -> Tensor:
    """Swap the last two axes: the transpose of every matrix in a stack."""
    perm = list(range(x.ndim))
    perm[-2:] = perm[-1], perm[-2]
    return F.transpose(x, perm=perm)


def stack_batch(*shapes: Shape) -> Shape:
    """The batch dims of stacks of these batch shapes: numpy broadcasting of them."""
    return broadcast(*shapes, what="batch dims")


def _column_stacks(
    xs: Any, batched: Any, infer: Callable[[Shape, Shape], Shape]
) -> tuple[Tensor, Tensor, list[int]]:
    """Two linalg inputs made ready for a stacked op over points, and the batched output
    shape. A batched 1-D input ``xs[i]`` becomes a one-row (i=0) or one-column (i=1)
    matrix per point, as numpy does for one point (else the batch axis would make it
    a matrix by accident); batched inputs then get size-1 axes after the batch axis, so
    that stack dims align right against the other input as one point's would."""
    points = [x.shape[1:] if b else x.shape for x, b in zip(xs, batched, strict=True)]
    out = list(xs)
    for i, (x, b, p) in enumerate(zip(xs, batched, points, strict=True)):
        if b and len(p) == 1:
            matrix = [1, p[0]] if i == 0 else [p[0], 1]
            out[i] = F.reshape(x, shape=[x.shape[0], *matrix])
    rank = max(point_rank(x, b) for x, b in zip(out, batched, strict=True))
    out = [with_rank(x, rank) if b else x for x, b in zip(out, batched, strict=True)]
    return out[0], out[1], [points_of(xs, batched), *infer(*points)]


def over_points(
    op: Callable[[Tensor, Tensor], Tensor], infer: Callable[[Shape, Shape], Shape]
) -> Callable[..., Tensor]:
    """The batch rule of matmul or solve: numpy's ``op`` of each point, 1-D operands
    included. A batched vector (B, n) goes in as a one-row or one-column matrix and the
    unit axis is dropped after (as a matrix it would be the wrong product or system)."""

    def rule(xs: Any, batched: Any) -> Tensor:
        a, b, want = _column_stacks(xs, batched, infer)
        out = op(a, b)
        return out if list(out.shape) == want else F.reshape(out, shape=want)

    return rule


def stack_ids(a: Shape, b: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Element ids of a and b as matrix stacks of the common batch, (..., m, k) and
    (..., k, p), a 1-D operand promoted as numpy's matmul and solve promote it."""
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    batch = stack_batch(a2[:-2], b2[:-2])
    return (np.broadcast_to(rules.flat_ids(a).reshape(a2), batch + a2[-2:]),
            np.broadcast_to(rules.flat_ids(b).reshape(b2), batch + b2[-2:]))
