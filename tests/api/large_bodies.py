"""A server and a large body for the offloaded-decoding tests (tests/api/test_offload_server.py,
tests/load/test_large_bodies.py): one uvicorn process on a free loopback port, and a 1.5 MB
graph with a large constant."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.gateway.stack import uvicorn_app

HEADERS = {"content-type": "application/json"}
ROWS = 39_000  # a constant of 39,000 x 3: ~1.5 MB of JSON


def constant_body() -> tuple[bytes, float]:
    """A graph with a large constant in rows (each row is a list to build and check)."""
    value = [[0.1234567 + i * 1e-9, 0.2345678, 0.3456789] for i in range(ROWS)]
    body = {"graph": {"nodes": [{"id": "c", "op": "constant", "value": value},
                                {"id": "s", "op": "sum", "inputs": ["c"]}]},
            "check": "none"}  # fmt: skip
    return json.dumps(body).encode(), sum(map(sum, value))


@contextmanager
def offload_server() -> Iterator[str]:
    """The server's base URL; its log in a directory removed afterwards."""
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
