"""The check compares a Hessian as the response lays it out: every entry of ``matrix``
and every ``sparse`` coordinate, against the reference at its (row, col).

Each corruption here leaves the ``hessian`` blocks right and breaks only the layout, so
only the laid-out quantities can catch it; a layout error must never come back "agree".
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine.check.agreement import CheckReport
from engine.check.verify import check
from engine.derive.kinds import KINDS
from engine.derive.query import Query, Result
from engine.graphs.build import build_graph
from tests.engine.test_verify import LIMITS, node, var

METHODS = ("sympy", "numeric")


def one_source() -> list[dict]:
    """sum(sin(A @ A)) of a 2 x 2 source: a dense 4 x 4 Hessian, no two entries alike."""
    return [var("A", [[0.3, -0.7], [0.5, 0.9]]), node("P", "matmul", "A", "A"),
            node("S", "sin", "P"), node("L", "sum", "S")]


def several_sources() -> list[dict]:
    """Sources of shapes (2,), (1, 3) and (): cross blocks that are not square, and
    zeros (z with itself and with y) that a coordinate list leaves out."""
    return [var("x", [0.4, -1.1]), var("y", [[0.7, 0.2, -0.5]]), var("z", 1.3),
            node("xc", "reshape", "x", shape=[2, 1]), node("p", "matmul", "xc", "y"),
            node("s", "sin", "p"), node("a", "sum", "s"),
            node("c", "mul", "x", "x"), node("cc", "mul", "c", "x"), node("b", "sum", "cc"),
            node("zb", "mul", "z", "b"), node("L", "add", "a", "zb")]


GRAPHS: dict[str, Callable[[], list[dict]]] = {"one source": one_source,
                                               "several sources": several_sources}


@functools.cache
def _computed(name: str, fmt: str) -> tuple[Query, Result]:
    q = Query(graph=build_graph(GRAPHS[name]()), format=fmt)
    return q, KINDS["hessian"].compute(q)


def computed(name: str, fmt: str) -> tuple[Query, Result]:
    """The query and a fresh copy of its (cached) result, safe to corrupt."""
    q, r = _computed(name, fmt)
    sparse = None if r.sparse is None else dataclasses.replace(
        r.sparse, rows=r.sparse.rows.copy(), cols=r.sparse.cols.copy(),
        values=r.sparse.values.copy())
    return q, dataclasses.replace(r, matrix=None if r.matrix is None else r.matrix.copy(),
                                  sparse=sparse)


def verdict(q: Query, r: Result, method: str) -> CheckReport:
    return check(KINDS["hessian"], q, r, method, LIMITS)


# ------------------------------------------------------------------ matrix corruptions


def swap_off_diagonal(m: np.ndarray, _sizes: list[int]) -> np.ndarray:
    m[0, 1], m[0, 2] = m[0, 2], m[0, 1]
    return m


def transpose_layout(m: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Each block's entries laid out column by column instead of row by row."""
    out = m.copy()
    offs = np.cumsum([0, *sizes])
    for i in range(len(sizes)):
        for j in range(len(sizes)):
            block = m[offs[i]:offs[i + 1], offs[j]:offs[j + 1]]
            out[offs[i]:offs[i + 1], offs[j]:offs[j + 1]] = block.T.reshape(block.shape)
    if len(sizes) == 1:  # one 2 x 2 source: its elements flattened column-major
        perm = [0, 2, 1, 3]
        out = m[np.ix_(perm, perm)]
    return out


def permute_sources(m: np.ndarray, sizes: list[int]) -> np.ndarray:
    """The sources laid out last first (one source: its elements reversed)."""
    offs = np.cumsum([0, *sizes])
    groups = [list(range(offs[k], offs[k + 1])) for k in range(len(sizes))]
    perm = [i for g in reversed(groups) for i in g] if len(sizes) > 1 else list(
        range(m.shape[0]))[::-1]
    return m[np.ix_(perm, perm)]


MATRIX_CORRUPTIONS = {"swap two off-diagonal entries": swap_off_diagonal,
                      "transpose the block layout": transpose_layout,
                      "permute the sources": permute_sources}


def sizes_of(r: Result) -> list[int]:
    return [int(np.size(r.gradients[s])) for s in r.sources]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("fmt", ["dense", "coo"])
def test_an_intact_layout_agrees_and_every_laid_out_entry_is_compared(
        fmt: str, name: str, method: str) -> None:
    q, r = computed(name, fmt)
    n = sum(sizes_of(r))
    report = verdict(q, r, method)
    assert report.status == "agree", report.detail
    # gradients, every block, then the matrix (dense) or the n x n the coordinates
    # lay out: each coordinate and each zero they leave out (coo)
    assert report.compared == n + n * n + n * n
    assert (r.matrix is None) == (fmt == "coo") and (r.sparse is None) == (fmt == "dense")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("corrupt", MATRIX_CORRUPTIONS)
def test_a_matrix_laid_out_wrong_disagrees(corrupt: str, name: str, method: str) -> None:
    q, r = computed(name, "dense")
    right = r.matrix.copy()
    r.matrix = MATRIX_CORRUPTIONS[corrupt](r.matrix, sizes_of(r))
    assert not np.allclose(r.matrix, right)  # the corruption changed something
    report = verdict(q, r, method)
    assert report.status == "disagree", report.detail
    bad = report.disagreements
    assert bad and {d["quantity"] for d in bad} == {"matrix"}  # the blocks are right
    first = bad[0]
    assert first["index"] == [first["row"], first["col"]]
    assert first["source"] in r.sources and first["source_2"] in r.sources
    assert not np.isclose(right[first["row"], first["col"]], first["tape"])


def test_a_matrix_of_the_wrong_shape_disagrees() -> None:
    q, r = computed("several sources", "dense")
    r.matrix = r.matrix[:-1]
    for method in METHODS:
        report = verdict(q, r, method)
        assert report.status == "disagree", report.detail
        assert report.disagreements[0]["quantity"] == "matrix"
        assert "shape [5, 6]" in report.disagreements[0]["reason"]


# ------------------------------------------------------------------ coordinate corruptions


def swap_rows(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, dense: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Swap the row indices of the first two coordinates whose swap changes the matrix."""
    for a in range(rows.size):
        for b in range(a + 1, rows.size):
            if rows[a] != rows[b] and not (
                    np.isclose(dense[rows[b], cols[a]], values[a])
                    and np.isclose(dense[rows[a], cols[b]], values[b])):
                rows = rows.copy()
                rows[[a, b]] = rows[[b, a]]
                return rows, cols, values
    raise AssertionError("no two coordinates to swap")


def drop_one(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, _dense: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = int(np.flatnonzero(values != 0)[-1])
    keep = np.arange(rows.size) != k
    return rows[keep], cols[keep], values[keep]


def duplicate_one(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, _dense: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.r_[rows, rows[1]], np.r_[cols, cols[1]], np.r_[values, values[1]]


SPARSE_CORRUPTIONS: dict[str, Callable[..., Any]] = {
    "swap two rows' indices": swap_rows, "drop a coordinate": drop_one,
    "duplicate a coordinate": duplicate_one,
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("corrupt", SPARSE_CORRUPTIONS)
@pytest.mark.parametrize("blocks", ["with blocks", "coordinates only"])
def test_coordinates_laid_out_wrong_disagree(blocks: str, corrupt: str, name: str,
                                             method: str) -> None:
    q, r = computed(name, "coo")
    if blocks == "coordinates only":  # as a Hessian too large for dense blocks comes
        r = dataclasses.replace(r, hessian=None)
    h = r.sparse
    h.rows, h.cols, h.values = SPARSE_CORRUPTIONS[corrupt](h.rows, h.cols, h.values,
                                                           h.todense())
    report = verdict(q, r, method)
    assert report.status == "disagree", report.detail
    bad = report.disagreements
    assert bad and {d["quantity"] for d in bad} == {"sparse"}
    assert all({"row", "col", "source", "source_2"} <= set(d) for d in bad)
    if corrupt == "drop a coordinate":
        assert bad[0]["reason"] == "a non-zero of the reference missing from the coordinates"
    if corrupt == "duplicate a coordinate":
        assert any("is given 2 times" in d.get("reason", "") for d in bad)


def test_coordinates_only_still_agree_and_count_every_entry() -> None:
    q, r = computed("several sources", "coo")
    r = dataclasses.replace(r, hessian=None)
    for method in METHODS:
        report = verdict(q, r, method)
        assert report.status == "agree", report.detail
        assert report.compared == 6 + 36  # gradients, then the 6 x 6 the coordinates lay out


def test_coordinates_outside_the_matrix_disagree() -> None:
    q, r = computed("one source", "coo")
    r.sparse.cols[0] = 4
    report = verdict(q, r, "numeric")
    assert report.status == "disagree"
    outside = [d for d in report.disagreements if "outside" in d.get("reason", "")]
    assert outside == [{"quantity": "sparse", "row": int(r.sparse.rows[0]), "col": 4,
                        "index": [0], "reason": "a coordinate outside the 4 x 4 matrix"}]


def test_an_unwatched_source_lays_out_zeros_by_design() -> None:
    """A constant named as a source is not watched: None blocks and zero rows in the
    matrix, which is their reference; the watched blocks are compared as ever."""
    nodes = [var("x", [0.4, -1.1]), {"id": "k", "op": "constant", "value": 2.0},
             node("m", "mul", "x", "k"), node("s", "sin", "m"), node("L", "sum", "s")]
    q = Query(graph=build_graph(nodes), sources=["x", "k"])
    r = KINDS["hessian"].compute(q)
    assert r.hessian["k"]["k"] is None and r.matrix.shape == (3, 3)
    for method in METHODS:
        report = verdict(q, r, method)
        assert report.status == "agree", report.detail
        assert report.compared == 2 + 4 + 9
    r.matrix[2, 2] = 1.0
    bad = verdict(q, r, "numeric").disagreements
    assert [(d["row"], d["col"], d["source"], d["source_2"]) for d in bad] == [(2, 2, "k", "k")]


def test_the_layout_costs_neither_method_anything() -> None:
    """The laid-out entries are the Hessian's own, gathered: SymPy's work and entries and
    the finite differences' runs are the Hessian's alone."""
    from engine.check.job import build_job, numeric_fits, sympy_too_big, sympy_work

    q, r = computed("several sources", "dense")
    hessian_only = dataclasses.replace(KINDS["hessian"], compares=("gradients", "hessian"))
    laid, shapes, _ = build_job(KINDS["hessian"], q, r, LIMITS)
    plain, _, _ = build_job(hessian_only, q, r, LIMITS)
    assert laid["quantities"][-2:] == ["matrix", "sparse"]
    assert sympy_work(laid, shapes) == sympy_work(plain, shapes)
    tight = dataclasses.replace(LIMITS, sympy_max_derivatives=6 + 36)  # gradients + Hessian
    assert sympy_too_big(laid, shapes, tight, auto=True) == ""
    assert numeric_fits(laid, shapes, LIMITS) == numeric_fits(plain, shapes, LIMITS)
    assert laid["layout"] == [["x", 2], ["y", 3], ["z", 1]]
