"""Tensors past numpy's 64 dimensions are a 422 naming the node, never a 500.

Every node is held to 32 dimensions (``Limits.max_rank``, the wire's ``MAX_RANK``), so a
Jacobian block (target + source dims) fits numpy's 64 and a vectorised sweep's extra
axis fits too; a per-point Hessian block (points axis + 2 x 32) is refused on its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.wire.values import MAX_RANK
from tests.api.support import arr, graph, op, post, var


def nested(value: Any, rank: int) -> Any:
    """``value`` wrapped in ``rank`` one-element lists."""
    for _ in range(rank):
        value = [value]
    return value


def assert_rank_problem(body: dict, node: str, rank: int) -> None:
    assert body["type"].endswith("/shape-mismatch"), body
    assert body["status"] == 422 and body["node"] == node, body
    assert f"{rank} dimensions" in body["detail"] and "32" in body["detail"], body


def test_the_limit_is_the_wires_value_rank():
    assert MAX_RANK == 32


def test_a_reshape_to_rank_65_is_a_422_naming_it(client):
    body = post(client, "evaluate", graph(var("x", 1.0), op("r", "reshape", "x", shape=[1] * 65)),
                status=422)
    assert_rank_problem(body, "r", 65)
    assert body["field"] == "attrs.shape"


def test_the_gradient_of_a_broadcast_to_rank_64_is_a_422_naming_it(client):
    g = graph(var("x", 1.0), op("b", "broadcast_to", "x", shape=[1] * 64), op("s", "sum", "b"))
    assert_rank_problem(post(client, "gradient", g, status=422), "b", 64)


def test_a_stack_of_rank_64_tensors_is_a_422_at_the_first_node_over(client):
    g = graph(var("x", 1.0), op("r", "reshape", "x", shape=[1] * 64), op("s", "stack", "r", "r"))
    assert_rank_problem(post(client, "evaluate", g, status=422), "r", 64)


def test_an_op_adding_a_dimension_past_the_limit_is_a_422_naming_it(client):
    base = [var("x", 1.0), op("r", "reshape", "x", shape=[1] * 32)]
    for last in (op("s", "stack", "r", "r"), op("s", "expand_dims", "r", axis=0)):
        body = post(client, "gradient", graph(*base, last, op("t", "sum", "s")), status=422)
        assert_rank_problem(body, "s", 33)
        assert "field" not in body


def test_rank_32_is_served_by_every_endpoint(client):
    x = nested([1.0, 2.0], 31)  # rank 32
    square = graph(var("x", x), op("m", "mul", "x", "x"), op("s", "sum", "m"), check="none")
    assert post(client, "evaluate", square)["outputs"]["s"] == 5.0
    grad = arr(post(client, "gradient", square)["gradients"]["x"])
    assert grad.shape == (1,) * 31 + (2,) and grad.ravel().tolist() == [2.0, 4.0]
    hess = arr(post(client, "hessian", square)["hessian"]["x"]["x"])
    assert hess.shape == ((1,) * 31 + (2,)) * 2  # 64 dimensions, numpy's own limit
    assert np.array_equal(hess.reshape(2, 2), [[2.0, 0.0], [0.0, 2.0]])


def test_a_jacobian_of_rank_32_by_rank_32_is_served(client):
    """A 64-dimension result; its vectorised sweep carries 33 dimensions per node."""
    x = nested([1.0, 2.0], 31)
    for check in ("none", "numeric"):
        body = post(client, "jacobian", graph(var("x", x), op("m", "mul", "x", "x"), check=check))
        jac = arr(body["jacobian"]["m"]["x"])
        assert jac.ndim == 64
        assert np.array_equal(jac.reshape(2, 2), [[2.0, 0.0], [0.0, 4.0]])
    # the check compares all 64 dimensions too (numpy broadcasts no more than 32)
    assert body["check"]["status"] == "agree", body["check"]
    assert body["check"]["compared"] == 4


def test_a_tall_jacobian_of_a_rank_32_target_is_served(client):
    """More target than source elements: one seed per source element (transposed)."""
    g = graph(var("x", 3.0), op("b", "broadcast_to", "x", shape=[4] + [1] * 31),
              op("m", "mul", "b", "x"), check="none")
    jac = arr(post(client, "jacobian", g)["jacobian"]["m"]["x"])
    assert jac.shape == (4,) + (1,) * 31 and np.all(jac == 6.0)


def test_higher_derivatives_through_rank_32_nodes_are_served(client):
    g = graph(var("a", 0.5), var("b", 2.0), op("r", "reshape", "a", shape=[1] * 32),
              op("m", "mul", "r", "b"), op("e", "exp", "m"), op("s", "sum", "e"),
              order=6, check="none")
    body = post(client, "derivative", g)
    assert body["order"] == 6
    assert np.isclose(body["derivatives"][5][0][0][0][0][0][0], 2.0**6 * np.exp(1.0))


def test_points_add_their_axis_within_the_limit_or_are_refused(client):
    x = nested([1.0, 2.0], 31)
    square = graph(var("x", x), op("m", "mul", "x", "x"), op("s", "sum", "m"), check="none")
    points = [{"x": x}, {"x": nested([3.0, 4.0], 31)}]
    grads = arr(post(client, "gradient", {**square, "points": points})["gradients"]["x"])
    assert grads.shape == (2,) + (1,) * 31 + (2,)  # 33 dimensions
    assert grads.reshape(2, 2).tolist() == [[2.0, 4.0], [6.0, 8.0]]
    # a per-point Hessian block would be 1 + 32 + 32 = 65 dimensions
    body = post(client, "hessian", {**square, "points": points}, status=422)
    assert body["type"].endswith("/shape-mismatch") and body["node"] == "x", body
    assert body["field"] == "sources" and "65 dimensions" in body["detail"], body


def test_a_per_point_hessian_of_a_rank_31_source_is_served(client):
    x = nested([1.0, 2.0], 30)  # rank 31: blocks of 1 + 31 + 31 = 63 dimensions
    square = graph(var("x", x), op("m", "mul", "x", "x"), op("s", "sum", "m"), check="none")
    body = post(client, "hessian", {**square, "points": [{"x": x}, {"x": x}]})
    block = arr(body["hessian"]["x"]["x"])
    assert block.ndim == 63 and np.array_equal(block.reshape(2, 2, 2)[1], 2 * np.eye(2))
