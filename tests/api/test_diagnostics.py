"""Diagnostics that say what happened: honest verdicts at kinks, null Hessian blocks
explained, which point a note is about, the trace on every endpoint, typos named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.support import SEED_3, graph, op, var


@pytest.mark.parametrize("check", ["sympy", "numeric", "auto"])
def test_sqrt_of_a_square_at_0_is_no_disagreement(client: TestClient, check: str) -> None:
    """|x| has no derivative at 0: the tape's NaN is not wrong, and no reference exists."""
    r = client.post(
        "/v1/gradient", json={"expression": "sqrt(x**2)", "values": {"x": 0.0}, "check": check}
    )
    body = r.json()
    assert body["gradients"] == {"x": "NaN"}
    report = body["check"]
    assert report["status"] == "skipped" and report["disagreements"] == [], report
    assert "undefined" in report["detail"] and "DISAGREES" not in report["detail"]


def test_sqrt_of_a_square_away_from_0_still_agrees(client: TestClient) -> None:
    r = client.post(
        "/v1/gradient", json={"expression": "sqrt(x**2)", "values": {"x": -2.0}, "check": "sympy"}
    )
    assert r.json()["gradients"] == {"x": -1.0} and r.json()["check"]["status"] == "agree"


def test_a_null_hessian_block_is_explained_beside_the_zero_in_matrix(client: TestClient) -> None:
    r = client.post("/v1/hessian", json={**SEED_3, "check": "none"}).json()
    assert r["hessian"]["x"]["y"] is None and r["matrix"][0][1] == 0.0
    note = next(n for n in r["notes"] if n["reason"] == "unconnected")
    assert "x/y" in note["detail"] and "y/x" in note["detail"] and "`matrix`" in note["detail"]
    zero = client.post(
        "/v1/hessian", json={**SEED_3, "check": "none", "unconnected_gradients": "zero"}
    ).json()
    assert zero["hessian"]["x"]["y"] == 0.0
    assert not [n for n in zero["notes"] if n["reason"] == "unconnected"]


def test_points_notes_say_which_point(client: TestClient) -> None:
    body = {
        "expression": "log(x) + relu(x)",
        "points": [{"x": 1.0}, {"x": -1.0}, {"x": 0.0}],
        "check": "none",
    }
    notes = client.post("/v1/gradient", json=body).json()["notes"]
    details = {n["reason"]: n["detail"] for n in notes if n.get("node")}
    assert details["non_finite"].endswith("(at points 1, 2 of 3)")
    assert details["kink"].endswith("(at point 2 of 3)")
    gradient = next(n for n in notes if n.get("source") == "x")
    assert gradient["detail"].endswith("(at point 2 of 3)")


@pytest.mark.parametrize(
    "path, extra",
    [
        ("/v1/evaluate", {}),
        ("/v1/gradient", {}),
        ("/v1/jacobian", {}),
        ("/v1/hessian", {}),
        ("/v1/derivative", {"order": 2}),
        ("/v1/evaluate", {"points": [{"x": 1.0, "y": 2.0}, {"x": 2.0, "y": 3.0}]}),
        ("/v1/gradient", {"points": [{"x": 1.0, "y": 2.0}, {"x": 2.0, "y": 3.0}]}),
        ("/v1/hessian", {"points": [{"x": 1.0, "y": 2.0}, {"x": 2.0, "y": 3.0}]}),
    ],
)
def test_every_compute_endpoint_traces(client: TestClient, path: str, extra: dict) -> None:
    r = client.post(path, json={**SEED_3, "trace": True, "check": "none", **extra})
    assert r.status_code == 200, r.text
    trace = r.json()["trace"]
    assert [e["output"] for e in trace["entries"]] == ["x2", "y3", "z"]
    head = trace["text"].splitlines()[0]
    assert head.startswith("{ lambda x2.inputs[1]:f64[]=2 y3.inputs[1]:f64[]=3 ; ")
    assert "x:f64[" in head and "y:f64[" in head
    names = {leaf["name"]: leaf["kind"] for leaf in trace["leaves"]}
    assert names == {
        "x": "leaf",
        "y": "leaf",
        "x2.inputs[1]": "constant",
        "y3.inputs[1]": "constant",
    }
    assert trace["entries"][0]["inputs"] == ["x", "x2.inputs[1]"]
    if "points" in extra:
        assert trace["entries"][-1]["shape"] == [2] and "over 2 points" in head
    # the leaves' gradients come along, in the text too (a Jacobian has one per seed: none)
    if path not in ("/v1/evaluate", "/v1/jacobian"):
        grads = {leaf["name"]: leaf["grad"] for leaf in trace["leaves"] if leaf["kind"] == "leaf"}
        assert grads["x"] is not None and trace["text"].splitlines()[-1].startswith("grads: ")


def test_a_trace_is_priced_as_response_bytes(make_client: Callable[..., TestClient]) -> None:
    """500 chained nodes: the answer alone fits 64 KiB, its trace does not."""
    nodes = [var("x", 0.5)] + [
        op(f"s{i}", "sin", "x" if i == 0 else f"s{i - 1}") for i in range(500)
    ]
    c = make_client(max_response_bytes=64 * 1024)
    body = {**graph(*nodes), "check": "none"}
    for path in ("/v1/evaluate", "/v1/gradient", "/v1/hessian"):
        assert c.post(path, json=body).status_code == 200
        r = c.post(path, json={**body, "trace": True})
        assert r.status_code == 422 and r.json()["type"].endswith("cost-limit"), r.text
        assert r.json()["limit"] == "max_response_bytes"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"expression": "x", "input": {"x": 1}}, "unknown field 'input': did you mean 'values'?"),
        ({"expresion": "x"}, "unknown field 'expresion': did you mean 'expression'?"),
        ({"expression": "x", "chek": "none"}, "unknown field 'chek': did you mean 'check'?"),
        (
            graph({"id": "x", "op": "variable", "valu": 1.0}),
            "unknown field 'valu': did you mean 'value'?",
        ),
        ({"expression": "x", "qqqq": 1}, "unknown field 'qqqq'; the fields here are graph, "),
    ],
)
def test_unknown_fields_name_what_was_meant(
    client: TestClient, body: dict[str, Any], message: str
) -> None:
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 422
    assert r.json()["errors"][0]["msg"].startswith(message)
    assert r.json()["detail"].endswith(r.json()["errors"][0]["msg"])
