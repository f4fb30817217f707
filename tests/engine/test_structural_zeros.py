"""Where an op's derivative is not finite at the point, the dense Hessian keeps its
structural zeros 0 (engine.derive.structural_zeros): dense, coo, points and the same sum
over scalar sources give the same matrix, NaN and infinities where they belong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.derive import derivatives
from engine.derive.kinds import KINDS
from engine.derive.query import Query
from engine.graphs.build import build_graph

NAN, INF = float("nan"), float("inf")


def node(nid: str, op: str, *inputs: Any) -> dict[str, Any]:
    return {"id": nid, "op": op, "inputs": list(inputs)}


def var(nid: str, value: Any) -> dict[str, Any]:
    return {"id": nid, "op": "variable", "value": value}


def summed(op: str, x: list[float]) -> list[dict[str, Any]]:
    return [var("x", x), node("y", op, "x"), node("f", "sum", "y")]


def mixed(x: list[float]) -> list[dict[str, Any]]:
    """sum(sqrt(x)) + sin(x0 * x1): one pair of sources interacts, the rest are apart."""
    return [var("x", x), node("r", "sqrt", "x"), node("s", "sum", "r"),
            {"id": "a", "op": "slice", "inputs": ["x"], "attrs": {"begin": [0], "end": [1]}},
            {"id": "b", "op": "slice", "inputs": ["x"], "attrs": {"begin": [1], "end": [2]}},
            node("ab", "mul", "a", "b"), node("sab", "sin", "ab"), node("t", "sum", "sab"),
            node("f", "add", "s", "t")]


CASES = {
    "sqrt at 0": (summed("sqrt", [1.0, 0.0, 4.0]), [[-0.25, 0, 0], [0, -INF, 0],
                                                    [0, 0, -0.03125]]),
    "a NaN input": (summed("sin", [0.1, NAN, 0.3]), [[-np.sin(0.1), 0, 0], [0, NAN, 0],
                                                     [0, 0, -np.sin(0.3)]]),
    "log at 0": (summed("log", [2.0, 0.0]), [[-0.25, 0], [0, -INF]]),
}


def dense(nodes: list[dict[str, Any]], **query: Any) -> np.ndarray:
    return derivatives.hessian(Query(graph=build_graph(nodes), **query)).matrix


@pytest.mark.parametrize("case", list(CASES))
def test_the_dense_matrix_is_the_sparse_one(case):
    nodes, expected = CASES[case]
    matrix = dense(nodes)
    coo = derivatives.hessian(Query(graph=build_graph(nodes), format="coo")).sparse
    np.testing.assert_array_equal(matrix, coo.todense())
    np.testing.assert_allclose(matrix, expected, rtol=1e-9)


@pytest.mark.parametrize("case", list(CASES))
def test_points_give_each_point_the_matrix_alone_gives(case):
    nodes, _ = CASES[case]
    x = nodes[0]["value"]
    graph = build_graph(nodes)
    at = [{"x": x}, {"x": [1.5] * len(x)}]
    batched = KINDS["hessian"].over_points(Query(graph=graph), at).matrix
    for p, values in enumerate(at):
        np.testing.assert_array_equal(batched[p], dense([var("x", values["x"]), *nodes[1:]]))


def test_the_same_sum_over_scalar_sources_agrees():
    nodes = [var("x", 1.0), var("y", 0.0), var("z", 4.0),
             node("a", "sqrt", "x"), node("b", "sqrt", "y"), node("c", "sqrt", "z"),
             node("ab", "add", "a", "b"), node("f", "add", "ab", "c")]
    scalars = dense(nodes, sources=["x", "y", "z"])
    np.testing.assert_array_equal(scalars, dense(CASES["sqrt at 0"][0]))


def test_a_non_finite_entry_inside_the_pattern_stays():
    """d2/dx0dx1 of sin(x0 * x1) with x1 = NaN is NaN (x0 and x1 interact), and
    sqrt's infinite second derivative at 0 stays; x2 and x3 interact with nobody."""
    matrix = dense(mixed([2.0, NAN, 0.0, 9.0]))
    assert np.isnan(matrix[0, 1]) and np.isnan(matrix[1, 0]) and np.isnan(matrix[1, 1])
    assert matrix[2, 2] == -INF
    off = ~np.eye(4, dtype=bool)
    off[0, 1] = off[1, 0] = False
    assert (matrix[off] == 0).all(), matrix
