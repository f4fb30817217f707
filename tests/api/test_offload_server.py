"""On a real server, large bodies arriving together leave ``/healthz`` answering at once.

FastAPI decoded and validated bodies on the event loop: sixteen concurrent 1.6 MB
bodies once left ``/healthz`` unanswered for 8 s. One uvicorn process on a free
loopback port; eight clients post 1.5 MB graphs twice each while ``/healthz`` is
polled, and every poll must be answered within half a second.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.stack import uvicorn_app

pytestmark = pytest.mark.timeout(120)

CLIENTS = 8
ROUNDS = 2
ELEMENTS = 85_000  # a constant of ~1.5 MB of JSON
HEALTHZ_BOUND = 0.5
HEADERS = {"content-type": "application/json"}


def big_body() -> bytes:
    value = [0.1234567890123 + i * 1e-9 for i in range(ELEMENTS)]
    return json.dumps({
        "graph": {"nodes": [{"id": "c", "op": "constant", "value": value},
                            {"id": "s", "op": "sum", "inputs": ["c"]}]},
        "check": "none",
    }).encode()  # fmt: skip


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="offload-"))
    log_path = workdir / "server.log"
    env = {"DERIV_SYMPY_WORKERS": "1", "DERIV_LOG_REQUESTS": "false"}
    try:
        with uvicorn_app(env, log_path) as (url, _proc):
            yield url
    finally:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


def post_bodies(base: str, body: bytes, answers: list[httpx.Response]) -> None:
    with httpx.Client(timeout=60) as client:
        for _ in range(ROUNDS):
            answers.append(client.post(f"{base}/v1/evaluate", content=body, headers=HEADERS))


def test_healthz_answers_while_large_bodies_are_decoded(base):
    body = big_body()
    assert 1.4e6 < len(body) < 1.7e6
    answers: list[httpx.Response] = []
    senders = [threading.Thread(target=post_bodies, args=(base, body, answers))
               for _ in range(CLIENTS)]  # fmt: skip
    latencies: list[float] = []
    with httpx.Client(timeout=30) as probe:
        probe.get(f"{base}/healthz")  # the connection is open before the load starts
        for sender in senders:
            sender.start()
        while any(sender.is_alive() for sender in senders):
            start = time.monotonic()
            assert probe.get(f"{base}/healthz").status_code == 200
            latencies.append(time.monotonic() - start)
            time.sleep(0.02)
    for sender in senders:
        sender.join()
    assert len(answers) == CLIENTS * ROUNDS
    expected = sum(0.1234567890123 + i * 1e-9 for i in range(ELEMENTS))
    for r in answers:
        assert r.status_code == 200, r.text[:300]
        assert r.json()["outputs"]["s"] == pytest.approx(expected)
    assert len(latencies) >= 5, "the load ended before /healthz was probed"
    worst = max(latencies)
    print(f"/healthz under load: {len(latencies)} probes, worst {worst * 1000:.0f} ms")  # noqa: T201
    assert worst < HEALTHZ_BOUND, sorted(latencies)[-5:]


def test_an_invalid_large_body_is_the_usual_422_problem(base):
    nodes = json.loads(big_body())["graph"]["nodes"]
    nodes[1]["inputs"] = [["c"], 2.0]  # a list where a reference or a number goes
    body = json.dumps({"graph": {"nodes": nodes}, "check": "sometimes"}).encode()
    r = httpx.post(f"{base}/v1/evaluate", content=body, headers=HEADERS, timeout=30)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/invalid-request")
    locs = [tuple(e["loc"]) for e in problem["errors"]]
    assert ("body", "check") in locs
    assert any(loc[:5] == ("body", "graph", "nodes", 1, "inputs") for loc in locs), locs
