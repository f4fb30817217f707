"""The time budget on a real server: an over-budget request ends with a problem, a client that
hangs up leaves no work running past the budget, and the worker serves the next request.

One uvicorn process on a free loopback port with a short ``DERIV_TIME_BUDGET_SECONDS``;
its request log (stderr) and ``/metrics`` show what happened after the client left.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.gateway.stack import uvicorn_app

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 1.0
# Past the deadline, the engine notices at its next cooperative check: one op later.
GRACE = 1.0
SEED = {"expression": "x**2", "values": {"x": 3.0}}


def heavy_jacobian(links: int = 4000, size: int = 1000) -> dict:
    """A 1000 x 1000 Jacobian through a chain of ``sin``: about 10 s of one vectorised
    reverse sweep, made of many steps, each within every limit (140 KB of body)."""
    nodes = [{"id": "x", "op": "variable", "value": [0.1] * size}]
    nodes += [{"id": f"n{i}", "op": "sin", "inputs": [f"n{i - 1}" if i > 1 else "x"]}
              for i in range(1, links)]  # fmt: skip
    return {"graph": {"nodes": nodes}}


@dataclass
class Server:
    base: str
    proc: subprocess.Popen
    log_path: Path

    def log_line(self, request_id: str) -> dict | None:
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{") and f'"request_id":"{request_id}"' in raw:
                return json.loads(raw)
        return None

    def in_flight(self) -> float:
        text = httpx.get(f"{self.base}/metrics", timeout=5).text
        found = re.search(r"^deriv_http_requests_in_flight (\S+)$", text, re.MULTILINE)
        assert found, text[:500]
        return float(found.group(1)) - 1  # less the scrape itself


# the cost limits raised, as an operator may: the time budget is then what stops work
UNLIMITED = {"DERIV_SYMPY_WORKERS": "1", "DERIV_MAX_WORK": "1e13",
             "DERIV_MAX_REQUEST_BYTES": "1e10", "DERIV_MEMORY_BUDGET_BYTES": "1e11"}


@contextmanager
def serving(env: dict[str, str]) -> Iterator[Server]:
    """A server with ``env`` and the cost limits raised, its log in a temporary folder."""
    workdir = Path(tempfile.mkdtemp(prefix="budget-"))
    log_path = workdir / "server.log"
    try:
        with uvicorn_app({**UNLIMITED, **env}, log_path) as (base, proc):
            yield Server(base, proc, log_path)
    finally:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serving({"DERIV_TIME_BUDGET_SECONDS": str(BUDGET)}) as running:
        yield running


def raw_post(path: str, body: dict, request_id: str) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nX-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode() + data


def wait_for(predicate: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until ``predicate()`` holds (polled every 50 ms), or None if it never did."""
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        if predicate():
            return elapsed
        time.sleep(0.05)
    return None


def assert_the_next_request_is_served(server: Server) -> None:
    """A small request after the heavy ones is answered, right, within two seconds."""
    start = time.monotonic()
    ok = httpx.post(f"{server.base}/v1/gradient", json=SEED, timeout=10)
    assert ok.status_code == 200 and ok.json()["gradients"] == {"x": 6.0}
    assert time.monotonic() - start < 2.0


def test_an_over_budget_request_is_a_problem_and_the_next_is_served(server):
    start = time.monotonic()
    r = httpx.post(f"{server.base}/v1/jacobian", json=heavy_jacobian(), timeout=30)
    took = time.monotonic() - start
    assert r.status_code == 422, r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("time-budget")
    assert took < BUDGET + GRACE + 1.0, took
    assert_the_next_request_is_served(server)


def test_a_client_that_hangs_up_leaves_no_work_past_the_budget(server):
    addr = server.base.removeprefix("http://").split(":")
    sent = time.monotonic()
    with socket.create_connection((addr[0], int(addr[1])), timeout=5) as sock:
        sock.sendall(raw_post("/v1/jacobian", heavy_jacobian(), "hang-up-1"))
        assert wait_for(lambda: server.in_flight() == 1, 2.0) is not None, "never started"
    # The client is gone while the computation runs; the server still answers at once.
    start = time.monotonic()
    assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
    assert time.monotonic() - start < 1.0

    assert wait_for(lambda: server.in_flight() == 0, BUDGET + GRACE + 2.0) is not None
    ended = time.monotonic() - sent
    assert ended < BUDGET + GRACE + 1.0, f"work ran {ended:.2f} s after a {BUDGET} s budget"

    line = wait_for(lambda: server.log_line("hang-up-1") is not None, 2.0)
    assert line is not None, server.log_path.read_text()[-2000:]
    logged = server.log_line("hang-up-1")
    assert logged["status"] == 422 and logged["problem"] == "time-budget", logged
    assert logged["duration_ms"] < (BUDGET + GRACE) * 1000, logged
    print(  # noqa: T201
        f"hung-up request: computation ended {ended:.2f} s after it was sent "
        f"(budget {BUDGET} s, logged {logged['duration_ms']:.0f} ms, status {logged['status']})"
    )

    assert_the_next_request_is_served(server)


def test_many_clients_hanging_up_do_not_pile_up_work(server):
    """Eight hung-up heavy requests at once all end by the budget (they share the CPU)."""
    addr = server.base.removeprefix("http://").split(":")
    socks = []
    try:
        for i in range(8):
            sock = socket.create_connection((addr[0], int(addr[1])), timeout=5)
            sock.sendall(raw_post("/v1/jacobian", heavy_jacobian(), f"pile-{i}"))
            socks.append(sock)
        wait_for(lambda: server.in_flight() >= 1, 2.0)
    finally:
        for sock in socks:
            sock.close()
    assert wait_for(lambda: server.in_flight() == 0, BUDGET + GRACE + 4.0) is not None
    for i in range(8):
        assert wait_for(lambda i=i: server.log_line(f"pile-{i}") is not None, 2.0) is not None
        assert server.log_line(f"pile-{i}")["problem"] == "time-budget"
    ok = httpx.post(f"{server.base}/v1/gradient", json=SEED, timeout=10)
    assert ok.status_code == 200


# ------------------------------------------- a long budget: what stops work is the client

PATIENT = {"DERIV_TIME_BUDGET_SECONDS": "60", "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": "2"}
STOP_SECONDS = 1.5  # the disconnect is polled every 0.25 s, then one op finishes


@pytest.fixture
def patient_server() -> Iterator[Server]:
    """A server whose time budget (60 s) outlasts the test: only cancellation stops work."""
    with serving(PATIENT) as running:
        yield running


def test_a_client_that_hangs_up_stops_its_work_long_before_the_budget(patient_server):
    server = patient_server
    addr = server.base.removeprefix("http://").split(":")
    with socket.create_connection((addr[0], int(addr[1])), timeout=5) as sock:
        sock.sendall(raw_post("/v1/jacobian", heavy_jacobian(), "gone-1"))
        assert wait_for(lambda: server.in_flight() == 1, 2.0) is not None, "never started"
        time.sleep(0.5)
    stopped = wait_for(lambda: server.in_flight() == 0, STOP_SECONDS + 2.0)
    assert stopped is not None and stopped < STOP_SECONDS, stopped
    assert wait_for(lambda: server.log_line("gone-1") is not None, 2.0) is not None
    assert server.log_line("gone-1")["problem"] == "time-budget"
    assert_the_next_request_is_served(server)


def test_sigterm_drains_within_the_grace_period(patient_server):
    """SIGTERM with a computation in flight: uvicorn waits its graceful-shutdown time (2 s
    here), then cancels the request, and the computation stops at its next op."""
    server = patient_server
    addr = server.base.removeprefix("http://").split(":")
    with socket.create_connection((addr[0], int(addr[1])), timeout=5) as sock:
        sock.sendall(raw_post("/v1/jacobian", heavy_jacobian(), "drain-1"))
        assert wait_for(lambda: server.in_flight() == 1, 2.0) is not None, "never started"
        start = time.monotonic()
        server.proc.terminate()
        server.proc.wait(timeout=15)
        took = time.monotonic() - start
    assert took < 2.0 + STOP_SECONDS + 1.0, f"the server took {took:.1f} s to stop"
    # uvicorn re-raises the signal it handled once it has shut down cleanly
    assert server.proc.returncode in (0, -15), server.proc.returncode
    assert "Finished server process" in server.log_path.read_text(errors="replace")
