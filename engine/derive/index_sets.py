"""Sets of indices as CSR arrays: the data of sparsity detection (engine.derive.pattern)
and of colouring (engine.derive.colouring), and the bounds on what they may build.

Each operation is a few numpy calls over all the elements at once, never a Python loop
per element; ``guard`` and ``expand`` raise PatternTooLarge past the bounds a caller of
``engine.derive.pattern.propagate`` set (per step, and in all).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from engine.ops.dependence import Groups, IndexMap, Pairs

# Index pairs one step may build before the pattern is declared too large (8 bytes
# each, a few arrays of them): a dense 8,000 x 8,000 Hessian is as far as sets go.
MAX_PAIRS = 1 << 26
# The bound in force: ``propagate``'s ``max_pairs`` for the steps it runs.
pair_bound: ContextVar[int] = ContextVar("max_pairs", default=MAX_PAIRS)
# Indices gathered so far and the most ``propagate`` may gather in all (None: no bound).
gathered_bound: ContextVar[list[int] | None] = ContextVar("gathered", default=None)


class PatternTooLarge(ValueError):
    """The index sets would exceed a bound (a step's ``max_pairs``, what is held at once,
    what a caller allows gathered in all): the pattern is too dense, or too costly to
    find, for sets to pay; a dense Hessian or Jacobian (engine.derive.hessian) is the way."""


@dataclass(frozen=True)
class Pattern:
    """Per element of a tensor (a CSR row), the sorted flat source indices it depends on."""

    indptr: np.ndarray  # int64, one more than the rows
    indices: np.ndarray  # int64 column indices, sorted and unique within each row
    ncols: int

    @property
    def nrows(self) -> int:
        return self.indptr.size - 1

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row_ids(self) -> np.ndarray:
        """The row of every stored index."""
        return np.repeat(np.arange(self.nrows, dtype=np.int64), self.lengths())

    def coo(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of every dependence, row-major."""
        return self.row_ids(), self.indices

    def todense(self) -> np.ndarray:
        out = np.zeros((self.nrows, self.ncols), dtype=bool)
        out[self.coo()] = True
        return out


def empty(nrows: int, ncols: int) -> Pattern:
    return Pattern(np.zeros(nrows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), ncols)


def unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values: a sort and a mask (numpy 2's ``np.unique`` hashes first,
    several times slower on the 10^5-10^6 int64 keys met here). A stable sort, as the
    keys are mostly concatenated sorted runs, which it merges in near-linear time."""
    keys = np.sort(keys, kind="stable")
    if keys.size < 2:
        return keys
    keep = np.empty(keys.size, dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def from_coo(rows: np.ndarray, cols: np.ndarray, nrows: int, ncols: int) -> Pattern:
    """A pattern from (row, col) pairs in any order, duplicates allowed."""
    if rows.size == 0:
        return empty(nrows, ncols)
    keys = unique(rows * np.int64(max(ncols, 1)) + cols)
    rows, cols = np.divmod(keys, np.int64(max(ncols, 1)))
    indptr = np.zeros(nrows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=nrows), out=indptr[1:])
    return Pattern(indptr, cols, ncols)


def guard(total: int, what: str) -> None:
    """PatternTooLarge when ``what`` would hold more index pairs than the bound in force."""
    limit = pair_bound.get()
    if total > limit:
        raise PatternTooLarge(
            f"{what} would hold {total} index pairs, over the limit of {limit}: the pattern "
            "is too dense for index sets"
        )


def expand(p: Pattern, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices of rows ``rows`` of ``p`` (repeats allowed), each with the position in
    ``rows`` it came from: the gather at the heart of every step."""
    starts = p.indptr[rows]
    lens = p.indptr[rows + 1] - starts
    total = int(lens.sum())
    guard(total, "an index map")
    gathered = gathered_bound.get()
    if gathered is not None:
        gathered[0] += total
        if gathered[0] > gathered[1]:
            raise PatternTooLarge(f"detection would gather more than {gathered[1]} indices "
                                  "in all: more work than it was allowed")
    which = np.repeat(np.arange(rows.size, dtype=np.int64), lens)
    # position in p.indices: the row's start, plus the rank within the row's run
    pos = np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return which, p.indices[pos]


def collect(m: IndexMap, p: Pattern, nslots: int) -> Pattern:
    """Per slot of ``m``, the union of the rows of ``p`` (the input's sets) it depends on."""
    if isinstance(m, Groups):
        if m.of_slot.size == 0 or m.members.slot.size == 0:
            return empty(nslots, p.ncols)
        ngroups = int(max(m.of_slot.max(), m.members.slot.max())) + 1
        per_group = collect(m.members, p, ngroups)
        used = np.flatnonzero(m.of_slot >= 0)
        return collect(Pairs(used, m.of_slot[used]), per_group, nslots)
    which, cols = expand(p, m.elem)
    if m.slot.size and np.all(np.diff(m.slot) > 0):
        # one input row per slot, slots in order: the gathered rows are a valid CSR already
        indptr = np.zeros(nslots + 1, dtype=np.int64)
        indptr[m.slot + 1] = p.indptr[m.elem + 1] - p.indptr[m.elem]
        return Pattern(np.cumsum(indptr), cols, p.ncols)
    return from_coo(m.slot[which], cols, nslots, p.ncols)


def union(parts: Sequence[Pattern], nrows: int, ncols: int) -> Pattern:
    """Row-wise union of patterns of the same rows."""
    parts = [q for q in parts if q.nnz]
    if not parts:
        return empty(nrows, ncols)
    if len(parts) == 1:
        return parts[0]
    rows = np.concatenate([q.row_ids() for q in parts])
    cols = np.concatenate([q.indices for q in parts])
    return from_coo(rows, cols, nrows, ncols)


def row_products(a: Pattern, b: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """Per row r, every pair of A(r) x B(r): the interactions of one op's elements."""
    which, j = expand(b, a.row_ids())  # per stored index of A, its row of B
    return a.indices[which], j


def identity(offset: int, size: int, ncols: int) -> Pattern:
    """A source's own pattern: element k depends on column ``offset + k``."""
    return Pattern(
        np.arange(size + 1, dtype=np.int64), np.arange(offset, offset + size, dtype=np.int64),
        ncols,
    )
