"""Shape inference holds every node to ``Limits.max_rank`` dimensions, naming the node."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ShapeError
from engine.graphs.build import build_graph
from engine.graphs.graph import NUMPY_MAX_RANK, Limits


def shapes(nodes: list[dict], limits: Limits) -> dict[str, tuple[int, ...]]:
    graph = build_graph(nodes, limits)
    return graph.infer_shapes(graph.leaf_values({}), limits)


X = {"id": "x", "op": "variable", "value": [[1.0, 2.0]]}


def test_the_default_keeps_a_jacobian_of_two_nodes_within_numpy():
    assert 2 * Limits().max_rank <= NUMPY_MAX_RANK


@pytest.mark.parametrize(
    ("node", "rank", "field"),
    [
        ({"id": "n", "op": "reshape", "inputs": ["x"], "attrs": {"shape": [1, 1, 2, 1]}}, 4,
         "attrs.shape"),
        ({"id": "n", "op": "broadcast_to", "inputs": ["x"], "attrs": {"shape": [1, 1, 1, 2]}}, 4,
         "attrs.shape"),
        ({"id": "n", "op": "expand_dims", "inputs": ["x"], "attrs": {"axis": 0}}, 3, None),
        ({"id": "n", "op": "stack", "inputs": ["x", "x"]}, 3, None),
        ({"id": "n", "op": "mul", "inputs": ["x", [[[1.0]]]]}, 3, None),
    ],
)
def test_a_node_over_the_rank_limit_is_a_shape_error_naming_it(node, rank, field):
    assert shapes([X, node], Limits(max_rank=rank))["n"] == shapes([X, node], Limits())["n"]
    with pytest.raises(ShapeError) as info:
        shapes([X, node], Limits(max_rank=rank - 1))
    assert info.value.node == "n" and info.value.field == field
    assert f"{rank} dimensions" in info.value.detail


def test_a_leaf_over_the_rank_limit_is_refused_too():
    with pytest.raises(ShapeError) as info:
        shapes([X], Limits(max_rank=1))
    assert info.value.node == "x"


def test_numpy_refuses_what_the_limit_keeps_out():
    with pytest.raises(ValueError):
        np.zeros((1,) * (NUMPY_MAX_RANK + 1))
