"""Hostile requests: each is a small RFC 9457 problem naming its culprit, never a 500.

The session client raises on any server exception, so reaching the catch-all
handler fails the test rather than passing as a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from tests.api.support import graph, op, var
from tests.conftest import make_settings

MAX_PROBLEM_BYTES = 4096
OK = graph(var("x", 3.0), op("y", "pow", "x", 2))


@dataclass
class Case:
    name: str
    status: int
    json: Any = None
    content: bytes | None = None
    content_type: str | None = "application/json"
    path: str = "/v1/gradient"
    method: str = "POST"
    slug: str | None = None  # the end of the problem's type URI
    node: str | None = None
    where: str | None = None  # a substring of the field the problem names
    settings: dict[str, Any] = field(default_factory=dict)


def bomb(shape: list[int], name: str = "broadcast_to") -> dict[str, Any]:
    return graph(var("x", 1.0), op("b", name, "x", shape=shape), op("s", "sum", "b"))


def over(name: str, body: dict[str, Any], node: str, where: str, **settings: Any) -> Case:
    """A node over a limit on what a request contains: a 413 naming the node and its field."""
    return Case(name, 413, json=body, slug="limit-exceeded", node=node, where=where,
                settings=settings)


def chain(n: int) -> dict[str, Any]:
    nodes = [var("n0", 1.0)] + [op(f"n{i}", "sin", f"n{i - 1}") for i in range(1, n)]
    return graph(*nodes)


CASES = [
    # --- bytes that are not the JSON the contract asks for
    Case("malformed json", 400, content=b'{"graph": ', slug="malformed-json"),
    Case(
        "truncated json",
        400,
        content=b'{"expression": "x", "values": {"x": 3',
        slug="malformed-json",
    ),
    Case("not json", 400, content=b"hello", slug="malformed-json"),
    Case("trailing garbage", 400, content=b"{} x", slug="malformed-json"),
    Case("invalid utf-8", 400, content=b'{"expression": "\xff\xfe"}'),
    Case("top level array", 422, json=[1, 2], slug="invalid-request"),
    Case("empty body", 422, content=b"", slug="invalid-request"),
    Case("deep nesting", 413, content=b"[" * 100_000, slug="nesting-too-deep"),
    Case("deep nesting closed", 413, content=b"[" * 5000 + b"]" * 5000, slug="nesting-too-deep"),
    Case(
        "body over limit",
        413,
        content=b'{"expression": "' + b"x" * (3 << 20) + b'"}',
        slug="body-too-large",
    ),
    Case(
        "wrong media type",
        415,
        content=b"{}",
        content_type="text/plain",
        slug="unsupported-media-type",
    ),
    Case("no media type", 415, content=b"{}", content_type=None, slug="unsupported-media-type"),
    Case(
        "form media type",
        415,
        content=b"a=1",
        content_type="application/x-www-form-urlencoded",
        slug="unsupported-media-type",
    ),
    # --- the request object
    Case("graph and expression", 422, json={**OK, "expression": "x"}, slug="invalid-request"),
    Case("neither graph nor expression", 422, json={"values": {"x": 1}}, slug="invalid-request"),
    Case("unknown top-level field", 422, json={**OK, "persistent": True}, where="persistent"),
    Case(
        "unknown node field",
        422,
        json=graph({"id": "x", "op": "variable", "valu": 1}),
        where="valu",
    ),
    Case(
        "bad unconnected_gradients",
        422,
        json={**OK, "unconnected_gradients": "some"},
        where="unconnected_gradients",
    ),
    Case("bad check", 422, json={**OK, "check": "bogus"}, where="check"),
    Case(
        "string as boolean",
        422,
        json={**OK, "watch_accessed_variables": "false"},
        where="watch_accessed_variables",
    ),
    Case("nodes not a list", 422, json={"graph": {"nodes": {"x": 1}}}, where="graph.nodes"),
    Case("no nodes", 422, json={"graph": {"nodes": []}}, where="graph.nodes"),
    # --- values
    Case("ragged array", 422, json={**OK, "values": {"x": [[1, 2], [3]]}}, where="values.x"),
    Case("ragged deeper", 422, json={**OK, "values": {"x": [1, [2]]}}, where="values.x"),
    Case("boolean value", 422, json=graph(var("x", True)), where="graph.nodes.0.value", node="x"),
    Case("boolean in array", 422, json={**OK, "values": {"x": [1.0, True]}}, where="values.x"),
    Case("null value", 422, json={**OK, "values": {"x": None}}, where="values.x"),
    Case("other string value", 422, json={**OK, "values": {"x": "three"}}, where="values.x"),
    Case("lowercase nan", 422, json={**OK, "values": {"x": "nan"}}, where="values.x"),
    Case("object as value", 422, json={**OK, "values": {"x": {"a": 1}}}, where="values.x"),
    Case("huge integer", 422, json={**OK, "values": {"x": 10**400}}, where="values.x"),
    Case(
        "too many dimensions",
        422,
        json={**OK, "values": {"x": json.loads("[" * 33 + "1" + "]" * 33)}},
        where="values.x",
    ),
    Case("values for an op node", 422, json={**OK, "values": {"y": 1.0}}, node="y"),
    Case("values for no node", 422, json={**OK, "values": {"q": 1.0}}, where="values"),
    Case(
        "leaf without value",
        422,
        json=graph({"id": "x", "op": "variable"}, op("y", "exp", "x")),
        node="x",
    ),
    # --- graph structure
    Case(
        "cycle",
        422,
        json=graph(var("x", 1.0), op("a", "add", "x", "b"), op("b", "mul", "a", "x")),
        slug="invalid-graph",
    ),
    Case(
        "self loop",
        422,
        json=graph(var("x", 1.0), op("a", "add", "x", "a")),
        node="a",
        slug="invalid-graph",
    ),
    Case(
        "dangling reference",
        422,
        json=graph(var("x", 1.0), op("a", "exp", "q")),
        node="a",
        slug="invalid-graph",
    ),
    Case(
        "duplicate ids",
        422,
        json=graph(var("x", 1.0), var("x", 2.0)),
        node="x",
        slug="invalid-graph",
    ),
    Case("bad id", 422, json=graph(var("1x", 1.0)), where="graph.nodes.0.id"),
    Case("id with a space", 422, json=graph(var("a b", 1.0)), where="graph.nodes.0.id"),
    Case("id too long", 422, json=graph(var("x" * 200, 1.0)), where="graph.nodes.0.id"),
    Case("too few inputs", 422, json=graph(var("x", 1.0), op("a", "add", "x")), node="a"),
    Case("too many inputs", 422, json=graph(var("x", 1.0), op("a", "neg", "x", "x")), node="a"),
    Case("unknown op", 422, json=graph(var("x", 1.0), op("a", "frobnicate", "x")), node="a"),
    Case("unknown attr", 422, json=graph(var("x", [1.0]), op("a", "sum", "x", axes=0)), node="a"),
    Case("bad axis", 422, json=graph(var("x", [[1.0]]), op("a", "sum", "x", axis=5)), node="a"),
    Case(
        "attr of wrong kind",
        422,
        json=graph(var("x", [1.0]), op("a", "sum", "x", keepdims="yes")),
        node="a",
    ),
    Case(
        "bad perm",
        422,
        json=graph(var("x", [[1.0, 2.0]]), op("t", "transpose", "x", perm=[0, 0])),
        node="t",
    ),
    Case(
        "shape mismatch",
        422,
        json=graph(var("x", [1.0, 2.0]), var("w", [1.0, 2.0, 3.0]), op("a", "add", "x", "w")),
        node="a",
    ),
    Case(
        "matmul mismatch",
        422,
        json=graph(var("x", [[1.0, 2.0]]), var("w", [[1.0, 2.0]]), op("m", "matmul", "x", "w")),
        node="m",
    ),
    Case("reshape to wrong size", 422, json=bomb([3, 5], "reshape"), node="b"),
    # --- allocation bombs and size limits
    Case("broadcast_to bomb", 422, json=bomb([100_000, 100_000]), node="b", slug="compute-limit"),
    # reshape cannot allocate: the element count must match, so a "bomb" is a shape error
    Case(
        "reshape bomb",
        422,
        json=graph(
            var("x", 1.0),
            op("b", "broadcast_to", "x", shape=[100_000]),
            op("r", "reshape", "b", shape=[100_000, 100_000]),
        ),
        node="r",
    ),
    Case("too many nodes", 413, json=chain(10_001), slug="limit-exceeded"),
    Case(
        "tensor over element limit",
        413,
        json={**OK, "values": {"x": [0.0] * 101}},
        settings={"max_tensor_elements": 100},
        slug="limit-exceeded",
    ),
    over("node value over element limit", graph(var("x", [0.0] * 101)), "x", "value",
         max_tensor_elements=100),
    over("inline constant over element limit",
         graph(var("x", 1.0), op("y", "add", "x", [0.0] * 101)), "y", "inputs",
         max_tensor_elements=100),
    over("inputs over the limit", graph(var("x", 1.0), op("s", "stack", "x", "x", "x")), "s",
         "inputs", max_inputs=2),
    Case(
        "hessian too many sources",
        422,
        path="/v1/hessian",
        json=graph(var("x", [0.5] * 200), op("s", "sum", "x")),
        settings={"max_derivative_work": 1000},
        slug="compute-limit",
    ),
    Case(
        "jacobian too large",
        422,
        path="/v1/jacobian",
        json=graph(var("x", [0.5] * 200), op("s", "sin", "x")),
        settings={"max_derivative_work": 1000},
        slug="compute-limit",
    ),
    Case(
        "time budget overrun",
        422,
        json=chain(2000),
        settings={"time_budget_seconds": 1e-6},
        slug="time-budget",
    ),
    # --- expressions are parsed, never evaluated
    Case(
        "expression import",
        422,
        json={"expression": "__import__('os').system('true')"},
        slug="invalid-expression",
    ),
    Case(
        "expression attribute",
        422,
        json={"expression": "x.real", "values": {"x": 1.0}},
        slug="invalid-expression",
    ),
    Case("expression lambda", 422, json={"expression": "(lambda: 1)()"}, slug="invalid-expression"),
    Case(
        "expression subscript",
        422,
        json={"expression": "x[0]", "values": {"x": [1.0]}},
        slug="invalid-expression",
    ),
    Case(
        "expression comprehension",
        422,
        json={"expression": "[x for x in y]"},
        slug="invalid-expression",
    ),
    Case(
        "expression string literal", 422, json={"expression": "'a' * 3"}, slug="invalid-expression"
    ),
    Case(
        "expression syntax error",
        422,
        json={"expression": "x +", "values": {"x": 1.0}},
        slug="invalid-expression",
    ),
    Case(
        "expression unknown function",
        422,
        json={"expression": "evil(x)", "values": {"x": 1}},
        slug="invalid-expression",
    ),
    Case("expression unbound name", 422, json={"expression": "x + q", "values": {"x": 1.0}}),
    Case(
        "expression too long",
        413,
        json={"expression": "x+" * 6000 + "x", "values": {"x": 1}},
        slug="limit-exceeded",
    ),
    Case(
        "expression too deep",
        413,
        json={"expression": "(" * 150 + "x" + ")" * 150, "values": {"x": 1.0}},
    ),
    # --- targets, sources and seeds
    Case("unknown target", 422, json={**OK, "target": "q"}, node="q", where="target"),
    Case("empty target list", 422, json={**OK, "target": []}),
    Case("unknown source", 422, json={**OK, "sources": ["q"]}, node="q", where="sources"),
    Case("watch an op node", 422, json={**OK, "watch": ["y"]}, node="y", where="watch"),
    Case(
        "non-scalar hessian target",
        422,
        path="/v1/hessian",
        json=graph(var("x", [1.0, 2.0]), op("y", "sin", "x")),
        node="y",
    ),
    Case(
        "output_gradients wrong shape",
        422,
        json=graph(
            var("x", [1.0, 2.0]), op("y", "sin", "x"), output_gradients={"y": [1.0, 2.0, 3.0]}
        ),
        node="y",
    ),
    Case(
        "output_gradients for a non-target",
        422,
        json={**OK, "output_gradients": {"x": 1.0}},
        node="x",
    ),
    # --- routing
    Case("get on a compute route", 405, method="GET", path="/v1/gradient"),
    Case("unknown path", 404, path="/v2/gradient"),
    Case("unknown path under v1", 404, path="/v1/nothing"),
]


def _send(client: TestClient, case: Case) -> Any:
    headers = {} if case.content_type is None else {"content-type": case.content_type}
    if case.json is not None:
        content = json.dumps(case.json).encode()
    else:
        content = case.content
    if case.method == "GET":
        return client.get(case.path)
    return client.request(case.method, case.path, content=content, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request_is_a_small_problem(client, make_client, case):
    c = make_client(**case.settings) if case.settings else client
    r = _send(c, case)
    assert r.status_code == case.status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert len(r.content) < MAX_PROBLEM_BYTES
    body = r.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == case.status
    assert body["detail"] and body["title"]
    if case.slug:
        assert body["type"].endswith(case.slug), body
    if case.node:
        assert body.get("node") == case.node, body
    if case.where:
        assert case.where in (body.get("field") or ""), body


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


def test_server_still_serves_after_the_table(client):
    for case in CASES:
        if not case.settings:
            _send(client, case)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.post("/v1/gradient", json=OK).json()["gradients"] == {"x": 6.0}


def test_a_body_without_content_length_is_counted_while_read(make_client):
    client = make_client(max_body_bytes=1000)

    def chunks():
        yield b'{"expression": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}'

    r = client.post("/v1/gradient", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["type"].endswith("body-too-large")


def test_a_lying_content_length_is_refused(make_client):
    client = make_client(max_body_bytes=100)
    r = client.post(
        "/v1/gradient",
        content=b"{" + b" " * 200 + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413


def test_problem_json_media_type_is_accepted(client):
    r = client.post(
        "/v1/gradient", content=json.dumps(OK), headers={"content-type": "application/vnd.x+json"}
    )
    assert r.status_code == 200


def test_errors_list_names_every_field_and_is_capped(client):
    nodes = [var(f"{i}bad", 1.0) for i in range(100)]
    r = client.post("/v1/gradient", json=graph(*nodes))
    body = r.json()
    assert r.status_code == 422
    assert 1 <= len(body["errors"]) <= 20
    assert body["errors"][0]["loc"] == ["body", "graph", "nodes", 0, "id"]
    assert len(r.content) < MAX_PROBLEM_BYTES


def test_a_long_bad_string_is_not_echoed(client):
    r = client.post("/v1/gradient", json={**OK, "values": {"x": "z" * 100_000}})
    assert r.status_code == 422
    assert "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz" not in r.text
    assert len(r.content) < MAX_PROBLEM_BYTES


def test_an_unexpected_error_is_a_500_problem_without_internals():
    app: FastAPI = create_app(make_settings())

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal state")

    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "secret" not in r.text and "Traceback" not in r.text
    assert r.json()["type"].endswith("internal-error")
