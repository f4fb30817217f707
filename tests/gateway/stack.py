"""The gateway stack on loopback: two uvicorn replicas behind deploy/nginx/nginx.conf.

Everything runs in a private temporary prefix (config, logs, pid, temp files), on free
127.0.0.1 ports, and is stopped by ``Stack.close``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf"
PLACEHOLDER = re.compile(r"\$\{(LISTEN|REPLICA_A|REPLICA_B)\}")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(template: str, values: dict[str, str]) -> str:
    """``envsubst`` restricted to the template's own placeholders."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def wait_until_up(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode} before {url}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in time")


@contextmanager
def uvicorn_app(env: Mapping[str, str], log_path: Path
                ) -> Iterator[tuple[str, subprocess.Popen]]:
    """One ``app.main:app`` on a free loopback port: its base URL and process, stopped on exit.

    ``env`` is added to this process's environment, less ``PROMETHEUS_MULTIPROC_DIR`` (the
    server's metrics are its own); stdout and stderr go to ``log_path``.
    """
    port = free_port()
    full = {**os.environ, **env}
    full.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--no-access-log"],
            cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", proc, time.monotonic() + 30)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Stack:
    prefix: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gateway-")))
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    replicas: dict[str, str] = field(default_factory=dict)  # name -> "127.0.0.1:port"
    base: str = ""
    env: dict[str, str] = field(default_factory=dict)  # added to the replicas' environment

    def start(self, nginx: str, timeout: float = 30.0) -> Stack:
        deadline = time.monotonic() + timeout
        self.prefix.chmod(0o755)  # nginx workers (nobody, when run as root) use tmp/
        for sub in ("logs", "tmp"):
            (self.prefix / sub).mkdir()
        env = {**os.environ, "DERIV_TRUST_FORWARDED_PREFIX": "true", **self.env}
        for name in ("a", "b"):
            port = free_port()
            self.replicas[name] = f"127.0.0.1:{port}"
            self.procs[name] = self._spawn(
                name,
                [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                 "--port", str(port), "--timeout-graceful-shutdown", "5"],
                env,
            )  # fmt: skip
        listen = f"127.0.0.1:{free_port()}"
        conf = self.prefix / "nginx.conf"
        upstreams = {"REPLICA_A": self.replicas["a"], "REPLICA_B": self.replicas["b"]}
        conf.write_text(render(TEMPLATE.read_text(), {"LISTEN": listen, **upstreams}))
        self.procs["nginx"] = self._spawn(
            "nginx",
            [nginx, "-p", f"{self.prefix}/", "-c", str(conf), "-g", "daemon off; pid nginx.pid;"],
            os.environ,
        )
        for name, addr in self.replicas.items():
            wait_until_up(f"http://{addr}/healthz", self.procs[name], deadline)
        self.base = f"http://{listen}"
        wait_until_up(f"{self.base}/derive/healthz", self.procs["nginx"], deadline)
        return self

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = (self.prefix / "logs" / f"{name}.out").open("wb")
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def access_log(self) -> list[dict]:
        """The gateway's access log: one JSON object per request, oldest first."""
        path = self.prefix / "logs" / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def replica_of(self, upstream: str) -> str:
        """Which replica an ``$upstream_addr`` names ("a", "b", or several when retried)."""
        names = {addr: name for name, addr in self.replicas.items()}
        return ",".join(names.get(a.strip(), a.strip()) for a in upstream.split(","))

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(self.prefix, ignore_errors=True)
