"""A dense Hessian's structural zeros kept 0 where its sweep's 0·inf made NaN of them.

The dense Hessian is one reverse sweep carrying a seed row per source element. Where an
op's derivative is not finite at the point (sqrt at 0, a NaN input), every row's
cotangent meets it, and a row whose cotangent there is exactly 0 gets 0·inf = NaN: the
Hessian of sum(sqrt(x)) at x = [1, 0, 4] came out with a whole column of NaN, though it
is diagonal. The sparse Hessian (format coo) never evaluates those entries, and the same
sum over scalar sources never meets them. So that every road gives the same numbers,
the entries outside the Hessian's sparsity pattern (engine.derive.pattern: a superset of
its non-zeros, from the graph's structure alone) are set back to 0 where they are not
finite. The pattern is detected only then, within a bounded work; past it the NaNs
stay, as TensorFlow, JAX and PyTorch give them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.derive.pattern import (
    GATHER_WORK,
    PatternTooLarge,
    gathered_for,
    hessian_pattern,
    pairs_for,
)
from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.derive.hessian import RecordedGradient


def keep_structural_zeros(rec: RecordedGradient, sources: Sequence[Tensor],
                          cols: list[np.ndarray | None], batch: tuple[int, ...] = ()) -> None:
    """Set to 0, in ``cols`` (the n-seed sweep's answer, ``batch + (rows of flat, elements
    of source j)``), every entry that is not finite and outside the pattern."""
    # a sum is finite only if every term is: one pass, no mask (the coloured sweep's
    # answers are finite by construction and never come here)
    if rec.flat is None or all(c is None or np.isfinite(c.sum()) for c in cols):
        return
    sizes = [math.prod(s.shape[len(batch):]) for s in sources]
    n = sum(sizes)
    points = batch[0] if batch else 1
    try:
        rows, columns, _ = hessian_pattern(
            rec.inner.raw_entries, rec.targets, sources,
            max_pairs=pairs_for(points * n),  # past it, the NaNs stay as they are
            max_gathered=gathered_for(GATHER_WORK * points * n * n))
    except PatternTooLarge:
        return
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    nonzero = np.zeros((n, n), dtype=bool)
    at, point = _one_point(rows, sizes, offsets, points)
    at_col, point_col = _one_point(columns, sizes, offsets, points)
    same = point == point_col  # points never mix: a pair across two is no pair
    nonzero[at[same], at_col[same]] = True
    starts = rec.starts(sizes)
    for j, col in enumerate(cols):
        if col is None:
            continue
        if not col.flags.writeable:
            cols[j] = col = col.copy()
        for i, start in starts.items():
            part = col[..., start : start + sizes[i], :]
            reset = np.isfinite(part)
            np.logical_not(reset, out=reset)
            reset &= ~nonzero[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
            part[reset] = 0.0


def _one_point(index: np.ndarray, sizes: Sequence[int], offsets: np.ndarray, points: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Flattened indices over the sources as recorded (each ``points`` times its size,
    the point first) as (index at one point, which point)."""
    starts = points * offsets[:-1]
    source = np.searchsorted(starts, index, side="right") - 1
    point, element = np.divmod(index - starts[source], np.asarray(sizes)[source])
    return offsets[source] + element, point
