"""Colourings that compress a sparse Jacobian or Hessian into a few reverse sweeps.

Columns of a pattern that share no row can be summed into one seed and still be told
apart (Curtis, Powell and Reid): a colouring of the column-intersection graph, where
columns sharing a row are adjacent, so that every row sees each colour at most once
(a distance-2 colouring of the bipartite row/column graph). It serves any Jacobian,
and a Hessian, whose pattern is symmetric. Reverse mode compresses rows instead:
``colour_rows`` is the same on the transpose.

Two colourings are tried and the one with fewer colours kept:

- by band: columns more than the band's width apart share no row, so
  ``col mod (width)`` is valid, and optimal when every row fills its band
  (tridiagonal: 3 colours);
- greedy, in largest-degree-first order with random ties, run as Jones-Plassmann
  rounds: each round colours, all at once in numpy, every vertex whose earlier
  neighbours are coloured, with the smallest colour they leave free. The result is
  exactly the sequential greedy colouring in that order, in a few dozen rounds.

No colouring can use fewer colours than the most non-zeros in one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.derive.index_sets import MAX_PAIRS, Pattern, expand, from_coo, guard, unique

SEED = 0x5EED  # the greedy order's tie-break: fixed, so a colouring is reproducible


@dataclass(frozen=True)
class Colouring:
    """One colour per column (or row); ``lower_bound`` is the most non-zeros in one row,
    below which no colouring can go."""

    colours: np.ndarray  # int64 per column
    count: int
    lower_bound: int
    method: str  # "none" | "band" | "greedy" | "identity"


def colour_columns(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], max_edges: int = MAX_PAIRS
) -> Colouring:
    """Colour the columns so that no row holds two columns of one colour. The greedy
    colouring is skipped (the band's kept) when its graph would exceed ``max_edges``."""
    nrows, ncols = shape
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if rows.size == 0:
        return Colouring(np.zeros(ncols, dtype=np.int64), 0, 0, "none")
    row_counts = np.bincount(rows, minlength=nrows).astype(np.int64)
    lower = int(row_counts.max())
    if lower >= ncols:  # a full row: every column needs its own colour
        return Colouring(np.arange(ncols, dtype=np.int64), ncols, lower, "identity")
    band = band_colouring(rows, cols, ncols)
    best = Colouring(band, int(band.max()) + 1, lower, "band")
    if best.count > lower and int(np.sum(row_counts**2)) <= max_edges:
        greedy = greedy_colouring(rows, cols, shape)
        count = int(greedy.max()) + 1 if greedy.size else 0
        if count < best.count:
            best = Colouring(greedy, count, lower, "greedy")
    return best


def colour_rows(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], max_edges: int = MAX_PAIRS
) -> Colouring:
    """Colour the rows so that no column holds two rows of one colour (reverse mode)."""
    return colour_columns(cols, rows, (shape[1], shape[0]), max_edges)


def band_colouring(rows: np.ndarray, cols: np.ndarray, ncols: int) -> np.ndarray:
    """``col mod width``: columns of one row lie within the band's width of each other."""
    offset = cols - rows
    width = int(offset.max() - offset.min()) + 1
    return np.arange(ncols, dtype=np.int64) % max(1, min(width, ncols))


def column_graph(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The column-intersection graph as CSR (indptr, neighbours), both directions."""
    by_row = from_coo(rows, cols, shape[0], shape[1])
    lens = by_row.lengths()
    guard(int(np.sum(lens.astype(np.int64) ** 2)), "the column-intersection graph")
    which, other = expand(by_row, by_row.row_ids())  # per stored entry, its row's columns
    mine = by_row.indices[which]
    off = mine != other
    ncols = np.int64(max(shape[1], 1))
    keys = unique(mine[off] * ncols + other[off])
    u, v = np.divmod(keys, ncols)
    indptr = np.zeros(shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=shape[1]), out=indptr[1:])
    return indptr, v


def greedy_colouring(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], seed: int = SEED
) -> np.ndarray:
    """Greedy distance-2 colouring, largest degree first, by Jones-Plassmann rounds."""
    n = shape[1]
    indptr, nbr = column_graph(rows, cols, shape)
    degree = np.diff(indptr)
    tie = np.random.default_rng(seed).permutation(n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((tie, -degree))] = np.arange(n)  # 0 goes first
    owner = np.repeat(np.arange(n, dtype=np.int64), degree)
    earlier = rank[nbr] < rank[owner]  # per edge: is the neighbour coloured first?
    waiting = np.bincount(owner[earlier], minlength=n)
    colour = np.full(n, -1, dtype=np.int64)
    ready = np.flatnonzero(waiting == 0)
    graph = Pattern(indptr, nbr, n)  # rows: vertices, indices: neighbours
    while ready.size:
        which, v = expand(graph, ready)  # every neighbour of every ready vertex
        before = rank[v] < rank[ready[which]]
        colour[ready] = _smallest_free(which[before], colour[v[before]], ready.size)
        after = v[~before]
        waiting -= np.bincount(after, minlength=n)
        # the next round: vertices whose last earlier neighbour was coloured just now
        ready = unique(after[waiting[after] == 0])
    return colour


def _smallest_free(who: np.ndarray, taken: np.ndarray, count: int) -> np.ndarray:
    """Per vertex 0..count-1, the smallest colour not in ``taken`` of its entries in ``who``."""
    free = np.zeros(count, dtype=np.int64)
    if who.size == 0:
        return free
    span = np.int64(int(taken.max()) + 2)
    keys = unique(who * span + taken)
    owner, c = np.divmod(keys, span)
    start = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    lens = np.diff(np.r_[start, owner.size])
    pos = np.arange(owner.size) - np.repeat(start, lens)  # rank among the vertex's colours
    # colours sorted and distinct: the first gap is the first rank where c != rank
    free[owner[start]] = lens  # no gap: the next colour after all of them
    gap = c != pos
    first_gap, at = np.unique(owner[gap], return_index=True)
    free[first_gap] = pos[gap][at]
    return free


def is_valid(rows: np.ndarray, cols: np.ndarray, colours: np.ndarray) -> bool:
    """No row holds two columns of one colour (each (row, col) pair given once)."""
    if rows.size == 0:
        return True
    span = np.int64(int(colours.max()) + 1)
    pairs = unique(np.asarray(rows, dtype=np.int64) * np.int64(max(cols.max() + 1, 1))
                   + cols)
    r, c = np.divmod(pairs, np.int64(max(cols.max() + 1, 1)))
    return unique(r * span + colours[c]).size == r.size
