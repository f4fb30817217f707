"""The nginx gateway (deploy/nginx/nginx.conf) in front of two real uvicorn replicas.

Everything listens on 127.0.0.1 only and is stopped at the end of each fixture.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import httpx
import pytest

from app.examples import SEED_3
from tests.gateway.stack import Stack, nginx_binary

NGINX = nginx_binary()
pytestmark = [
    pytest.mark.gateway,
    pytest.mark.timeout(60),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
]

BODY_LIMIT = 2 * 1024 * 1024  # the app's DERIV_MAX_BODY_BYTES default


@pytest.fixture(scope="module")
def stack():
    stack = Stack()
    try:
        yield stack.start(NGINX)
    finally:
        stack.close()


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=stack.base, timeout=20) as client:
        yield client


def test_docs_and_openapi_live_under_the_prefix(client):
    spec = client.get("/derive/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["servers"][0]["url"] == "/derive"

    docs = client.get("/derive/docs")
    assert docs.status_code == 200
    assert "'/derive/openapi.json'" in docs.text or '"/derive/openapi.json"' in docs.text
    assets = re.findall(r"""["'](/[^"']+\.(?:js|css))["']""", docs.text)
    assert assets, "the docs page links no script or style"
    for url in assets:
        assert url.startswith("/derive/"), url
        assert client.get(url).status_code == 200, url


def test_bare_prefix_redirects(client):
    response = client.get("/derive", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"].endswith("/derive/")


def test_gradient_through_the_gateway(client):
    # "Try it out" sends to servers[0].url + path: /derive/v1/gradient.
    response = client.post("/derive/v1/gradient", json=SEED_3)
    assert response.status_code == 200, response.text
    assert response.json()["gradients"] == {"x": 4.0, "y": 27.0}


def test_request_ids_are_passed_or_made(stack, client):
    given = client.get("/derive/healthz", headers={"X-Request-ID": "client-id-42"})
    assert given.headers["x-request-id"] == "client-id-42"
    made = client.get("/derive/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    junk = client.get("/derive/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", junk.headers["x-request-id"])
    logged = {entry["request_id"] for entry in stack.access_log()}
    assert {"client-id-42", made.headers["x-request-id"]} <= logged


def test_requests_alternate_between_replicas(stack, client):
    ids = [f"alternate-{i}" for i in range(8)]
    for rid in ids:
        response = client.post("/derive/v1/gradient", json=SEED_3, headers={"X-Request-ID": rid})
        assert response.status_code == 200
    # nginx writes a log line just after the response leaves, so the last may lag a moment
    served: dict[str, str] = {}
    deadline = time.monotonic() + 5
    while not set(ids) <= served.keys() and time.monotonic() < deadline:
        served = {e["request_id"]: stack.replica_of(e["upstream"]) for e in stack.access_log()}
        time.sleep(0.05)
    order = [served[rid] for rid in ids]
    print("replica per request:", " ".join(order))  # noqa: T201
    assert set(order) == {"a", "b"}
    assert all(x != y for x, y in zip(order, order[1:], strict=False)), order
    # Each replica's own uvicorn access log saw its share.
    for name in ("a", "b"):
        log = (stack.prefix / "logs" / f"{name}.out").read_text()
        assert log.count("POST /v1/gradient") >= order.count(name)


def test_over_limit_body_is_a_clean_413(client):
    body = b'{"expression": "x", "pad": "' + b"x" * BODY_LIMIT + b'"}'
    response = client.post(
        "/derive/v1/gradient", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 413
    assert problem["type"].endswith("body-too-large")
    assert "x-request-id" in response.headers


def test_killing_a_replica_mid_load_loses_at_most_a_handful():
    stack = Stack()
    try:
        stack.start(NGINX)
        results = run_load_and_kill(stack, threads=4, seconds=6.0, kill_at=2.0)
    finally:
        stack.close()
    failed = [r for r in results if r[1] != 200]
    after = [r for r in results if r[0] > 2.5]
    print(  # noqa: T201
        f"under load, replica a killed at 2.0 s: {len(results)} requests, "
        f"{len(results) - len(failed)} ok, {len(failed)} failed "
        f"({Counter(str(r[1]) for r in failed)}); after 2.5 s: "
        f"{sum(r[1] == 200 for r in after)}/{len(after)} ok"
    )
    assert len(failed) <= 6, failed
    assert after and all(r[1] == 200 for r in after), Counter(r[1] for r in after)


def run_load_and_kill(
    stack: Stack, threads: int, seconds: float, kill_at: float
) -> list[tuple[float, int | str]]:
    """POSTs from ``threads`` clients for ``seconds``; SIGKILLs replica a at ``kill_at``."""
    results: list[tuple[float, int | str]] = []
    lock = threading.Lock()
    start = time.monotonic()

    def worker() -> None:
        with httpx.Client(base_url=stack.base, timeout=10) as client:
            while (now := time.monotonic() - start) < seconds:
                try:
                    status: int | str = client.post("/derive/v1/gradient", json=SEED_3).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    results.append((now, status))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    time.sleep(kill_at)
    stack.procs["a"].kill()
    for thread in pool:
        thread.join(timeout=seconds + 15)
    return results


@pytest.mark.parametrize(
    "path", ["/derive/metrics", "/derive/metrics/", "/derive//metrics", "/derive/%6detrics"]
)
def test_metrics_are_not_served_through_the_gateway(stack, client, path):
    response = client.get(path)
    assert response.status_code == 404, path
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "x-request-id" in response.headers
    assert b"deriv_http_requests_total" not in response.content
    direct = httpx.get(f"http://{stack.replicas['a']}/metrics", timeout=10)
    assert direct.status_code == 200 and "deriv_http_requests_total" in direct.text
