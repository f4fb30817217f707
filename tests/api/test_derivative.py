"""POST /v1/derivative: every derivative up to an order, its limits and its check."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.support import SEED_2, SEED_3, arr, const, graph, notes_for, op, post, var

THREE = {"expression": "sin(x * y) + exp(z) * x**2", "values": {"x": 0.4, "y": -0.8, "z": 0.3}}


def test_seed_example_2_at_order_3_gives_27_18_6(client):
    out = post(client, "derivative", {**SEED_2, "order": 3})
    assert out["derivatives"] == [27.0, 18.0, 6.0]
    assert out["outputs"] == {"y": 27.0}
    assert out["sources"] == ["x"] and out["order"] == 3
    assert out["check"]["method"] == "sympy" and out["check"]["status"] == "agree"
    assert out["check"]["symbolic"]["derivatives"] == {"1": "3*x**2", "2": "6*x", "3": "6"}


def test_several_sources_give_tensors_of_shape_n_to_the_order(client):
    out = post(client, "derivative", {**SEED_3, "order": 3})
    assert out["sources"] == ["x", "y"]
    first, second, third = (arr(d) for d in out["derivatives"])
    assert first.tolist() == [4.0, 27.0]
    assert second.tolist() == [[2.0, 0.0], [0.0, 18.0]]
    expected = np.zeros((2, 2, 2))
    expected[1, 1, 1] = 6.0
    assert third.shape == (2, 2, 2) and third.tolist() == expected.tolist()


def test_orders_1_and_2_equal_the_gradient_and_hessian_endpoints(client):
    out = post(client, "derivative", {**THREE, "order": 2})
    grad = post(client, "gradient", THREE)["gradients"]
    hess = post(client, "hessian", THREE)["matrix"]
    np.testing.assert_allclose(arr(out["derivatives"][0]), [grad[s] for s in out["sources"]])
    np.testing.assert_allclose(arr(out["derivatives"][1]), arr(hess), rtol=1e-13)


def test_the_tensor_is_symmetric_and_checked_by_sympy(client):
    out = post(client, "derivative", {**THREE, "order": 4})
    fourth = arr(out["derivatives"][3])
    assert fourth.shape == (3, 3, 3, 3)
    np.testing.assert_array_equal(fourth, np.transpose(fourth, (2, 0, 3, 1)))
    check = out["check"]
    assert (check["method"], check["status"]) == ("sympy", "agree")
    assert check["compared"] == 3 + 9 + 27 + 81


def test_numeric_check_compares_orders_1_and_2_and_says_so(client):
    out = post(client, "derivative", {**THREE, "order": 3, "check": "numeric"})
    check = out["check"]
    assert (check["method"], check["status"]) == ("numeric", "agree")
    assert check["compared"] == 3 + 9
    assert "order 3 not compared" in check["detail"]


def test_sources_and_unconnected_sources_follow_the_tape(client):
    body = graph(var("x", 2.0), var("u", 1.0), const("c", 5.0), op("s", "sin", "u"),
                 op("y", "pow", "x", 2), target="y", sources=["x", "u", "c"], order=2)
    out = post(client, "derivative", body)
    assert arr(out["derivatives"][0]).tolist() == [4.0, 0.0, 0.0]
    assert arr(out["derivatives"][1]).tolist() == np.diag([2.0, 0.0, 0.0]).tolist()
    assert {n["source"] for n in notes_for(out, "unconnected")} == {"u"}
    assert {n["source"] for n in notes_for(out, "not_watched")} == {"c"}


def test_order_over_the_configured_limit_is_a_422_naming_order(make_client):
    """A limit on what the graph would compute is a 422 (the wire contract), not a 413:
    the body is small, what it asks for is too much."""
    client = make_client(max_derivative_order=3)
    r = client.post("/v1/derivative", json={**SEED_2, "order": 4})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/compute-limit") and problem["field"] == "order"
    assert "order 4" in problem["detail"]
    assert client.post("/v1/derivative", json={**SEED_2, "order": 3}).status_code == 200


def test_entries_over_the_work_limit_are_a_422(make_client):
    client = make_client(max_derivative_work=3 + 9)
    assert client.post("/v1/derivative", json={**THREE, "order": 2}).status_code == 200
    r = client.post("/v1/derivative", json={**THREE, "order": 3})
    assert r.status_code == 422
    assert "39 entries" in r.json()["detail"]


@pytest.mark.parametrize("order", [0, -1, "3", 2.5, True, None])
def test_an_order_that_is_not_a_positive_integer_is_a_422(client, order):
    r = client.post("/v1/derivative", json={**SEED_2, "order": order})
    assert r.status_code == 422
    assert r.json()["field"] == "order"


def test_a_missing_order_is_a_422(client):
    r = client.post("/v1/derivative", json=SEED_2)
    assert r.status_code == 422
    assert r.json()["field"] == "order"


def test_a_non_scalar_target_is_a_422_naming_it(client):
    body = {"expression": "x * w", "values": {"x": 2.0, "w": [1.0, 2.0]}, "sources": ["x"],
            "order": 2}
    r = client.post("/v1/derivative", json=body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["type"].endswith("/shape-mismatch")
    assert problem["field"] == "target" and "scalar target" in problem["detail"]


def test_a_non_scalar_source_is_a_422_naming_it(client):
    body = {"expression": "sum(w)", "values": {"w": [1.0, 2.0]}, "order": 2}
    r = client.post("/v1/derivative", json=body)
    assert r.status_code == 422
    assert r.json()["node"] == "w" and r.json()["field"] == "sources"


def test_the_openapi_seed_example_asks_for_order_3(client):
    example = client.app.openapi()["paths"]["/v1/derivative"]["post"]["requestBody"]
    value = example["content"]["application/json"]["examples"]["seed-2"]["value"]
    assert value["order"] == 3
    assert post(client, "derivative", value)["derivatives"] == [27.0, 18.0, 6.0]
