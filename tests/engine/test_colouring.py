"""Colourings: valid on any pattern, optimal on bands, and the parallel greedy is the
sequential greedy it claims to be."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.derive.colouring import (
    colour_columns,
    colour_rows,
    column_graph,
    greedy_colouring,
    is_valid,
)


def random_pattern(rng: np.random.Generator, m: int, n: int, per_row: int) -> tuple:
    rows = np.repeat(np.arange(m), per_row)
    cols = rng.integers(0, n, rows.size)
    keys = np.unique(rows * n + cols)
    return keys // n, keys % n


def banded(n: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(np.triu(np.tril(np.ones((n, n)), hi), -lo))
    return rows, cols


def sequential_greedy(rows: np.ndarray, cols: np.ndarray, shape: tuple, order: np.ndarray):
    """The textbook loop: each column in turn takes the smallest colour no column
    sharing a row with it already has."""
    by_col: dict[int, list[int]] = {}
    by_row: dict[int, list[int]] = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        by_col.setdefault(c, []).append(r)
        by_row.setdefault(r, []).append(c)
    colour = np.full(shape[1], -1)
    for c in order.tolist():
        taken = {colour[k] for r in by_col.get(c, []) for k in by_row[r] if k != c}
        colour[c] = next(k for k in range(shape[1] + 1) if k not in taken)
    return colour


@pytest.mark.parametrize("seed", range(8))
def test_colourings_of_random_patterns_are_valid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n = rng.integers(5, 60, 2)
    rows, cols = random_pattern(rng, m, n, int(rng.integers(1, 6)))
    c = colour_columns(rows, cols, (m, n))
    assert c.colours.shape == (n,)
    assert is_valid(rows, cols, c.colours)
    assert c.count == c.colours.max() + 1
    assert c.lower_bound == np.bincount(rows).max() <= c.count
    r = colour_rows(rows, cols, (m, n))
    assert r.colours.shape == (m,)
    assert is_valid(cols, rows, r.colours)  # no column holds two rows of one colour


@pytest.mark.parametrize("seed", range(6))
def test_parallel_greedy_is_the_sequential_greedy_in_its_order(seed: int) -> None:
    rng = np.random.default_rng(seed + 100)
    n = int(rng.integers(10, 80))
    rows, cols = random_pattern(rng, n, n, int(rng.integers(2, 5)))
    got = greedy_colouring(rows, cols, (n, n), seed=seed)
    indptr, _ = column_graph(rows, cols, (n, n))
    degree = np.diff(indptr)
    tie = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((tie, -degree))
    np.testing.assert_array_equal(got, sequential_greedy(rows, cols, (n, n), order))
    assert got.max() <= degree.max()  # greedy never needs more than max degree + 1


@pytest.mark.parametrize(("lo", "hi"), [(0, 0), (1, 1), (2, 0), (0, 3), (2, 5)])
def test_full_band_gets_its_optimal_width(lo: int, hi: int) -> None:
    rows, cols = banded(40, lo, hi)
    c = colour_columns(rows, cols, (40, 40))
    assert c.count == c.lower_bound == lo + hi + 1
    assert is_valid(rows, cols, c.colours)


def test_arrowhead_and_full_row() -> None:
    n = 30
    # a full row: every column shares it, so n colours, by identity
    rows = np.r_[np.zeros(n, dtype=int), np.arange(1, n)]
    cols = np.r_[np.arange(n), np.arange(1, n)]
    c = colour_columns(rows, cols, (n, n))
    assert c.count == n and c.method == "identity"
    # its transpose, a full column: column 0 meets every other column, which meet
    # nothing else, so 2 colours
    t = colour_columns(cols, rows, (n, n))
    assert t.count == 2 and is_valid(cols, rows, t.colours)


def test_empty_pattern_needs_no_colour() -> None:
    c = colour_columns(np.zeros(0, dtype=int), np.zeros(0, dtype=int), (3, 4))
    assert c.count == 0 and c.colours.shape == (4,)


def test_is_valid_catches_a_clash() -> None:
    rows, cols = banded(6, 1, 1)
    assert not is_valid(rows, cols, np.arange(6) % 2)
    assert is_valid(rows, cols, np.arange(6) % 3)


def test_band_of_a_hundred_thousand_is_fast() -> None:
    rows, cols = banded_coo(100_000, 2)
    t0 = time.perf_counter()
    c = colour_columns(rows, cols, (100_000, 100_000))
    elapsed = time.perf_counter() - t0
    assert c.count == 5 and is_valid(rows, cols, c.colours)
    assert elapsed < 1.0  # tens of ms when idle; generous for a loaded machine


def banded_coo(n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """A full band of half-width b, built without an n x n matrix."""
    offsets = np.arange(-b, b + 1)
    rows = np.repeat(np.arange(n), offsets.size)
    cols = rows + np.tile(offsets, n)
    keep = (cols >= 0) & (cols < n)
    return rows[keep], cols[keep]
