"""A live service for the client's tests, on a free loopback port.

The service runs from its own environment, not the client's: ``DERIV_SERVER_PYTHON``
names its interpreter (default: the repository's ``.venv``). ``DERIV_TEST_URL`` points
the tests at a service already running instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_python() -> str:
    python = os.environ.get("DERIV_SERVER_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    if not Path(python).exists():
        pytest.fail(f"no service interpreter at {python}: set DERIV_SERVER_PYTHON")
    return python


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("DERIV_TEST_URL"):
        yield os.environ["DERIV_TEST_URL"].rstrip("/")
        return
    port = _free_port()
    log = tmp_path_factory.mktemp("service") / "service.log"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_server_python(), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the service exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the service did not answer /healthz within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
