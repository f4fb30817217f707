"""Sparse Hessians and Jacobians: detect the pattern, colour it, one compressed sweep.

A dense Hessian of n sources costs a reverse sweep carrying n seed rows. When the
pattern is sparse (engine.derive.pattern), rows that share no column can share a seed
(engine.derive.colouring), so the sweep carries one seed per colour instead: 3 for the
tridiagonal Rosenbrock Hessian, whatever n. Each non-zero is then read back from
the compressed result, ``H[r, s] = C[colour(r), s]``, exact because no other row of
that colour has a non-zero in column s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.derive.colouring import Colouring, colour_rows
from engine.derive.hessian import RecordedGradient, record_gradient
from engine.derive.pattern import MAX_PAIRS, PatternTooLarge, hessian_pattern, propagate
from engine.tape.gradient_tape import GradientTape, jacobian_rows
from engine.tape.structure import summed
from engine.tensor import Tensor

__all__ = [
    "PatternTooLarge", "SparseHessian", "SparseJacobian", "SparseResult", "Structure",
    "sparse_hessian", "sparse_jacobian",
]


@dataclass(frozen=True)
class Structure:
    """What the pattern looks like, and what colouring made of it."""

    kind: str  # "zero" | "diagonal" | "banded" | "block-diagonal" | "sparse" | "dense"
    bandwidth: int  # largest |col - row| of a non-zero
    nnz: int
    density: float  # nnz / (rows x cols)
    colours: int  # seeds the compressed sweep carried
    blocks: int  # diagonal blocks nothing couples (square patterns; 1 otherwise)
    lower_bound: int  # the most non-zeros in a row: no colouring needs fewer colours
    colouring: str  # how the colours were found: "band", "greedy", "identity", "none"


@dataclass
class SparseResult:
    """A sparse derivative matrix in COO form over the flattened sources (in order)."""

    value: Tensor  # the target's value
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]
    colours: int
    nnz: int
    structure: Structure
    colouring: np.ndarray  # the colour of every row (the seed it went into)

    def todense(self) -> np.ndarray:
        out = np.zeros(self.shape)
        out[self.rows, self.cols] = self.values
        return out


@dataclass
class SparseHessian(SparseResult):
    """The Hessian of a scalar target, both triangles; ``gradients`` as ``hessian``'s."""

    gradients: list[Tensor | None] | None = None


@dataclass
class SparseJacobian(SparseResult):
    """The Jacobian of a target: rows are its flattened elements, columns the sources'."""


def sparse_hessian(
    fn: Callable[[], Any],
    sources: Sequence[Tensor],
    *,
    watch: Sequence[Tensor] = (),
    watch_accessed_variables: bool = True,
    unconnected_gradients: str = "none",
    max_pairs: int = MAX_PAIRS,
    on_colours: Callable[[int], None] | None = None,
    max_gathered: int | None = None,
) -> SparseHessian:
    """The Hessian of the scalar ``fn()`` (a list of scalars is summed), sparse.

    Recorded as ``engine.derive.hessian.hessian`` records it (the outer tape records the inner
    gradient); the pattern comes from the inner tape's entries, and the whole Hessian
    from one reverse sweep of the flattened gradient seeded with the colour indicators.
    ``max_pairs`` bounds the index pairs detection may build (PatternTooLarge past it:
    a pattern that dense is better served by ``engine.derive.hessian.hessian``), and
    ``max_gathered`` the indices it may gather in all (the work allowed). ``on_colours``
    hears how many seed rows the compressed sweep will carry, before it runs (and may
    raise to refuse it). ``unconnected_gradients`` shapes ``gradients`` as the dense
    Hessian's: None or zeros for a source with no path.
    """
    sources = list(sources)
    rec = record_gradient(fn, sources, watch=watch,
                          watch_accessed_variables=watch_accessed_variables,
                          unconnected_gradients=unconnected_gradients)
    rows, cols, n = hessian_pattern(rec.inner.raw_entries, rec.targets, sources, max_pairs,
                                    max_gathered)
    colouring = colour_rows(rows, cols, (n, n), max_pairs)
    if on_colours is not None:
        on_colours(colouring.count)
    values = coloured_values(rec, sources, rows, cols, colouring)
    return SparseHessian(
        summed(rec.targets), rows, cols, values, (n, n), colouring.count, int(rows.size),
        describe(rows, cols, (n, n), colouring), colouring.colours, gradients=rec.grads,
    )


def coloured_values(rec: RecordedGradient, sources: list[Tensor], rows: np.ndarray,
                    cols: np.ndarray, colouring: Colouring) -> np.ndarray:
    """The Hessian's entries at ``(rows, cols)`` (its pattern, flattened sources) from one
    reverse sweep of ``rec.flat`` seeded with the indicators of ``colouring``'s colours."""
    if rec.flat is None or not colouring.count or not rows.size:
        return np.zeros(rows.size)
    seeds, live_row = colour_seeds(rec, sources, colouring)
    compressed = compressed_sweep(rec.outer, rec.flat, sources, seeds, live_row.size)
    return np.where(live_row[rows], compressed[colouring.colours[rows], cols], 0.0)


def colour_seeds(rec: RecordedGradient, sources: list[Tensor], colouring: Colouring
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The compressed sweep's seeds, one row per colour over ``rec.flat``, and which rows
    of the flattened sources are live: ``flat`` holds the live sources' rows only, and a
    row of no live source is zero (its gradient is None: nothing depends on that source)."""
    sizes = [s.size for s in sources]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])
    live_row = np.zeros(n, dtype=bool)
    position = np.full(n, -1, dtype=np.int64)
    for i, start in rec.starts(sizes).items():
        live_row[offsets[i] : offsets[i + 1]] = True
        position[offsets[i] : offsets[i + 1]] = np.arange(start, start + sizes[i])
    seeds = np.zeros((colouring.count, 0 if rec.flat is None else rec.flat.size))
    seeds[colouring.colours[live_row], position[live_row]] = 1.0
    return seeds, live_row


def sparse_jacobian(
    target: Callable[[], Tensor] | Tensor,
    sources: Sequence[Tensor],
    *,
    tape: GradientTape | None = None,
    watch: Sequence[Tensor] = (),
    watch_accessed_variables: bool = True,
    max_pairs: int = MAX_PAIRS,
) -> SparseJacobian:
    """d target / d sources as a sparse (target.size, n) matrix, in reverse mode.

    ``target`` is a function recorded here (``watch`` as ``tape.watch``), or a tensor
    already recorded on ``tape``. Rows whose column patterns are disjoint share a seed,
    so the sweep carries one seed per colour of the rows. ``max_pairs`` as for
    ``sparse_hessian``.
    """
    if callable(target):
        with GradientTape(persistent=True,
                          watch_accessed_variables=watch_accessed_variables) as tape:
            tape.watch(list(watch))
            target = target()
    if tape is None:
        raise ValueError("a target tensor needs the tape that recorded it: tape=...")
    if not isinstance(target, Tensor):
        raise ValueError(f"the target must be a tensor, got {type(target).__name__}")
    sources = list(sources)
    found = propagate(tape.raw_entries, sources, [target], max_pairs=max_pairs)
    rows, cols = found.of(target).coo()
    m, n = target.size, found.n
    colouring = colour_rows(rows, cols, (m, n), max_pairs)
    values = np.zeros(rows.size)
    if colouring.count and rows.size:
        seeds = np.zeros((colouring.count, m))
        seeds[colouring.colours, np.arange(m)] = 1.0
        seeds = seeds.reshape((colouring.count, *target.shape))
        # the sweep is not part of what a recording tape differentiates
        with tape.stop_recording() if tape.recording else contextlib.nullcontext():
            compressed = compressed_sweep(tape, target, sources, seeds, n)
        values = compressed[colouring.colours[rows], cols]
    return SparseJacobian(
        target, rows, cols, values, (m, n), colouring.count, int(rows.size),
        describe(rows, cols, (m, n), colouring), colouring.colours,
    )


def compressed_sweep(
    tape: GradientTape, target: Tensor, sources: list[Tensor], seeds: np.ndarray, n: int
) -> np.ndarray:
    """One reverse sweep of ``target`` seeded with ``seeds`` (k rows): the (k, n) matrix
    of seed-weighted sums of Jacobian rows, sources flattened in order."""
    return side_by_side(sweep_blocks(tape, target, sources, seeds), sources, seeds.shape[0], n)


def side_by_side(blocks: list[np.ndarray | None], sources: list[Tensor], k: int, n: int
                 ) -> np.ndarray:
    """``sweep_blocks``'s blocks as one (k, n) matrix, zeros where the sweep met no path."""
    filled = [np.zeros((k, s.size)) if b is None else b
              for s, b in zip(sources, blocks, strict=True)]
    return np.concatenate(filled, axis=1) if filled else np.zeros((k, n))


def sweep_blocks(tape: GradientTape, target: Tensor, sources: list[Tensor], seeds: np.ndarray
                 ) -> list[np.ndarray | None]:
    """``compressed_sweep``'s blocks, one per source, (k, its size), or None where the
    sweep met no path to it."""
    k = seeds.shape[0]
    return [None if r is None else r.numpy().reshape(k, s.size)
            for s, r in zip(sources, jacobian_rows(tape, target, sources, seeds), strict=True)]


def describe(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], colouring: Colouring
) -> Structure:
    """Classify a pattern: the kind says which cheap structure it has, if any."""
    m, n = shape
    nnz = int(rows.size)
    density = nnz / (m * n) if m * n else 0.0
    bandwidth = int(np.abs(cols - rows).max()) if nnz else 0
    blocks, block_cells = _blocks(rows, cols, n) if m == n and nnz else (1, m * n)
    if nnz == 0:
        kind = "zero"
    elif bandwidth == 0:
        kind = "diagonal"
    elif nnz == m * n:
        kind = "dense"
    elif blocks > 1 and nnz == block_cells:
        kind = "block-diagonal"
    elif 2 * bandwidth + 1 < min(m, n) / 2:
        kind = "banded"
    else:
        kind = "sparse"
    return Structure(kind, bandwidth, nnz, density, colouring.count, blocks,
                     colouring.lower_bound, colouring.method)


def _blocks(rows: np.ndarray, cols: np.ndarray, n: int) -> tuple[int, int]:
    """(number of diagonal blocks nothing couples, non-zeros those blocks would hold if
    dense): a block ends at p when no non-zero reaches from p or before to past p."""
    reach = np.full(n, -1, dtype=np.int64)
    np.maximum.at(reach, np.minimum(rows, cols), np.maximum(rows, cols))
    ends = np.flatnonzero(np.maximum.accumulate(reach) <= np.arange(n))
    sizes = np.diff(np.r_[-1, ends])
    return int(ends.size), int(np.sum(sizes.astype(np.int64) ** 2))
