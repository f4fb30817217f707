"""Request ids, one JSON log line per request, and Prometheus metrics, in one ASGI middleware.

Pure ASGI rather than ``BaseHTTPMiddleware``: it only wraps ``send`` to read the
status and add ``X-Request-ID``, so a request pays a few microseconds, not a
second task and a body copy. What only the engine bridge knows (graph size,
check outcome) and what only the problem handlers know (the problem type) reaches
the log line through ``RequestInfo``, a per-request object in a context variable:
the sync routes run in a threadpool that copies the context, so they see (and
fill in) the same object.

Multi-worker: with ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory, before the
processes start), prometheus-client keeps values in per-process files there and
``/metrics`` merges every worker's; without it, each process reports its own.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.log_format import RequestLogHandler

__all__ = ["CONTENT_TYPE_LATEST", "Observability", "RequestInfo", "render_metrics"]

REQUEST_ID_HEADER = b"x-request-id"
# The same token the gateway accepts (deploy/nginx/nginx.conf), so an id survives both hops.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the endpoint label of a path no route serves: bounded cardinality
MAX_LOGGED_PATH = 256

logger = logging.getLogger("app.requests")

disable_created_metrics()  # the `_created` series double the exposition and serve no alert
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)  # the workers share it; the first one makes it
    # A restarted worker may get its predecessor's pid: start its live gauges from zero,
    # and drop them when it exits, so in-flight counts only running processes.
    _PID = os.getpid()
    prom_multiprocess.mark_process_dead(_PID, MULTIPROC_DIR)
    # Only in this process: a forked child inherits atexit hooks and must not drop ours.
    atexit.register(
        lambda: os.getpid() == _PID and prom_multiprocess.mark_process_dead(_PID, MULTIPROC_DIR)
    )

REQUESTS = Counter(
    "deriv_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "deriv_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge(
    "deriv_http_requests_in_flight",
    "Requests being served now, including this scrape; a request whose client went away "
    "stays here until its computation ends (at the latest by the time budget).",
    multiprocess_mode="livesum",
)
PROBLEMS = Counter(
    "deriv_problems_total", "Problem responses, by the last segment of the type URI.", ["type"]
)
CHECKS = Counter(
    "deriv_checks_total", "Cross-checks of computed derivatives, by method and status.",
    ["method", "status"],
)  # fmt: skip
GRAPH_NODES = Histogram(
    "deriv_graph_nodes",
    "Nodes in the graph of each compute request.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)


_CHILDREN: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


@dataclass(slots=True)
class RequestInfo:
    """What is known about the current request, filled in as it goes through the layers."""

    request_id: str
    nodes: int | None = None
    check_method: str | None = None
    check_status: str | None = None
    problem: str | None = None


_current: ContextVar[RequestInfo | None] = ContextVar("request_info", default=None)


def current() -> RequestInfo | None:
    """The request being served in this context, if any (None outside a request)."""
    return _current.get()


def request_id_headers() -> dict[str, str] | None:
    """``X-Request-ID`` for a response made outside the middleware (the outermost 500)."""
    info = _current.get()
    return None if info is None else {"X-Request-ID": info.request_id}


def note_graph(nodes: int) -> None:
    """The engine bridge built a graph of ``nodes`` nodes for this request: counted once,
    though a request tried inline may build it again in a thread (app.dispatch)."""
    info = _current.get()
    if info is not None:
        if info.nodes is not None:
            return
        info.nodes = nodes
    GRAPH_NODES.observe(nodes)


_CHECK_CHILDREN: dict[tuple[str, str], Counter] = {}


def note_check(method: str, status: str) -> None:
    """The cross-check of this request ran ``method`` with outcome ``status``."""
    child = _CHECK_CHILDREN.get((method, status))
    if child is None:  # labels() takes a lock and validates (~20 µs): once per label pair
        child = _CHECK_CHILDREN[(method, status)] = CHECKS.labels(method, status)
    child.inc()
    info = _current.get()
    if info is not None:
        info.check_method, info.check_status = method, status


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` if it is a sane token, else a fresh random one."""
    for key, value in headers:
        if key == REQUEST_ID_HEADER:
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return os.urandom(16).hex()  # 32 hex digits, the shape of nginx's $request_id


def render_metrics() -> bytes:
    """The Prometheus text exposition: this process's metrics, or every worker's merged."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class Endpoints:
    """Names the route template that served a request: a bounded label, never the raw path."""

    def __init__(self) -> None:
        self.static: frozenset[str] | None = None
        self.mounts: tuple[str, ...] = ()

    def _learn(self, app: object) -> None:
        # The OpenAPI paths, because FastAPI keeps included routers nested in app.routes.
        openapi = getattr(app, "openapi", None)
        try:
            paths = set(openapi().get("paths", {})) if callable(openapi) else set()
        except Exception:  # a label is not worth failing a request over
            paths = set()
        routes = getattr(app, "routes", ())
        paths.update(getattr(r, "path", "") for r in routes)
        self.static = frozenset(p for p in paths if p and "{" not in p)
        self.mounts = tuple(r.path + "/" for r in routes if isinstance(r, Mount) and r.path)

    def of(self, scope: Scope, root: str) -> str:
        """The label of a finished request; ``root`` is its ``root_path`` on arrival."""
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str) and not path.endswith("/{path}"):
            return path or "/"
        if self.static is None:
            self._learn(scope.get("app"))
        # Refused before routing (the body guard), or served by a mount.
        raw: str = scope["path"]
        if root and raw.startswith(root + "/"):
            raw = raw[len(root) :]
        if raw in (self.static or ()):
            return raw
        mount = next((m for m in self.mounts if raw.startswith(m)), None)
        return mount + "{path}" if mount else UNMATCHED


_own_handler: RequestLogHandler | None = None  # install_log_handler's, once installed


def install_log_handler() -> None:
    """Print the request log to stderr when the host configured no logging at all.

    A host that did configure logging (a root handler, or one on this logger) gets the
    records through its own handlers instead.
    """
    if logger.handlers or logging.getLogger().handlers:
        return
    from app.log_format import RequestLogHandler  # level and ISO time around the line

    global _own_handler
    handler = _own_handler = RequestLogHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class Observability:
    """Request id in and out, per-request metrics, and one JSON log line per request."""

    def __init__(self, app: ASGIApp, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests
        self.endpoints = Endpoints()
        if log_requests:
            install_log_handler()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root: str = scope.get("root_path", "")  # a mount below changes the scope's
        info = RequestInfo(request_id_from(scope["headers"]))
        _current.set(info)  # not reset: the outermost 500 handler runs after this returns
        header = (REQUEST_ID_HEADER, info.request_id.encode("ascii"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not status:  # the outermost handler answers a 500 problem after us
                status, info.problem = 500, "internal-error"
            raise
        finally:
            IN_FLIGHT.dec()
            seconds = time.perf_counter() - started
            self._finish(scope, info, self.endpoints.of(scope, root), status or 499, seconds)

    def _finish(
        self, scope: Scope, info: RequestInfo, endpoint: str, status: int, seconds: float
    ) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        key = (endpoint, method, status)
        children = _CHILDREN.get(key)
        if children is None:  # labels() takes a lock and validates: once per label set
            children = _CHILDREN[key] = (
                REQUESTS.labels(endpoint, method, str(status)),
                LATENCY.labels(endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)
        if info.problem is not None:
            PROBLEMS.labels(info.problem).inc()
        if self.log_requests and logger.isEnabledFor(logging.INFO):
            now = time.time()
            fields = _log_fields(scope, info, endpoint, status, seconds, now)
            direct = _direct_handler()
            if direct is None or not direct.write_line(now, fields):
                # makeRecord + handle: the record without logger.info's stack walk
                line = json_line(fields)
                logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line,
                                                (), None))


def _direct_handler() -> RequestLogHandler | None:
    """The request log's own handler while a record would reach it alone, unfiltered, in
    its own format (app.log_format.RequestLogHandler.write_line); else None."""
    handlers = logger.handlers
    if len(handlers) != 1 or logger.filters or logger.disabled or logger.propagate:
        return None
    if handlers[0] is not _own_handler or not _own_handler.takes_lines():
        return None
    return _own_handler


def _log_fields(scope: Scope, info: RequestInfo, endpoint: str, status: int, seconds: float,
                now: float) -> dict[str, object]:
    """The request's log line's fields; never its body, and the path bounded."""
    line: dict[str, object] = {
        "ts": round(now, 3),
        "request_id": info.request_id,
        "method": scope["method"][:16],
        "path": scope["path"][:MAX_LOGGED_PATH],
        "endpoint": endpoint,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
    }
    if info.nodes is not None:
        line["nodes"] = info.nodes
    if info.check_status is not None:
        line["check"] = {"method": info.check_method, "status": info.check_status}
    if info.problem is not None:
        line["problem"] = info.problem
    return line


def json_line(obj: dict[str, object]) -> str:
    """``obj`` as one line of ASCII JSON."""
    try:
        out = orjson.dumps(obj)  # a fifth of json.dumps' time, on every request
        if out.isascii():
            return out.decode()
    except TypeError:  # a lone surrogate in the path (an ASGI server that keeps them)
        pass
    # A path in other characters is escaped, as json.dumps does: the line stays one line
    # (U+2028 is a line break to some readers) and ASCII, whatever stderr's encoding.
    return json.dumps(obj, separators=(",", ":"))
