"""The plan of a run over points (engine.derive.point_plan): each op node's way to run is
decided once from which inputs carry the points axis, every way gives each point the
answer of a plain run at that point, and a reused graph plans once per leaf shapes and
roots."""

from __future__ import annotations

import numpy as np
import pytest

from engine.derive import derivatives
from engine.derive.derivatives import evaluate, gradient
from engine.derive.point_plan import ALIGNED, DIRECT, REPEATED, RULE, SHARED
from engine.derive.points import batch_points
from engine.derive.query import Query
from engine.graphs.build import build_graph
from engine.graphs.graph import Graph
from engine.graphs.reusable import ReusableGraph

# One node of each way: k reads only a constant no point changes (shared); s is a source
# computed from a watched constant (one copy per point); m squares a batched scalar, p and
# w multiply batched vectors by vectors (their inputs line up as they are); a adds a
# batched scalar to a batched vector (its rank raised first); r sums a batched vector (the
# op's batch rule).
NODES = [
    {"id": "x", "op": "variable", "value": 0.5},
    {"id": "v", "op": "variable", "value": [1.0, -2.0]},
    {"id": "c", "op": "constant", "value": [0.25, 0.75]},
    {"id": "k", "op": "exp", "inputs": ["c"]},
    {"id": "s", "op": "sin", "inputs": ["c"]},
    {"id": "m", "op": "mul", "inputs": ["x", "x"]},
    {"id": "a", "op": "add", "inputs": ["m", "v"]},
    {"id": "p", "op": "mul", "inputs": ["a", "s"]},
    {"id": "w", "op": "mul", "inputs": ["p", "k"]},
    {"id": "r", "op": "sum", "inputs": ["w"]},
]
WAYS = {"k": SHARED, "s": REPEATED, "m": DIRECT, "a": ALIGNED, "p": DIRECT, "w": DIRECT, "r": RULE}
SOURCES = ["x", "v", "s"]


def _points(size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(-2, 2, size), "v": rng.uniform(-2, 2, (size, 2))}


def _query(graph: Graph) -> Query:
    return Query(graph, target="r", watch=["c"], sources=SOURCES)


def test_each_op_node_runs_the_way_its_inputs_decide() -> None:
    batch = batch_points(_query(build_graph(NODES)), _points(3, 0), SOURCES)
    assert {nid: step[0] for nid, step in batch.steps.items()} == WAYS
    assert batch.batched == {"x", "v", "s", "m", "a", "p", "w", "r"}
    assert not batch.plain  # a, s and r need more than the op itself


def test_a_graph_whose_ops_all_run_as_at_one_point_runs_as_it_is() -> None:
    # batched vectors raised to an inline 2, times a shared scalar, added: each op
    # broadcasts as at one point, so the graph's own run serves
    graph = build_graph(
        [
            {"id": "x", "op": "variable", "value": [1.0, 2.0]},
            {"id": "u", "op": "variable", "value": [1.0, 2.0]},
            {"id": "c", "op": "constant", "value": 3.0},
            {"id": "x2", "op": "pow", "inputs": ["x", 2]},
            {"id": "uc", "op": "mul", "inputs": ["u", "c"]},
            {"id": "y", "op": "add", "inputs": ["uc", "x2"]},
        ]
    )
    rng = np.random.default_rng(7)
    pts = {"x": rng.uniform(-2, 2, (3, 2)), "u": rng.uniform(-2, 2, (3, 2))}
    batch = batch_points(Query(graph), pts, ["x", "u"])
    assert batch.plain and {step[0] for step in batch.steps.values()} == {DIRECT}
    got = gradient(Query(graph, target="y"), pts)
    for b in range(3):
        one = {"x": pts["x"][b].tolist(), "u": pts["u"][b].tolist()}
        plain = derivatives.gradient(Query(graph, values=one, target="y"))
        np.testing.assert_array_equal(got.outputs["y"][b], plain.outputs["y"])
        for s in ("x", "u"):
            np.testing.assert_array_equal(got.gradients[s][b], plain.gradients[s])


@pytest.mark.parametrize("size", [1, 4])
def test_every_way_gives_each_point_its_plain_answer(size: int) -> None:
    graph = build_graph(NODES)
    pts = _points(size, size)
    got = gradient(_query(graph), pts)
    values = evaluate(_query(graph), pts)
    for b in range(size):
        one = {"x": pts["x"][b], "v": pts["v"][b].tolist()}
        plain = derivatives.gradient(
            Query(graph, values=one, target="r", watch=["c"], sources=SOURCES)
        )
        assert got.outputs["r"][b] == plain.outputs["r"] == values.outputs["r"][b]
        for s in SOURCES:
            np.testing.assert_array_equal(got.gradients[s][b], plain.gradients[s])


def test_a_reused_graph_plans_once_per_leaf_shapes_and_roots() -> None:
    reused = ReusableGraph.of(build_graph(NODES))
    first = batch_points(_query(reused), _points(3, 1), SOURCES)
    again = batch_points(_query(reused), _points(3, 2), SOURCES)
    assert again.steps is first.steps  # new values of the same shapes: the plan is kept
    more = batch_points(_query(reused), _points(5, 3), SOURCES)
    assert more.steps is first.steps  # more points: the shapes at one point are the same
    fewer_roots = batch_points(Query(reused, target="r"), {"x": [1.0, 2.0]}, ["x"])
    assert fewer_roots.steps is not first.steps
    assert fewer_roots.steps["a"][0] == ALIGNED and "v" not in fewer_roots.batched
    three = {"v": [1.0, 2.0, 3.0], "c": [0.1, 0.2, 0.3]}  # other leaf shapes: planned anew
    wider = batch_points(Query(reused, target="r", values=three), {"x": [1.0, 2.0]}, ["x"])
    assert wider.shapes["a"] == (3,) and wider.steps is not fewer_roots.steps


def test_a_reused_graph_answers_as_a_fresh_one() -> None:
    fresh, reused = build_graph(NODES), ReusableGraph.of(build_graph(NODES))
    for seed in range(3):
        pts = _points(6, seed)
        a, b = gradient(_query(fresh), pts), gradient(_query(reused), pts)
        np.testing.assert_array_equal(a.outputs["r"], b.outputs["r"])
        for s in SOURCES:
            np.testing.assert_array_equal(a.gradients[s], b.gradients[s])
