"""Timing harness shared by the benchmarks: interleaved runs, tables, ratios, targets.

Benchmarks run on shared, noisy machines, so a figure alone means little. Every
comparison here times its competitors in the same run, interleaved round by
round, and reports ratios of their medians (and best times) rather than
absolute numbers. Torch and JAX are optional: a missing one is reported as
"skipped", never an error.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the project, where `app` and `bench` import from
# A pause before each timed block of short calls: the previous competitor's worker threads
# (PyTorch's OpenMP pool, XLA's) spin for a while after their last call, and on a 2-core
# machine they would run on the next competitor's clock (a server in another process).
SETTLE_SECONDS = 0.05


def optional(module: str) -> Any | None:
    """Import ``module`` if it is installed; None otherwise."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def skipped(module: str) -> str:
    return f"skipped ({module} not installed)"


# ------------------------------------------------------------------ the machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine() -> list[tuple[str, str]]:
    """What the figures were measured on: CPU, cores, load, library versions, BLAS knobs."""
    rows = [
        ("cpu", cpu_model()),
        ("cores", f"{usable_cores()} usable of {os.cpu_count()}"),
        ("load average", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    for name in ("numpy", "torch", "jax", "fastapi", "pydantic", "uvicorn"):
        mod = optional(name)
        rows.append((name, getattr(mod, "__version__", "?") if mod else "not installed"))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS"):
        if var in os.environ:
            rows.append((var, os.environ[var]))
    return rows


def print_machine() -> None:
    """The machine table, once the process's allocator is set up as the service's
    (``app.memory``): what the in-process parts time is the engine as a server runs it."""
    from app.memory import tune_allocator

    tuned = tune_allocator()
    rows = [*machine(), ("allocator", "the service's (app.memory)" if tuned else "the system's")]
    print_table(["machine", ""], [list(r) for r in rows])


# ------------------------------------------------------------------ timing


@dataclass
class Timings:
    """Seconds per run of one competitor, over interleaved rounds."""

    name: str
    runs: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def interleaved(
    competitors: dict[str, Callable[[], Any]],
    rounds: int = 5,
    warmup: int = 1,
    collect: bool = True,
) -> dict[str, Timings]:
    """Time each competitor once per round, in a rotating order, after ``warmup`` rounds.

    Interleaving spreads the machine's load changes over every competitor alike.
    ``gc.collect()`` before each timed call makes each start from the same heap,
    so one competitor's garbage is not collected on another's clock.
    """
    names = list(competitors)
    out = {n: Timings(n) for n in names}
    for r in range(warmup + rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            if collect:
                gc.collect()
            t0 = time.perf_counter()
            competitors[n]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                out[n].runs.append(dt)
    return out


def per_call(fn: Callable[[], Any], min_time: float = 0.2) -> Callable[[], float]:
    """A competitor that loops ``fn`` for about ``min_time`` and returns seconds per call
    (for calls too short to time one at a time)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time / 10:
            break
        n *= 2
    reps = max(1, int(n * 10))

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    return run


def interleaved_per_call(
    competitors: dict[str, Callable[[], Any]], rounds: int = 5, min_time: float = 0.2
) -> dict[str, Timings]:
    """As ``interleaved``, for short calls: each round times a loop, recorded per call."""
    loops = {n: per_call(f, min_time) for n, f in competitors.items()}
    names = list(loops)
    out = {n: Timings(n) for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            gc.collect()
            time.sleep(SETTLE_SECONDS)
            out[n].runs.append(loops[n]())
    return out


# ------------------------------------------------------------------ formatting


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    raise AssertionError


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.3f}x" if r < 10 else f"{r:.1f}x"


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """A plain aligned text table (the first column left-aligned, the rest right)."""
    n = len(header)
    cells = [[str(c) for c in header]] + [[str(c) for c in row][:n] for row in rows]
    cells = [r + [""] * (n - len(r)) for r in cells]
    widths = [max(len(r[i]) for r in cells) for i in range(n)]

    def line(r: list[str]) -> str:
        right = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        return "  ".join([r[0].ljust(widths[0]), *right]).rstrip()

    if title:
        print(f"\n== {title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))
    sys.stdout.flush()


# ------------------------------------------------------------------ targets


@dataclass
class Target:
    """One target from the issues: a measured value against a bound (lower is better
    unless ``higher_is_better``). ``value`` None means the target could not be measured."""

    name: str
    value: float | None
    bound: float | None  # None: reported for information, no bound
    unit: str = "x"
    higher_is_better: bool = False
    detail: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or self.bound is None:
            return None
        return self.value >= self.bound if self.higher_is_better else self.value <= self.bound

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        if self.bound is None:
            return "info"
        return "PASS" if self.met else "MISS"

    def row(self) -> list[str]:
        sign = ">=" if self.higher_is_better else "<="
        value = "-" if self.value is None else self._fmt(self.value)
        bound = "-" if self.bound is None else f"{sign} {self._fmt(self.bound)}"
        return [self.name, value, bound, self.verdict, self.detail]

    def _fmt(self, v: float) -> str:
        return fmt_ratio(v) if self.unit == "x" else f"{v:.4g} {self.unit}"


def print_targets(targets: Sequence[Target], title: str = "targets") -> None:
    print_table(["target", "measured", "bound", "verdict", "detail"],
                [t.row() for t in targets], title)


# ------------------------------------------------------------------ servers and load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: str, ready_path: str = "/healthz", timeout: float = 60.0,
          env: dict[str, str] | None = None, loop: str = "uvloop", http: str = "httptools"
          ) -> Iterator[str]:
    """Run ``uvicorn app`` (one worker, uvloop and httptools unless told) on a free loopback
    port, with ``env`` added to the environment (settings); yield its base URL once
    ``ready_path`` answers, stop it afterwards."""
    import httpx

    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--loop", loop, "--http", http, "--log-level", "warning",
         "--no-access-log"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    SERVER_PIDS[url] = proc.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{app} exited: {log.read().decode(errors='replace')}")
            try:
                if httpx.get(url + ready_path, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not answer {ready_path} in {timeout} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_alone(doc: str, run: Callable[..., list[Target]], argv: list[str] | None = None,
              size: tuple[str, int] | None = None) -> int:
    """``python -m bench.<part> [--quick] [--<size> N]``: a part's own command line, and its
    exit status (1 when a target with a bound is missed). ``size`` names the one number the
    part also takes (``("--nodes", 100_002)``), passed to ``run`` after ``quick``."""
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    if size is not None:
        p.add_argument(size[0], type=int, default=size[1])
    args = p.parse_args(argv)
    print_machine()
    extra = () if size is None else (getattr(args, size[0].lstrip("-").replace("-", "_")),)
    targets = run(args.quick, *extra)
    print_targets(targets)
    return 0 if all(t.met is not False for t in targets) else 1


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak RSS. VmHWM, where Linux has it: ru_maxrss also counts the
    parent's memory from before ``exec`` (a fork of a large parent inflates it)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if pid != "self":
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# The process behind each URL ``serve`` yields, so a benchmark can read its memory.
SERVER_PIDS: dict[str, int] = {}


def post_bytes(url: str, path: str, body: Any) -> Callable[[], bytes]:
    """A call that POSTs ``body`` to ``url + path`` and returns the response's bytes.

    The request is encoded once, bytes and headers, and written to one kept-alive loopback
    socket; the answer is read with httptools' C parser (the server's own): what is timed
    is the server's work and the loopback, not a client library's (``http.client``
    parses headers in Python, ~0.2 ms a call; httpx adds ~0.5 ms). The bytes stay
    unparsed for the same reason.
    """
    from urllib.parse import urlsplit

    import httptools

    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80
    data = json.dumps(body).encode()
    request = (f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\n"
               f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
               ).encode() + data
    conn: list[socket.socket] = []

    def connect() -> socket.socket:
        for old in conn:
            old.close()
        conn[:] = [socket.create_connection((host, port), timeout=600)]
        conn[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn[0]

    def exchange(sock: socket.socket) -> tuple[int, bytes]:
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        sock.sendall(request)
        while not answer.complete:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            parser.feed_data(chunk)
        return parser.get_status_code(), b"".join(answer.parts)

    def call() -> bytes:
        try:
            status, answer = exchange(conn[0] if conn else connect())
        except (BrokenPipeError, ConnectionResetError):
            # the server closed the idle connection (its keep-alive timeout): open it again
            status, answer = exchange(connect())
        if status != 200:
            raise RuntimeError(f"POST {path}: {status} {answer[:300]!r}")
        return answer

    return call


class _Answer:
    """httptools' callbacks for one response: its body, and whether it is all there."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.complete = False

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


@dataclass
class Load:
    """One load run: requests per second and mean latency, with failures counted."""

    rps: float
    latency_s: float
    requests: int
    failures: int
    tool: str


_WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[BODY]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "failures": %d, ' ..
    '"latency_mean_us": %f}\n', summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout, latency.mean))
end
"""


def post_load(url: str, body: dict[str, Any], seconds: float = 5.0,
              connections: int = 4) -> Load:
    """POST ``body`` to ``url`` for ``seconds`` with ``connections`` open: wrk if installed,
    else a bounded httpx/asyncio loop (slower: it measures less of the server's ceiling)."""
    text = json.dumps(body)
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(_WRK_SCRIPT.replace("BODY", text))
        try:
            out = subprocess.run(
                ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", f.name, url],
                capture_output=True, text=True, check=True, timeout=seconds + 60,
            ).stdout
        finally:
            os.unlink(f.name)
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        r = json.loads(line[len("RESULT "):])
        return Load(r["requests"] / (r["duration_us"] / 1e6), r["latency_mean_us"] / 1e6,
                    r["requests"], r["failures"], "wrk")
    return _httpx_load(url, text, seconds, connections)


def _httpx_load(url: str, text: str, seconds: float, connections: int) -> Load:
    import asyncio

    import httpx

    async def main() -> Load:
        lat: list[float] = []
        failures = 0
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections)) as c:
            end = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal failures
                while time.perf_counter() < end:
                    t0 = time.perf_counter()
                    r = await c.post(url, content=text, headers=headers)
                    lat.append(time.perf_counter() - t0)
                    failures += r.status_code != 200

            t0 = time.perf_counter()
            await asyncio.gather(*[worker() for _ in range(connections)])
            wall = time.perf_counter() - t0
        return Load(len(lat) / wall, statistics.fmean(lat), len(lat), failures, "httpx")

    return asyncio.run(main())
