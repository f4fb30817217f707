"""TensorFlow's ops over HTTP: in the catalogue, in graph JSON and infix expressions,
through the check, and bounded: a hostile request is a 4xx problem naming its node."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.support import const, graph, op, var

NEW_OPS = {
    "gather": {"indices", "axis"},
    "scatter_add": {"shape", "indices", "axis"},
    "tile": {"multiples"},
    "strided_slice": {"index"},
    "strided_slice_grad": {"shape", "index"},
    "where": set(),
    "xlogy": set(),
    "div_no_nan": set(),
    "norm": {"ord", "axis", "keepdims"},
    "add_n": set(),
    "less": set(),
    "greater": set(),
    "less_equal": set(),
    "greater_equal": set(),
    "equal": set(),
    "not_equal": set(),
    "logical_and": set(),
    "logical_or": set(),
    "logical_not": set(),
}
NO_GRADIENT = [
    "less",
    "greater",
    "less_equal",
    "greater_equal",
    "equal",
    "not_equal",
    "logical_and",
    "logical_or",
    "logical_not",
]


def test_catalogue_lists_the_new_ops_with_attrs_and_conventions(client) -> None:
    ops = {o["name"]: o for o in client.get("/v1/ops").json()["ops"]}
    for name, attrs in NEW_OPS.items():
        assert name in ops, name
        assert set(ops[name]["attrs"]) == attrs, name
        assert ops[name]["convention"], name
    for name in NO_GRADIENT:
        assert "None" in ops[name]["convention"], name
    assert ops["where"]["arity"] == 3 and ops["add_n"]["arity"] is None
    assert ops["gather"]["attrs"]["indices"]["kind"] == "indices"
    assert ops["norm"]["attrs"]["ord"]["default"] == "euclidean"


def test_gather_in_a_graph_scatter_adds_its_gradient(client) -> None:
    body = graph(
        var("x", [1.0, 2.0, 3.0]),
        op("g", "gather", "x", indices=[[2, 2], [0, 2]]),
        op("s", "sum", "g"),
    )
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"]["s"] == 3.0 + 3.0 + 1.0 + 3.0
    np.testing.assert_array_equal(
        r.json()["gradients"]["x"], np.bincount([2, 2, 0, 2], minlength=3)
    )


def test_indexing_and_tile_in_a_graph_agree_with_the_check(client) -> None:
    x = [[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]]
    body = graph(
        var("x", x),
        op("i", "strided_slice", "x", index=["...", None, "::-2"]),
        op("t", "tile", "i", multiples=[2, 1, 1]),
        op("q", "square", "t"),
        op("s", "sum", "q"),
        check="sympy",
    )
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 200, r.text
    expected = np.zeros((2, 3))
    expected[:, ::-2] = 2 * 2 * np.asarray(x)[:, ::-2]  # two tiled copies of each square
    np.testing.assert_allclose(r.json()["gradients"]["x"], expected)
    assert r.json()["check"]["status"] == "agree"


def test_infix_expression_with_where_comparisons_and_safe_ops(client) -> None:
    x, y = np.array([1.0, 2.0]), np.array([1.5, 0.5])
    body = {
        "expression": "sum(where(greater(x, y), x, y) + xlogy(x, y) + div_no_nan(x, y)) + norm(x)",
        "values": {"x": x.tolist(), "y": y.tolist()},
        "check": "sympy",
    }
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 200, r.text
    bigger = x > y
    gx = bigger + np.log(y) + 1 / y + x / np.linalg.norm(x)
    gy = ~bigger + x / y - x / y**2
    np.testing.assert_allclose(r.json()["gradients"]["x"], gx, rtol=1e-12)
    np.testing.assert_allclose(r.json()["gradients"]["y"], gy, rtol=1e-12)
    assert r.json()["check"]["status"] == "agree"


def test_a_comparison_passes_no_gradient_over_http(client) -> None:
    body = graph(
        var("x", [1.0, 3.0]),
        const("k", 2.0),
        op("c", "less", "x", "k"),
        op("s", "sum", "c"),
        unconnected_gradients="zero",
    )
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"]["s"] == 1.0
    assert r.json()["gradients"]["x"] == [0.0, 0.0]


def _scalar_to(shape: list[int]) -> list[dict]:
    return [var("x", 1.0), op("b", "broadcast_to", "x", shape=shape)]


HOSTILE = [
    (
        "gather index out of range",
        graph(var("x", [1.0, 2.0]), op("g", "gather", "x", indices=[0, 2])),
        "shape-mismatch",
        "g",
    ),
    (
        "gather negative index",
        graph(var("x", [1.0, 2.0]), op("g", "gather", "x", indices=[-1])),
        "shape-mismatch",
        "g",
    ),
    (
        "gather to millions of elements",
        graph(*_scalar_to([1000, 1000]), op("g", "gather", "b", indices=[0] * 2000)),
        "compute-limit",
        "g",
    ),
    (
        "tile by a billion",
        graph(var("x", [1.0, 2.0]), op("t", "tile", "x", multiples=[10**9])),
        "compute-limit",
        "t",
    ),
    (
        "tile multiples of the wrong rank",
        graph(var("x", [1.0]), op("t", "tile", "x", multiples=[2, 2])),
        "shape-mismatch",
        "t",
    ),
    (
        "index out of range",
        graph(var("x", [1.0]), op("i", "strided_slice", "x", index=[3])),
        "shape-mismatch",
        "i",
    ),
    (
        "index not an index",
        graph(var("x", [1.0]), op("i", "strided_slice", "x", index=[[0, 1]])),
        "invalid-attrs",
        "i",
    ),
    (
        "index with a zero step",
        graph(var("x", [1.0]), op("i", "strided_slice", "x", index=["::0"])),
        "invalid-attrs",
        "i",
    ),
    (
        "ragged indices",
        graph(var("x", [1.0]), op("g", "gather", "x", indices=[[0], [0, 0]])),
        "invalid-attrs",
        "g",
    ),
    ("negative ord", graph(var("x", [1.0]), op("n", "norm", "x", ord=-1)), "invalid-attrs", "n"),
    (
        "spectral norm",
        graph(var("x", [[1.0]]), op("n", "norm", "x", ord=2, axis=[0, 1])),
        None,
        "n",
    ),
]


@pytest.mark.parametrize(
    ("body", "slug", "node"), [p[1:] for p in HOSTILE], ids=[p[0] for p in HOSTILE]
)
def test_hostile_use_of_the_new_ops_is_a_problem_naming_the_node(client, body, slug, node) -> None:
    r = client.post("/v1/gradient", json=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["node"] == node
    if slug:
        assert problem["type"].endswith(slug), problem
