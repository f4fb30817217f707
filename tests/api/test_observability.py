"""Request ids, the per-request JSON log line and the Prometheus metrics (app.observability)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from tests.api.support import graph, op, var
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
OK = graph(var("x", 3.0), op("y", "pow", "x", 2))
GENERATED = re.compile(r"[0-9a-f]{32}")


class Lines(logging.Handler):
    """Collects the request log's lines, whatever the host's logging configuration."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict] = []
        self.raw: list[str] = []  # the lines as written

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(record.getMessage())
        self.lines.append(json.loads(record.getMessage()))

    def by_id(self, request_id: str) -> dict:
        return next(line for line in self.lines if line["request_id"] == request_id)


@pytest.fixture
def log() -> Iterator[Lines]:
    logger = logging.getLogger("app.requests")
    handler, level = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = "^" + re.escape(f"{name}{{{want}}}" if labels else name) + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# ------------------------------------------------------------------ request ids


def test_a_sane_client_request_id_is_echoed(client):
    r = client.post("/v1/gradient", json=OK, headers={"X-Request-ID": "client:42.a_b-c"})
    assert r.status_code == 200
    assert r.headers.get_list("x-request-id") == ["client:42.a_b-c"]


@pytest.mark.parametrize(
    "given", [None, "", "has space", "x" * 129, 'quote"d', "ünïcode"], ids=repr
)
def test_a_missing_or_insane_request_id_is_replaced(client, given):
    headers = {} if given is None else {"X-Request-ID": given.encode()}
    r = client.get("/healthz", headers=headers)
    assert GENERATED.fullmatch(r.headers["x-request-id"]), r.headers


def test_every_response_gets_a_fresh_id(client):
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/gradient", {"json": {"expression": "x**2"}}, 422),  # engine error
        ("POST", "/v1/gradient", {"json": {"graph": 1}}, 422),  # validation
        (
            "POST",
            "/v1/gradient",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            400,
        ),
        (
            "POST",
            "/v1/gradient",
            {"content": b"{}", "headers": {"content-type": "text/plain"}},
            415,
        ),
        ("GET", "/no/such/path", {}, 404),
        ("DELETE", "/v1/gradient", {}, 405),
    ],
)
def test_problems_quote_the_request_id(client, method, path, kwargs, status):
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": f"quote-{status}"}
    r = client.request(method, path, headers=headers, **kwargs)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["request_id"] == f"quote-{status}" == r.headers["x-request-id"]


def _failing_app() -> FastAPI:
    app = create_app(make_settings())

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal state")

    return app


def test_a_500_quotes_the_request_id_and_is_counted(log):
    client = TestClient(_failing_app(), raise_server_exceptions=False)
    r = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert r.status_code == 500
    assert r.headers.get_list("x-request-id") == ["boom-1"]
    assert r.json()["request_id"] == "boom-1"
    line = log.by_id("boom-1")
    assert line["status"] == 500 and line["problem"] == "internal-error"
    metrics = client.get("/metrics").text
    assert sample(metrics, "deriv_problems_total", type="internal-error") >= 1


# ------------------------------------------------------------------ the log line


def test_one_json_line_per_request_with_graph_size_and_check(client, log):
    secret = 1234.5678
    body = graph(var("x", secret), op("y", "pow", "x", 2), op("z", "sin", "y"), check="numeric")
    r = client.post("/v1/gradient", json=body, headers={"X-Request-ID": "log-1"})
    assert r.status_code == 200
    lines = [line for line in log.lines if line["request_id"] == "log-1"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "POST" and line["path"] == "/v1/gradient"
    assert line["endpoint"] == "/v1/gradient" and line["status"] == 200
    assert 0 < line["duration_ms"] < 60_000
    assert line["nodes"] == 3
    assert line["check"] == {"method": "numeric", "status": r.json()["check"]["status"]}
    assert str(secret) not in json.dumps(line)  # bodies are never logged


def test_a_problem_is_logged_with_its_type_and_no_body(client, log):
    r = client.post("/v1/gradient", json={"expression": "evil(x)"}, headers={"X-Request-ID": "l2"})
    assert r.status_code == 422
    line = log.by_id("l2")
    assert line["status"] == 422 and line["problem"] == "invalid-expression"
    assert "evil" not in json.dumps(line)


def test_a_path_of_any_characters_is_logged_on_one_ascii_line(log):
    """uvicorn replaces undecodable bytes in a path; an ASGI server that keeps them as lone
    surrogates (surrogateescape) must not break the request's log line."""
    import asyncio

    from app.observability import Observability

    async def answer(scope, receive, send):
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b""}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    paths = {"odd-path": "/v1/\udcff", "line-breaks": "/v1/a\u2028b\u2029c\x85d\u00e9"}
    for request_id, path in paths.items():
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "",
                 "headers": [(b"x-request-id", request_id.encode())]}
        asyncio.run(Observability(answer)(scope, receive, send))
        assert log.by_id(request_id)["path"] == path
    assert [m["status"] for m in sent if "status" in m] == [404, 404]
    # a path in other characters is written escaped: one ASCII line, whatever reads it
    raw = [r for r in log.raw if "line-breaks" in r]
    assert len(raw) == 1 and raw[0].isascii() and len(raw[0].splitlines()) == 1


def test_the_log_can_be_turned_off(make_client, log):
    quiet = make_client(log_requests=False)
    quiet.get("/healthz", headers={"X-Request-ID": "quiet-1"})
    assert not [line for line in log.lines if line["request_id"] == "quiet-1"]


# ------------------------------------------------------------------ /metrics


def test_metrics_count_requests_by_route_template(client):
    before = client.get("/metrics").text
    client.post("/v1/gradient", json=OK)
    client.get("/v1/graphs/g_" + "0" * 64)
    client.get("/v1/graphs/g_" + "1" * 64)
    client.get("/not/a/route/123")
    client.request("BREW", "/healthz")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    after = r.text

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    req = "deriv_http_requests_total"
    assert delta(req, endpoint="/v1/gradient", method="POST", status="200") == 1
    assert delta(req, endpoint="/v1/graphs/{graph_id}", method="GET", status="404") == 2
    assert delta(req, endpoint="unmatched", method="GET", status="404") == 1
    assert delta(req, endpoint="/healthz", method="other", status="405") == 1
    assert "/not/a/route" not in after and "g_000" not in after  # raw paths never labels
    hist = "deriv_http_request_duration_seconds_count"
    assert delta(hist, endpoint="/v1/gradient") == 1
    assert delta("deriv_problems_total", type="graph-not-found") == 2
    assert delta("deriv_graph_nodes_count") == 1
    assert sample(after, "deriv_http_requests_in_flight") == 1  # this scrape


def test_metrics_count_check_outcomes(client):
    before = client.get("/metrics").text
    client.post("/v1/gradient", json={**OK, "check": "none"})
    client.post("/v1/gradient", json={**OK, "check": "numeric"})
    after = client.get("/metrics").text
    for method, status in (("none", "skipped"), ("numeric", "agree")):
        labels = {"method": method, "status": status}
        assert (
            sample(after, "deriv_checks_total", **labels)
            - sample(before, "deriv_checks_total", **labels)
            == 1
        )


def test_a_guard_refusal_is_counted_under_its_endpoint(client):
    before = client.get("/metrics").text
    client.post("/v1/hessian", content=b"x", headers={"content-type": "text/csv"})
    after = client.get("/metrics").text
    labels = {"endpoint": "/v1/hessian", "method": "POST", "status": "415"}
    name = "deriv_http_requests_total"
    assert sample(after, name, **labels) - sample(before, name, **labels) == 1


def test_metrics_are_not_part_of_the_api_contract(client):
    assert "/metrics" not in client.app.openapi()["paths"]


def test_multiprocess_mode_merges_the_workers_files(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, values live in files there and /metrics merges them."""
    script = textwrap.dedent(
        """
        from fastapi.testclient import TestClient
        from app.main import create_app
        from app.settings import Settings
        c = TestClient(create_app(Settings(log_requests=False)))  # no lifespan: no SymPy
        for _ in range(3):
            assert c.get("/healthz").status_code == 200
        print(c.get("/metrics").text)
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=60,
        )
        for _ in range(2)
    ]  # fmt: skip
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert any(p.name.startswith("counter_") for p in (tmp_path / "metrics").iterdir())
    labels = {"endpoint": "/healthz", "method": "GET", "status": "200"}
    first = sample(runs[0].stdout, "deriv_http_requests_total", **labels)
    second = sample(runs[1].stdout, "deriv_http_requests_total", **labels)
    assert (first, second) == (3, 6)  # the second process sees the first one's counts too
    # A process that has exited no longer counts as in flight.
    assert sample(runs[1].stdout, "deriv_http_requests_in_flight") == 1
