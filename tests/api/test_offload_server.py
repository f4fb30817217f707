"""On a real server, a large body decoded off the event loop is refused as FastAPI refuses
it: the usual 422 problem (the latency under load is tests/load/test_large_bodies.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.api.large_bodies import HEADERS, constant_body, offload_server

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with offload_server() as url:
        yield url


def test_an_invalid_large_body_is_the_usual_422_problem(base):
    nodes = json.loads(constant_body()[0])["graph"]["nodes"]
    nodes[1]["inputs"] = [["c"], 2.0]  # a list where a reference or a number goes
    body = json.dumps({"graph": {"nodes": nodes}, "check": "sometimes"}).encode()
    r = httpx.post(f"{base}/v1/evaluate", content=body, headers=HEADERS, timeout=30)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/invalid-request")
    locs = [tuple(e["loc"]) for e in problem["errors"]]
    assert ("body", "check") in locs
    assert any(loc[:5] == ("body", "graph", "nodes", 1, "inputs") for loc in locs), locs
