"""`format: coo` Hessians: the pattern found from the graph, compressed, sent as coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from app.examples import rosenbrock
from tests.api.support import SEED_3, arr, graph, op, post, var


def _dense(sparse: dict) -> np.ndarray:
    out = np.zeros(sparse["shape"])
    out[sparse["rows"], sparse["cols"]] = arr(sparse["values"])
    return out


@pytest.mark.parametrize("n", [2, 8, 31])
def test_coo_equals_the_dense_hessian(client, n):
    dense = post(client, "hessian", {**rosenbrock(n), "check": "none"})
    sparse = post(client, "hessian", {**rosenbrock(n), "format": "coo", "check": "none"})
    np.testing.assert_allclose(_dense(sparse["sparse"]), arr(dense["matrix"]), rtol=1e-13)
    assert "matrix" not in sparse and "hessian" not in sparse
    assert sparse["gradients"] == dense["gradients"]


def test_rosenbrock_is_found_banded_with_three_colours(client):
    body = post(client, "hessian", {**rosenbrock(50), "format": "coo", "check": "none"})
    structure = body["structure"]
    assert structure["kind"] == "banded"
    assert structure["bandwidth"] == 1
    assert structure["colours"] == 3
    assert structure["nnz"] == 50 + 2 * 49


def test_a_coo_hessian_is_cross_checked(client):
    body = post(client, "hessian", {**rosenbrock(6), "format": "coo", "check": "numeric"})
    assert body["check"]["status"] == "agree"
    assert body["check"]["compared"] > 6  # the Hessian entries, not just the gradient


def test_auto_goes_sparse_past_the_dense_limit(make_client):
    client = make_client(dense_max_sources=10)
    small = post(client, "hessian", {**rosenbrock(10), "check": "none"})
    large = post(client, "hessian", {**rosenbrock(11), "check": "none"})
    assert "matrix" in small and "sparse" not in small
    assert "sparse" in large and large["structure"]["kind"] == "banded"


def test_a_dense_pattern_is_reported_dense(client):
    body = post(client, "hessian", {
        **graph(var("x", [0.1, 0.2, 0.3]), op("s", "sum", "x"), op("e", "exp", "s")),
        "format": "coo", "check": "none",
    })
    assert body["structure"]["kind"] == "dense"
    np.testing.assert_allclose(_dense(body["sparse"]), np.full((3, 3), np.exp(0.6)), rtol=1e-13)


def test_a_sparse_hessian_over_the_work_limit_is_a_422(make_client):
    client = make_client(max_derivative_work=20)
    r = client.post("/v1/hessian", json={**rosenbrock(30), "format": "coo", "check": "none"})
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/compute-limit")
    assert post(client, "hessian", {**SEED_3, "check": "none"})["matrix"] == [[2.0, 0.0],
                                                                               [0.0, 18.0]]


def test_an_unknown_format_is_a_422(client):
    r = client.post("/v1/hessian", json={**SEED_3, "format": "csr"})
    assert r.status_code == 422
    assert "format" in r.text


def test_a_dense_hessian_past_the_sweeps_limits_is_answered_from_its_colours(client):
    """1,000 sources at the default limits: the n-seed sweep is refused by its estimate,
    the coloured one is not; a dense pattern of the same size is still refused."""
    from bench.rosenbrock import exact_hessian

    body = {"graph": rosenbrock(1000)["graph"], "check": "none"}
    answer = client.post("/v1/hessian", json=body)
    assert answer.status_code == 200, answer.text[:300]
    matrix = np.asarray(answer.json()["matrix"])
    want = exact_hessian(np.asarray(body["graph"]["nodes"][0]["value"]))
    np.testing.assert_allclose(matrix, want, rtol=1e-12, atol=1e-9)
    x = np.linspace(0.5, 1.5, 1000).tolist()
    dense = {"graph": {"nodes": [
        {"id": "x", "op": "variable", "value": x},
        {"id": "a", "op": "sin", "inputs": ["x"]}, {"id": "b", "op": "mul", "inputs": ["a", "x"]},
        {"id": "c", "op": "exp", "inputs": ["b"]}, {"id": "d", "op": "tanh", "inputs": ["c"]},
        {"id": "e", "op": "mul", "inputs": ["d", "a"]}, {"id": "s", "op": "sum", "inputs": ["e"]},
        {"id": "f", "op": "square", "inputs": ["s"]}]}, "check": "none"}
    refused = client.post("/v1/hessian", json=dense)
    assert refused.status_code == 422, refused.text[:300]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "Hessian is estimated" in refused.json()["detail"]
