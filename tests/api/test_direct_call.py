"""A compute route's endpoint is called straight with its validated body (app.offload).

FastAPI's handler solves the same two parameters (the body model and the request) at a
cost; the direct call must accept and refuse exactly the documents that handler does,
with the same answers, byte for byte but the request id.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute

from app import offload
from app.routes import compute, graphs, pictures
from tests.api.support import graph, op, var

JSON = "application/json"
SEED = graph(var("x", 2.0), var("y", 3.0), op("x2", "pow", "x", 2), op("y3", "pow", "y", 3),
             op("z", "add", "x2", "y3"), check="none")
BIG_VALUE = [0.25 + i * 1e-6 for i in range(60_000)]  # past the offload threshold
BODIES: dict[str, bytes] = {
    "seed graph": json.dumps(SEED).encode(),
    "expression": b'{"expression": "x**2 + y**3", "values": {"x": 2, "y": 3}, "check": "none"}',
    "json+ media type": json.dumps(SEED).encode(),
    "invalid fields": json.dumps(graph(
        var("x", 1.0), {"id": "bad id!", "op": "neg", "inputs": ["x"]},
        {"id": "z", "op": "neg", "inputs": ["x"], "colour": "red"}, check="maybe",
    )).encode(),
    "wrong types": b'{"expression": 3, "values": "x", "sources": {}}',
    "both forms": b'{"expression": "x", "graph": {"nodes": []}, "values": {"x": 1}}',
    "neither form": b'{"values": {"x": 1}}',
    "empty object": b"{}",
    "an array": b"[1, 2]",
    "null": b"null",
    "a string": b'"x**2"',
    "malformed": b'{"expression": "x", ',
    "empty body": b"",
    "not text": b'{"expression": "x\xff"}',
    "bare NaN": b'{"expression": "x", "values": {"x": NaN}}',
    "past float64": b'{"expression": "x", "values": {"x": 1e309}}',
    "long integer": b'{"expression": "x", "values": {"x": 123456789012345678901234}}',
    "deep nesting": (b'{"expression": "x", "values": {"x": ' + b"[" * 200 + b"1"
                     + b"]" * 200 + b"}}"),
    "not json": json.dumps(SEED).encode(),
    "no media type": json.dumps(SEED).encode(),
    "large": json.dumps(graph(var("x", 2.0), {"id": "c", "op": "constant", "value": BIG_VALUE},
                              op("s", "sum", "c"), op("y", "mul", "x", "s"),
                              check="none")).encode(),
    "large, invalid": json.dumps(graph(var("x", BIG_VALUE), op("y", "neg", "x"),
                                       check="maybe")).encode(),
}
MEDIA_TYPES = {"json+ media type": "application/vnd.deriv+json", "not json": "text/plain",
               "no media type": ""}  # the others are sent as application/json
PATHS = ["/v1/evaluate", "/v1/gradient", "/v1/jacobian", "/v1/hessian", "/v1/derivative"]
PICTURES = ["/v1/plot", "/v1/draw"]  # their endpoints take a body and the request too
PICTURE_CASES = ["invalid fields", "malformed", "empty body", "not json", "past float64", "large"]
DRAWN = {  # a body each picture route draws
    "/v1/plot": b'{"expression": "x**2 + y**3", "variable": "x", "range": [-1, 1], '
                b'"values": {"y": 2}}',
    "/v1/draw": b'{"expression": "x**2 + y**3", "values": {"x": 2, "y": 3}}',
}


def answer(client: Any, path: str, case: str, body: bytes | None = None) -> tuple[Any, ...]:
    """The answer to ``BODIES[case]`` (or ``body``) as sent for ``case``: status, media
    type and the JSON (or SVG text) that does not change between runs."""
    media_type = MEDIA_TYPES.get(case, JSON)
    body = BODIES[case] if body is None else body
    headers = {"content-type": media_type} if media_type else {}
    r = client.post(path, content=body, headers=headers)
    if r.headers.get("content-type", "").startswith("image/svg+xml"):
        return r.status_code, r.headers["content-type"], r.text
    data = r.json()
    if isinstance(data, dict):
        data.pop("request_id", None)
        if isinstance(data.get("check"), dict):
            data["check"].pop("elapsed_ms")  # the one field that differs run to run
    return r.status_code, r.headers.get("content-type"), data


@pytest.fixture(scope="module")
def both(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    """A client whose compute routes call their endpoints straight, and one whose routes
    leave every body to FastAPI's handler."""
    from tests.conftest import _client, make_settings

    direct = _client(make_settings())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(offload, "direct_call", lambda _route: None)
        handled = _client(make_settings())
        for path in PATHS + PICTURES:  # FastAPI builds an included route's handler on
            handled.post(path, json={})  # its first match
    return direct, handled


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(BODIES))
def test_the_direct_call_answers_as_fastapis_handler(both, path, case):
    direct, handled = both
    assert answer(direct, path, case) == answer(handled, path, case)


@pytest.mark.parametrize("path", PICTURES)
@pytest.mark.parametrize("case", ["drawn", *PICTURE_CASES])
def test_a_picture_is_drawn_as_fastapis_handler_draws_it(both, path, case):
    direct, handled = both
    body = DRAWN[path] if case == "drawn" else None
    got = answer(direct, path, case, body)
    assert got == answer(handled, path, case, body)
    if case == "drawn":
        assert got[0] == 200 and got[1].startswith("image/svg+xml"), got[:2]


def test_the_cases_cover_answers_and_refusals(both):
    direct, _ = both
    statuses = {case: answer(direct, "/v1/gradient", case)[0] for case in BODIES}
    assert statuses["seed graph"] == statuses["expression"] == statuses["large"] == 200
    assert statuses["json+ media type"] == 200
    assert statuses["malformed"] == 400 and statuses["invalid fields"] == 422
    assert statuses["past float64"] == statuses["large, invalid"] == 422
    assert statuses["not json"] == 415 and statuses["empty body"] == 422


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every request whose parameters FastAPI's handler solved."""
    import fastapi.routing

    paths: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def spy(*, request: Any, **kwargs: Any) -> Any:
        paths.append(request.url.path)
        return await solve(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", spy)
    return paths


def test_fastapis_handler_is_asked_only_where_the_call_is_not_direct(both, solved):
    direct, handled = both
    for client in (direct, handled):
        for path in PATHS:
            r = client.post(path, json={**SEED, "order": 2, "sources": ["x"]}
                            if path.endswith("derivative") else SEED)
            assert r.status_code == 200, r.text
    assert solved == PATHS, "the direct client's compute routes never ask FastAPI's handler"
    solved.clear()
    r = direct.post("/v1/graphs", json={"graph": SEED["graph"]})  # it takes a dependency
    assert r.status_code in (200, 201) and solved == ["/v1/graphs"]


def test_a_request_opentelemetry_follows_goes_to_fastapis_handler(client, solved, monkeypatch):
    """FastAPI's handler reports the body and its operations to the tracing hooks."""
    import fastapi.telemetry

    monkeypatch.setattr(fastapi.telemetry, "get_telemetry_data", lambda: object())
    assert client.post("/v1/gradient", json=SEED).status_code == 200
    assert solved == ["/v1/gradient"]


def test_a_dependency_of_the_including_router_still_runs() -> None:
    """Included with a dependency, a compute route is not called straight: it runs."""
    from tests.conftest import _client, make_settings

    def refuse() -> None:
        raise HTTPException(status_code=418, detail="refused by the including router")

    client = _client(make_settings())
    client.app.include_router(compute.router, prefix="/guarded", dependencies=[Depends(refuse)])
    r = client.post("/guarded/v1/gradient", json=SEED)
    assert r.status_code == 418, r.text
    assert client.post("/v1/gradient", json=SEED).status_code == 200


def test_only_routes_of_a_body_and_the_request_are_called_straight() -> None:
    routes = [r for r in [*compute.router.routes, *pictures.router.routes]
              if isinstance(r, APIRoute) and "POST" in r.methods]
    assert sorted(r.path for r in routes) == sorted(PATHS + PICTURES)
    assert all(offload.direct_call(r) is not None for r in routes)
    registering = next(r for r in graphs.router.routes if "POST" in r.methods)
    assert offload.direct_call(registering) is None  # a sync def with a dependency

    async def takes_more(request: compute.ComputeRequest, http: Request, limit: int = 3
                         ) -> Any:
        return None

    async def needs_one(request: compute.ComputeRequest, x: int = Depends(lambda: 1)) -> Any:
        return None

    def blocking(request: compute.ComputeRequest, http: Request) -> Any:
        return None

    for endpoint in (takes_more, needs_one, blocking):
        route = offload.OffloadedBodyRoute("/x", endpoint, methods=["POST"])
        assert offload.direct_call(route) is None, endpoint.__name__
