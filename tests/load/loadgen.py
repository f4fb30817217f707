"""A bounded HTTP/1.1 load generator on asyncio streams, and the request mix it sends.

Plain keep-alive sockets instead of an HTTP library: on two cores the generator shares
the CPU with nginx and both replicas, and a raw client costs a few microseconds a
request where httpx costs a millisecond. Every run is bounded in requests and in time,
and the target must be a loopback address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from app.examples import SEED_3


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: ``expect`` is its status (200, or the 4xx of a bad one)."""

    name: str
    method: str
    path: str
    body: bytes
    expect: int
    weight: int
    content_type: str = "application/json"

    @property
    def bad(self) -> bool:
        return self.expect >= 400


@dataclass
class Outcome:
    kind: str
    status: int  # 0: no response (connection failed or closed)
    seconds: float
    problem: bool  # an application/problem+json body with a `type`
    error: str = ""


def _graph(*nodes: dict) -> dict:
    return {"graph": {"nodes": list(nodes)}}


def _chain(links: int, size: int) -> dict:
    ops = ("sin", "tanh", "softplus")
    nodes = [{"id": "x", "op": "variable", "value": [0.1 * (i % 7) for i in range(size)]}]
    nodes += [{"id": f"n{i}", "op": ops[i % 3], "inputs": [f"n{i - 1}" if i > 1 else "x"]}
              for i in range(1, links)]  # fmt: skip
    nodes.append({"id": "s", "op": "sum", "inputs": [nodes[-1]["id"]]})
    return _graph(*nodes)




def mix(prefix: str = "") -> list[Kind]:
    """Small gradients, Hessians, tensors, larger graphs, and a sprinkle of bad requests."""

    def kind(name: str, path: str, body: object, expect: int = 200, weight: int = 1) -> Kind:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Kind(name, "POST", prefix + path, data, expect, weight)

    expr = {"expression": "x**3*y + sin(x*y)", "values": {"x": 0.5, "y": 1.5}}
    tensor = {"expression": "tanh(x) @ w", "values": {"x": [[0.5, -1.0]], "w": [[1.0], [2.0]]}}
    cycle = _graph(
        {"id": "a", "op": "sin", "inputs": ["b"]}, {"id": "b", "op": "cos", "inputs": ["a"]}
    )  # noqa: E501
    good = [
        kind("gradient seed (sympy check)", "/v1/gradient", SEED_3, weight=30),
        kind("gradient seed (no check)", "/v1/gradient", {**SEED_3, "check": "none"}, weight=12),
        kind("hessian expression", "/v1/hessian", expr, weight=14),
        kind("gradient tensors", "/v1/gradient", tensor, weight=10),
        kind("evaluate expression", "/v1/evaluate", expr, weight=6),
        kind("jacobian tensors", "/v1/jacobian", {**tensor, "check": "none"}, weight=5),
        kind("gradient 100 nodes x 64", "/v1/gradient", {**_chain(100, 64), "check": "none"},
             weight=5),
        kind("gradient 300 nodes x 256", "/v1/gradient", {**_chain(300, 256), "check": "none"},
             weight=2),
        kind("gradient seed at 100 points", "/v1/gradient",
             {**SEED_3, "points": {"x": [0.01 * i for i in range(100)], "y": [1.5] * 100}},
             weight=3),
        kind("sparse hessian 1001", "/v1/hessian",
             {**_graph({"id": "x", "op": "variable", "value": [0.5] * 1001},
                       {"id": "e", "op": "exp", "inputs": ["x"]},
                       {"id": "s", "op": "sum", "inputs": ["e"]}), "check": "none"},
             weight=2),
    ]  # fmt: skip
    bad = [
        kind("bad: malformed json", "/v1/gradient", b'{"graph": ', expect=400),
        kind("bad: unknown op", "/v1/gradient",
             _graph({"id": "x", "op": "frobnicate", "inputs": []}), expect=422),
        kind("bad: cycle", "/v1/gradient", cycle, expect=422),
        kind("bad: unsafe expression", "/v1/gradient",
             {"expression": "__import__('os').getcwd()"}, expect=422),
        kind("bad: dense hessian too large", "/v1/hessian",
             {**_graph({"id": "x", "op": "variable", "value": [0.5] * 1001},
                       {"id": "s", "op": "sum", "inputs": ["x"]}), "format": "dense"},
             expect=422),
        Kind("bad: wrong media type", "POST", prefix + "/v1/gradient", b"x=1", 415, 1,
             "application/x-www-form-urlencoded"),
        Kind("bad: no such endpoint", "GET", prefix + "/v1/nothing-here", b"", 404, 1),
    ]  # fmt: skip
    return good + bad


# ------------------------------------------------------------------ the client


def _request_bytes(kind: Kind, host: str) -> bytes:
    head = f"{kind.method} {kind.path} HTTP/1.1\r\nHost: {host}\r\n"
    if kind.method != "GET":
        head += f"Content-Type: {kind.content_type}\r\nContent-Length: {len(kind.body)}\r\n"
    return (head + "\r\n").encode() + (kind.body if kind.method != "GET" else b"")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
            del body[-2:]
        return status, headers, bytes(body)
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


def _is_problem(headers: dict[str, str], body: bytes) -> bool:
    if not headers.get("content-type", "").startswith("application/problem+json"):
        return False
    try:
        return isinstance(json.loads(body).get("type"), str)
    except ValueError:
        return False


@dataclass
class Load:
    """``total`` requests from ``connections`` keep-alive connections, for at most ``seconds``."""

    base: str
    kinds: list[Kind]
    total: int
    connections: int = 16
    seconds: float = 60.0
    seed: int = 20250101
    on_progress: Callable[[int], None] | None = None  # called every `progress_every` requests
    progress_every: int = 1000
    outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        url = urlsplit(self.base)
        host = url.hostname or ""
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"load tests only target loopback addresses, not {host}")
        self.host, self.port = host, url.port or 80
        rng = random.Random(self.seed)
        weights = [k.weight for k in self.kinds]
        self.plan = rng.choices(range(len(self.kinds)), weights=weights, k=self.total)
        self.wire = [_request_bytes(k, f"{host}:{self.port}") for k in self.kinds]

    def run(self) -> Load:
        asyncio.run(self._run())
        return self

    async def _run(self) -> None:
        self.next = 0
        self.deadline = time.monotonic() + self.seconds
        start = time.perf_counter()
        await asyncio.gather(*(self._connection() for _ in range(self.connections)))
        self.elapsed = time.perf_counter() - start

    def _take(self) -> int | None:
        if self.next >= self.total or time.monotonic() >= self.deadline:
            return None
        index = self.plan[self.next]
        self.next += 1
        return index

    async def _connection(self) -> None:
        reader = writer = None
        try:
            while (index := self._take()) is not None:
                kind = self.kinds[index]
                started = time.perf_counter()
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                    writer.write(self.wire[index])
                    status, headers, body = await asyncio.wait_for(_read_response(reader), 30)
                except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    self._record(Outcome(kind.name, 0, time.perf_counter() - started, False,
                                         type(exc).__name__))  # fmt: skip
                    writer = self._close(writer)
                    continue
                problem = status >= 400 and _is_problem(headers, body)
                self._record(Outcome(kind.name, status, time.perf_counter() - started, problem))
                if headers.get("connection", "").lower() == "close":
                    writer = self._close(writer)
        finally:
            self._close(writer)

    @staticmethod
    def _close(writer: asyncio.StreamWriter | None) -> None:
        if writer is not None:
            writer.close()
        return None

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.on_progress and len(self.outcomes) % self.progress_every == 0:
            self.on_progress(len(self.outcomes))


# ------------------------------------------------------------------ the summary


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(load: Load) -> str:
    """Requests/s, p50/p99 and errors per kind of request and overall, as a table."""
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in load.outcomes:
        by_kind[outcome.kind].append(outcome)
    expected = {k.name: k.expect for k in load.kinds}
    rows = [("kind", "n", "p50 ms", "p99 ms", "unexpected")]
    for kind in load.kinds:
        got = by_kind.get(kind.name, [])
        wrong = sum(o.status != expected[kind.name] for o in got)
        ms = [o.seconds * 1000 for o in got]
        rows.append((kind.name, str(len(got)), f"{percentile(ms, .5):.1f}",
                     f"{percentile(ms, .99):.1f}", str(wrong)))  # fmt: skip
    all_ms = [o.seconds * 1000 for o in load.outcomes]
    wrong = sum(o.status != expected[o.kind] for o in load.outcomes)
    rows.append(("all", str(len(all_ms)), f"{percentile(all_ms, .5):.1f}",
                 f"{percentile(all_ms, .99):.1f}", str(wrong)))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in rows]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    rate = len(load.outcomes) / load.elapsed if load.elapsed else 0.0
    lines.append(
        f"{len(load.outcomes)} requests in {load.elapsed:.1f} s over {load.connections} "
        f"connections: {rate:.0f} requests/s"
    )
    return "\n".join(lines)
