"""The Hessian as the response lays it out, ``matrix`` and ``sparse``, entry by entry.

Every block can be right while the matrix that lays them out is not (a block
transposed, the sources permuted) or the coordinates are not (a row index swapped, a
non-zero dropped, one given twice). The response carries the layout, so the check
compares it too: each laid-out entry against the reference entry at its own (row,
col). The reference is the reference Hessian's blocks placed over the flattened
sources in ``sources`` order, the same entries gathered, so nothing more is
computed. An unwatched source's rows and columns are 0 by design (its blocks are
None on the tape), and that is their reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.derive.query import Result


@dataclass(frozen=True)
class Grid:
    """The flattened sources of a laid-out Hessian: which rows and columns each holds."""

    sources: list[str]
    offsets: np.ndarray  # source k holds rows offsets[k] to offsets[k + 1]

    @classmethod
    def of(cls, layout: Sequence[Sequence[Any]]) -> Grid:
        """From ``[[source, size], ...]`` in the result's ``sources`` order."""
        sizes = [int(size) for _, size in layout]
        return cls([str(s) for s, _ in layout], np.concatenate([[0], np.cumsum(sizes)])
                   .astype(np.int64))

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def names(self, row: int, col: int) -> dict[str, Any]:
        """An entry at (row, col) and the source pair whose block it lies in."""
        i, j = (int(np.searchsorted(self.offsets, k, side="right")) - 1 for k in (row, col))
        return {"row": row, "col": col, "source": self.sources[i], "source_2": self.sources[j]}

    def place(self, checked: Sequence[str], block: Callable[[tuple[str, ...]], Any],
              fill: Any) -> np.ndarray:
        """A reference field over the whole matrix, flattened row by row: each checked
        pair's Hessian block at its place, ``fill`` elsewhere (unwatched sources)."""
        out = np.full((self.n, self.n), fill)
        at = {s: k for k, s in enumerate(self.sources)}
        o = self.offsets
        for si in checked:
            for sj in checked:
                i, j = at[si], at[sj]
                out[o[i]:o[i + 1], o[j]:o[j + 1]] = np.reshape(
                    block(("hessian", si, sj)), (o[i + 1] - o[i], o[j + 1] - o[j]))
        return out.ravel()


@dataclass
class Laid:
    """A laid-out quantity's entries: what the response says, and where each sits."""

    path: tuple[str, ...]  # (quantity,)
    tape: np.ndarray  # 1-d: the entries as the response gives them
    at: np.ndarray  # 1-d: row * n + col of each, in the reference matrix
    names: Callable[[int], dict[str, Any]]
    """What the k-th entry is about, for a disagreement (row, col, sources, index)."""
    problems: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    """Disagreements about the layout itself (shape, coordinates): (names, reason)."""


def _nothing() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def matrix(result: Result, grid: Grid) -> list[Laid]:
    """Every entry of ``matrix``; none without one (a sparse Hessian)."""
    if result.matrix is None:
        return []
    m, n = np.asarray(result.matrix, dtype=np.float64), grid.n
    if m.shape != (n, n):
        return [Laid(("matrix",), _nothing().astype(float), _nothing(), lambda _k: {},
                     [({}, f"the matrix has shape {list(m.shape)}; the sources' {n} "
                           f"elements lay out [{n}, {n}]")])]

    def names(k: int) -> dict[str, Any]:
        r, c = divmod(k, n)
        return {**grid.names(r, c), "index": [r, c]}

    return [Laid(("matrix",), m.ravel(), np.arange(n * n, dtype=np.int64), names)]


def sparse(result: Result, grid: Grid) -> list[Laid]:
    """Every coordinate's value against the reference at its (row, col), and a 0 at
    every (row, col) no coordinate names; none without coordinates (a dense Hessian).

    A coordinate outside the matrix, one given twice, or a wrong shape is a problem of
    the layout itself, whatever the values.
    """
    h = result.sparse
    if h is None:
        return []
    n = grid.n
    rows, cols, values = (np.ravel(np.asarray(x)) for x in (h.rows, h.cols, h.values))
    problems: list[tuple[dict[str, Any], str]] = []
    if tuple(h.shape) != (n, n):
        problems.append(({}, f"the shape is {list(h.shape)}; the sources' {n} elements "
                             f"lay out [{n}, {n}]"))
    size = min(rows.size, cols.size, values.size)
    if not rows.size == cols.size == values.size:
        problems.append(({}, f"{rows.size} rows, {cols.size} cols and {values.size} values: "
                             "a coordinate needs one of each"))
    rows, cols, values = rows[:size], cols[:size], values[:size].astype(np.float64)
    whole = (rows == np.round(rows)) & (cols == np.round(cols))
    inside = whole & (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    for k in np.flatnonzero(~inside):
        problems.append(({"row": rows[k].item(), "col": cols[k].item(), "index": [int(k)]},
                         f"a coordinate outside the {n} x {n} matrix"))
    keep = np.flatnonzero(inside)
    at = rows[keep].astype(np.int64) * n + cols[keep].astype(np.int64)
    named, counts = np.unique(at, return_counts=True)
    for p, times in zip(named[counts > 1], counts[counts > 1], strict=True):
        r, c = divmod(int(p), n)
        problems.append(({**grid.names(r, c), "index": None},
                         f"the coordinate ({r}, {c}) is given {int(times)} times"))
    missing = np.setdiff1d(np.arange(n * n, dtype=np.int64), named, assume_unique=True)

    def names(k: int) -> dict[str, Any]:
        if k < keep.size:
            r, c = divmod(int(at[k]), n)
            return {**grid.names(r, c), "index": [int(keep[k])]}
        r, c = divmod(int(missing[k - keep.size]), n)
        return {**grid.names(r, c), "index": None,
                "reason": "a non-zero of the reference missing from the coordinates"}

    return [Laid(("sparse",), np.concatenate([values[keep], np.zeros(missing.size)]),
                 np.concatenate([at, missing]), names, problems)]
