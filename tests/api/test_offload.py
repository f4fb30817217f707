"""Large bodies are decoded and validated in a worker thread, with FastAPI's own answers.

Each large body below goes through both paths, off the loop (``app.offload``) and on it
(FastAPI's handler, the offload threshold raised past the body): the responses must be
the same, byte for byte but the request id.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app import offload
from app.routes import compute, graphs
from tests.api.support import graph, op, var

BIG = 100_000  # elements of the padding constant: ~1.9 MB of JSON
HEADERS = {"content-type": "application/json"}


def padded(*nodes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A request whose graph carries a large constant, ahead of ``nodes``."""
    pad = {"id": "pad", "op": "constant", "value": [0.125 + i * 1e-6 for i in range(BIG)]}
    return graph(pad, *nodes, **fields)


VALID = padded(var("x", 3.0), op("y", "pow", "x", 2), op("s", "sum", "pad"), check="none")
INVALID = padded(
    var("x", 3.0),
    {"id": "bad id!", "op": "neg", "inputs": ["x"]},
    {"id": "r", "op": "neg", "inputs": [[[1.0, 2.0], [3.0]]]},  # ragged
    {"id": "z", "op": "neg", "inputs": ["x"], "colour": "red"},  # unknown key
    check="maybe",
    watch_accessed_variables="no",
)
CASES = {
    "valid": json.dumps(VALID).encode(),
    "invalid fields": json.dumps(INVALID).encode(),
    "no computation": json.dumps({"values": {"x": [0.5] * BIG}}).encode(),
    "malformed": json.dumps(VALID).encode()[:-100] + b"}, oops",
    "not an object": json.dumps([0.5] * BIG).encode(),
    "NaN token": json.dumps(VALID).encode().replace(b"0.125,", b"NaN,", 1),
    "not text": json.dumps(VALID).encode().replace(b'"x"', b'"x\xff"', 1),
}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per body decoded by app.offload: whether it ran off the event loop."""
    seen: list[bool] = []
    decode = offload._decode_and_validate

    def spy(field: Any, body: bytes, limits: Any) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(False)
        except RuntimeError:
            seen.append(True)
        return decode(field, body, limits)

    monkeypatch.setattr(offload, "_decode_and_validate", spy)
    return seen


def answer(client, path: str, body: bytes) -> tuple[int, str, dict[str, Any]]:
    r = client.post(path, content=body, headers=HEADERS)
    data = r.json()
    data.pop("request_id", None)
    return r.status_code, r.headers["content-type"], data


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("path", ["/v1/evaluate", "/v1/hessian", "/v1/derivative"])
def test_a_large_body_gets_the_answer_fastapi_gives_on_the_loop(
    make_client, monkeypatch, calls, case, path
):
    client, body = make_client(), CASES[case]
    assert offload.decoded_off_loop(body)
    off_loop = answer(client, path, body)
    assert calls == [True], "decoded in a worker thread"
    monkeypatch.setattr(offload, "decoded_off_loop", lambda _body: False)
    on_loop = answer(client, path, body)
    assert calls == [True], "not offloaded past the threshold"
    assert off_loop == on_loop


def test_the_answers_are_the_expected_ones(make_client, calls):
    client = make_client()
    status, _, body = answer(client, "/v1/evaluate", CASES["valid"])
    assert status == 200
    assert body["outputs"]["s"] == pytest.approx(0.125 * BIG + 1e-6 * BIG * (BIG - 1) / 2)
    status, kind, body = answer(client, "/v1/evaluate", CASES["invalid fields"])
    assert status == 422 and kind.startswith("application/problem+json")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "check") in locs and ("body", "watch_accessed_variables") in locs
    assert ("body", "graph", "nodes", 2, "id") in locs  # after the padding node and x
    # the node list stops at its first invalid node (app.wire.bounded): 3 and 4 are unread
    assert not any(loc[:4] in {("body", "graph", "nodes", 3), ("body", "graph", "nodes", 4)}
                   for loc in locs), locs
    status, _, body = answer(client, "/v1/evaluate", CASES["malformed"])
    assert status == 400 and body["type"].endswith("/malformed-json"), body
    status, _, body = answer(client, "/v1/evaluate", CASES["not text"])  # once a 500
    assert status == 400 and body["detail"] == "There was an error parsing the body", body
    assert calls == [True, True, True, True]


def test_a_small_body_stays_on_the_loop(client, calls):
    r = client.post("/v1/gradient", json=graph(var("x", 3.0), op("y", "pow", "x", 2)))
    assert r.status_code == 200 and r.json()["gradients"] == {"x": 6.0}
    assert calls == []


def test_a_large_graph_registers_off_the_loop_with_the_same_answer(make_client, calls):
    client = make_client()
    body = json.dumps({"graph": VALID["graph"]}).encode()
    r = client.post("/v1/graphs", content=body, headers=HEADERS)
    assert r.status_code == 201 and r.json()["nodes"] == 4, r.text[:300]
    r = client.post("/v1/graphs", content=CASES["invalid fields"], headers=HEADERS)
    assert r.status_code == 422
    assert calls == [True, True]


def test_every_compute_route_takes_its_body_off_the_loop():
    posts = [r for r in [*compute.router.routes, *graphs.router.routes] if "POST" in r.methods]
    assert len(posts) == 6
    for route in posts:
        assert isinstance(route, offload.OffloadedBodyRoute)
        assert offload._body_field(route) is not None, route.path
