"""Answers that fuzzing the contract (tests/contract) found wrong, kept right by tests."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/ops", "GET"),
        ("PATCH", "/v1/gradient", "POST"),
        ("PUT", "/v1/graphs/g_" + "0" * 64, "DELETE, GET"),
        ("OPTIONS", "/v1/graphs/g_" + "0" * 64, "DELETE, GET"),
    ],
)
def test_a_wrong_method_is_a_405_listing_every_allowed_method(client, method, path, allowed):
    # No body and no media type: the method is judged first (a 405, not a 415).
    r = client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allowed
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"].endswith(f"allowed: {allowed}")


def test_a_body_to_no_endpoint_is_a_404_not_a_guard_refusal(client):
    r = client.post("/v1/no-such-thing", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 404


def test_the_guard_still_refuses_a_wrong_media_type_on_a_real_endpoint(client):
    r = client.post("/v1/gradient", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415


@pytest.mark.parametrize("first", ["text/plain", ""])
def test_the_guard_judges_the_content_type_the_route_reads(client, first):
    # two Content-Type headers: the route reads the first, so the guard must judge it
    headers = [("content-type", first), ("content-type", "application/json")]
    r = client.post("/v1/gradient", content=b'{"expression": "x", "values": {"x": 1}}',
                    headers=headers)
    assert r.status_code == 415, r.text


def test_success_responses_are_documented_by_their_models(client):
    paths = client.app.openapi()["paths"]
    for path, method, model in [
        ("/v1/gradient", "post", "GradientResponse"),
        ("/v1/hessian", "post", "HessianResponse"),
        ("/v1/ops", "get", "OpsResponse"),
        ("/healthz", "get", "Health"),
    ]:
        schema = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, (path, schema)


def test_an_unconnected_hessian_block_is_null_as_documented(client):
    r = client.post("/v1/hessian", json={"expression": "x**2 + y**3", "values": {"x": 2, "y": 3}})
    assert r.status_code == 200
    assert r.json()["hessian"]["x"]["y"] is None
    assert r.json()["matrix"] == [[2.0, 0.0], [0.0, 18.0]]
    block = client.app.openapi()["components"]["schemas"]["HessianResponse"]["properties"]
    blocks = next(s for s in block["hessian"]["anyOf"] if s.get("type") == "object")
    assert {"type": "null"} in blocks["additionalProperties"]["additionalProperties"]["anyOf"]


def test_exactly_one_computation_is_in_the_schema(client):
    """Stated in the description, not as a top-level oneOf (client generators choke on it)."""
    schema = client.app.openapi()["components"]["schemas"]["ComputeRequest"]
    assert "oneOf" not in schema and "required" not in schema
    assert {"graph", "expression", "graph_id"} <= set(schema["properties"])
    rule = schema["description"].split("Send exactly one of ", 1)[1]
    assert all(f"`{name}`" in rule for name in ("graph", "expression", "graph_id")), rule
