"""What an operator relies on: one JSON log format, the OpenAPI version, CORS off by default."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app import log_format, observability
from app.cors import parse_origins
from app.examples import SEED_3
from tests.gateway.stack import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_version_is_the_package_version(client):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert client.get("/openapi.json").json()["info"]["version"] == project["version"]
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    assert committed["info"]["version"] == project["version"]


def preflight(client, origin: str):
    return client.options("/v1/gradient", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})  # fmt: skip


def test_no_cors_headers_by_default(client):
    r = client.post("/v1/gradient", json=SEED_3, headers={"Origin": "https://a.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in preflight(client, "https://a.example").headers


def test_listed_origins_only(make_client):
    client = make_client(cors_origins="https://a.example, http://localhost:3000")
    ok = preflight(client, "https://a.example")
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://a.example"
    assert "POST" in ok.headers["access-control-allow-methods"]
    r = client.post("/v1/gradient", json=SEED_3, headers={"Origin": "http://localhost:3000"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    other = preflight(client, "https://evil.example")
    assert "access-control-allow-origin" not in other.headers
    # refused as every other error is: a problem, naming what was refused
    assert other.status_code == 400
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("cors-refused")
    assert "Disallowed CORS origin" in other.json()["detail"]
    headers = client.options("/v1/gradient", headers={
        "Origin": "https://a.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-secret"})  # fmt: skip
    assert headers.status_code == 400 and "headers" in headers.json()["detail"]
    assert headers.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "bad",
    [
        "a.example",
        "https://a.example/path",
        "ftp://a.example",
        "https://a.example, javascript:alert(1)",
    ],
)
def test_a_malformed_origin_stops_the_start(bad, make_client):
    with pytest.raises(ValueError, match="DERIV_CORS_ORIGINS"):
        parse_origins(bad)
    with pytest.raises(ValueError, match="DERIV_CORS_ORIGINS"):
        make_client(cors_origins=bad)


def test_formatter_writes_level_iso_time_and_message():
    record = logging.LogRecord(
        "app.store", logging.WARNING, __file__, 1, "store %s", ("down",), None
    )
    line = json.loads(log_format.JsonFormatter().format(record))
    assert line["level"] == "warning" and line["message"] == "store down"
    assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0
    request = logging.LogRecord(
        "app.requests", logging.INFO, __file__, 1, '{"request_id":"r1","status":200}', (), None
    )
    line = json.loads(log_format.JsonFormatter().format(request))
    assert (line["level"], line["request_id"], line["status"]) == ("info", "r1", 200)


@pytest.mark.parametrize(
    "created",
    [1796489568.0, 1796489568.0005, 1796489568.9995, 1796489568.9999996, 1.5e9 + 0.4995,
     1796489568.123456],
)
def test_a_request_line_written_straight_is_the_line_its_record_makes(created):
    """The request log's own handler writes a line without a LogRecord (the hot path);
    it must be the line the formatter makes of the record the logger would get."""
    fields = {"ts": round(created, 3), "request_id": "r1", "method": "POST",
              "path": "/v1/gr\u00e4dient\u2028", "endpoint": "/v1/gradient", "status": 200,
              "duration_ms": 0.5, "nodes": 5, "check": {"method": "none", "status": "skipped"}}
    handler = log_format.RequestLogHandler()
    handler.stream = io.StringIO()
    assert handler.write_line(created, fields)
    straight = handler.stream.getvalue()
    record = logging.LogRecord("app.requests", logging.INFO, __file__, 0,
                               observability.json_line(fields), (), None)
    record.created = created
    assert straight == log_format.JsonFormatter().format(record) + "\n"
    assert straight.isascii() and len(straight.splitlines()) == 1
    line = json.loads(straight)
    assert line["time"] == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert {k: line[k] for k in fields} == fields


def test_a_request_line_that_cannot_be_written_goes_to_logging():
    handler = log_format.RequestLogHandler()
    handler.stream = io.StringIO()
    handler.stream.close()
    assert not handler.write_line(time.time(), {"request_id": "r1"})


def test_a_request_line_at_another_level_keeps_its_level():
    record = logging.LogRecord("app.requests", logging.WARNING, __file__, 0,
                               '{"request_id":"r1","status":200}', (), None)
    line = json.loads(log_format.JsonFormatter().format(record))
    assert (line["level"], line["request_id"]) == ("warning", "r1")


def test_a_line_written_but_not_flushed_is_reported_once_not_written_again(monkeypatch):
    class Unflushable(io.StringIO):
        def flush(self):
            raise BlockingIOError("the pipe is full")

    reported = []
    handler = log_format.RequestLogHandler()
    handler.stream = Unflushable()
    monkeypatch.setattr(handler, "handleError", reported.append)
    assert handler.write_line(time.time(), {"request_id": "r1"})
    assert len(handler.stream.getvalue().splitlines()) == 1 and len(reported) == 1


def test_the_line_goes_through_logging_when_the_host_wants_it_elsewhere(monkeypatch):
    """Propagation on, another formatter, a filter: the handler alone would not say what
    logging would, so records take logging's own path."""
    own = log_format.RequestLogHandler()
    logger = logging.getLogger("app.requests")
    monkeypatch.setattr(observability, "_own_handler", own)
    monkeypatch.setattr(logger, "handlers", [own])
    monkeypatch.setattr(logger, "propagate", False)
    assert observability._direct_handler() is own
    monkeypatch.setattr(logger, "propagate", True)
    assert observability._direct_handler() is None
    monkeypatch.setattr(logger, "propagate", False)
    own.setFormatter(logging.Formatter("%(message)s"))
    assert observability._direct_handler() is None
    own.setFormatter(log_format.JsonFormatter())
    own.addFilter(logging.Filter("nothing"))
    assert observability._direct_handler() is None


def test_a_live_server_writes_only_json_lines_access_log_included(tmp_path):
    port = free_port()
    out = (tmp_path / "server.log").open("wb")
    env = {**os.environ, "DERIV_SYMPY_WORKERS": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, time.monotonic() + 30)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/gradient",
            json=SEED_3,
            headers={"X-Request-ID": "json-log-1"},
        )
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        out.close()
    lines = [json.loads(x) for x in (tmp_path / "server.log").read_text().splitlines() if x]
    assert all({"level", "time", "logger"} <= line.keys() for line in lines), lines
    mine = [line for line in lines if line.get("request_id") == "json-log-1"]
    loggers = {line["logger"] for line in mine}
    assert loggers == {"app.requests", "uvicorn.access"}, mine
    assert any("uvicorn.error" == line["logger"] for line in lines)  # start-up lines too
