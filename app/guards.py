"""Checks on a request body before anything parses it: media type (415), size and depth (413).

A pure ASGI middleware, so a refused body is never JSON-decoded or validated:
the byte count is enforced from ``Content-Length`` and again while reading
(a lying or absent header does not help), and the nesting depth is measured
on the raw bytes, so ``[[[[...`` 10^5 deep is a 413 and not a RecursionError.

Work that grows with a large body (the depth scan here, decoding in ``app.offload``)
runs in a worker thread, one per event loop (``off_loop``), so ``/healthz`` is answered
while big bodies arrive together. A large body is admitted first (``app.admission``):
it holds its share of the memory budget and one of a few body slots until its response
is sent, so a flood of big bodies gets 503s instead of an unbounded decoding queue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import numpy as np
from anyio.lowlevel import RunVar
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.admission import Admission, Saturated
from app.problems import problem
from app.settings import Settings

GUARDED_PREFIX = "/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON_TYPE = re.compile(r"^application/(?:json|[A-Za-z0-9!#$&^_.-]+\+json)$")
_ROUTE_CACHE_SIZE = 512  # (method, path) verdicts kept; bounded against a flood of paths
# Bodies from this size on are scanned and decoded off the loop; below it the thread hop
# and its GIL hand-offs cost more than the work (under a millisecond).
OFF_LOOP_MIN_BYTES = 64 * 1024
# ... and so are bodies of many arrays: 64 KB of nested one-number arrays took 26 to 42 ms
# to validate (a Python list and a check per array), against 1 to 2 ms for 64 KB of
# numbers or nodes (a node has one array, a matrix one per row).
OFF_LOOP_MIN_ARRAYS = 4096
# What a large JSON body holds in memory from its arrival to its response, per byte: the
# bytes, json.loads' Python lists of floats (about 2x), the validated model's and the
# graph's float64 arrays. Such a body takes that much of the admission budget.
BODY_MEMORY_FACTOR = 6
# One thread at a time for body work, per event loop. That work holds the GIL in long C
# calls (json.loads, numpy, pydantic-core) and every loop iteration must win the GIL back
# from it: one such thread is one contender, not one per request. Serial costs nothing:
# under the GIL the work is serial anyway.
_BODY_THREADS: RunVar[anyio.CapacityLimiter] = RunVar("body_threads")
_T = TypeVar("_T")


async def off_loop(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in this event loop's body-work thread."""
    try:
        limiter = _BODY_THREADS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(1)
        _BODY_THREADS.set(limiter)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


def decoded_off_loop(body: bytes) -> bool:
    """Whether ``body`` is worth decoding and validating in the body thread: it is large,
    or holds many arrays (one C pass counts their brackets)."""
    return len(body) >= OFF_LOOP_MIN_BYTES or body.count(b"[") >= OFF_LOOP_MIN_ARRAYS


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, parameters (charset) allowed."""
    if not content_type:
        return False
    return bool(_JSON_TYPE.match(content_type.split(";", 1)[0].strip().lower()))


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """Whether arrays/objects in ``body`` nest deeper than ``limit``, without parsing it.

    Linear in the body's length whatever it holds (with no backslash, one C pass keeps
    the bytes that can nest or quote, then vectorised passes read those alone): a body of
    escaped quotes once made a regex scan of strings quadratic, 4 s for 32 KB on the event
    loop.
    """
    if b"\\" in body:  # an escaped quote delimits nothing: where each one is decides
        return _exceeds_with_escapes(body, limit)
    marks = body.translate(None, _NOT_MARKS)  # brackets, braces and quotes
    if _few_openings(marks, limit):
        return False
    kinds = np.frombuffer(marks, dtype=np.uint8)
    quotes = kinds == _QUOTE  # every one delimits a string
    return _deeper(kinds[_outside_strings(quotes, quotes)], limit)


def _few_openings(text: bytes, limit: int) -> bool:
    """The common case, cheap and exact enough: no more arrays and objects open in all
    than ``limit``."""
    return text.count(b"[") + text.count(b"{") <= limit


def _exceeds_with_escapes(body: bytes, limit: int) -> bool:
    """``nesting_exceeds`` for a body with backslashes: which quotes delimit a string is
    read off the runs of backslashes just before each."""
    if _few_openings(body, limit):
        return False
    raw = np.frombuffer(body, dtype=np.uint8)
    marks = (raw == _LBRACKET) | (raw == _LBRACE) | (raw == _RBRACKET) | (raw == _RBRACE)
    marks |= raw == _QUOTE
    where = np.flatnonzero(marks)
    kinds = raw[where]
    quotes = kinds == _QUOTE
    return _deeper(kinds[_outside_strings(quotes, quotes & ~_escaped(raw, where))], limit)


def _outside_strings(quotes: np.ndarray, delimits: np.ndarray) -> np.ndarray:
    """Which of a body's brackets and quotes, in order, are brackets outside every JSON
    string, given which are quotes and which of those delimit a string.

    The running parity of the delimiting quotes marks the inside. An unterminated string
    runs to the end of the body (the parser refuses it before any bracket past it).
    """
    inside = np.logical_xor.accumulate(delimits)  # under half of bitwise_xor's time
    return ~quotes & ~inside


def _deeper(brackets: np.ndarray, limit: int) -> bool:
    """Whether ``brackets`` (opening and closing, in order) nest deeper than ``limit``.

    The running sum is of int64 into a new array: numpy then lets the interpreter lock go
    while it sums. Summing int32, casting int8, or summing in place held it throughout,
    3 to 6 ms on a 2 MiB body of brackets, while the event loop waited."""
    return int(np.cumsum(_STEPS.take(brackets)).max(initial=0)) > limit


_LBRACKET, _RBRACKET, _LBRACE, _RBRACE = b"[]{}"
_QUOTE, _BACKSLASH = b'"\\'
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')
_STEPS = np.zeros(256, dtype=np.int64)  # what each bracket does to the depth
_STEPS[[_LBRACKET, _LBRACE]], _STEPS[[_RBRACKET, _RBRACE]] = 1, -1


def _escaped(raw: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Whether each position in ``at`` follows an odd run of backslashes in ``raw``."""
    slashes = np.flatnonzero(raw == _BACKSLASH)
    breaks = np.diff(slashes) != 1
    firsts = np.flatnonzero(np.concatenate(([True], breaks)))  # where each run starts
    lasts = np.flatnonzero(np.concatenate((breaks, [True])))  # and where it ends
    odd = (lasts - firsts) % 2 == 0  # lasts - firsts + 1 backslashes
    after_odd = np.zeros(raw.size + 1, dtype=bool)
    after_odd[slashes[lasts[odd]] + 1] = True
    return after_odd[at]


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


class BodyGuard:
    """Refuses compute request bodies that are of the wrong type, too large or too deep."""

    def __init__(self, app: ASGIApp, settings: Settings, admission: Admission | None = None
                 ) -> None:
        self.app = app
        self.admission = admission
        self.max_bytes = settings.max_body_bytes
        self.max_depth = settings.max_json_depth
        self.base = settings.problem_type_base
        self._takes_body: dict[tuple[str, str, str], bool] = {}

    def takes_body(self, scope: Scope) -> bool:
        """Whether a route accepts this method at this path, as the router will decide.

        Otherwise the router answers 404 or 405, which come first: the method is judged
        before the content (RFC 9110), so ``PUT /v1/ops`` is a 405, not a 415.
        """
        key = (scope["method"], scope["path"], scope.get("root_path", ""))
        verdict = self._takes_body.get(key)
        if verdict is None:
            routes = getattr(scope.get("app"), "routes", None)
            if routes is None:  # not inside an app (a bare test harness): guard everything
                return True
            verdict = any(route.matches(scope)[0] is Match.FULL for route in routes)
            if len(self._takes_body) < _ROUTE_CACHE_SIZE:
                self._takes_body[key] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not _route_path(scope).startswith(GUARDED_PREFIX)
            or not self.takes_body(scope)
        ):
            await self.app(scope, receive, send)
            return
        content_type = content_length = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                if content_type is None:  # the first, as the route reads it (Starlette)
                    content_type = value.decode("latin-1")
            elif key == b"content-length":
                content_length = value.decode("latin-1")
        if not is_json_media_type(content_type):
            shown = (content_type or "none")[:80]
            await problem(
                self.base,
                415,
                "unsupported-media-type",
                "Unsupported Media Type",
                f"the body must be application/json (or application/*+json), not {shown}",
                headers={"Accept-Post": "application/json"},
            )(scope, receive, send)
            return
        if content_length is not None and (
            not content_length.strip().isdigit() or int(content_length) > self.max_bytes
        ):
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        data = bytes(body)
        if len(data) < OFF_LOOP_MIN_BYTES or self.admission is None:
            await self._checked(data, scope, receive, send)
            return
        nbytes = BODY_MEMORY_FACTOR * len(data)
        try:
            await self.admission.enter_body(nbytes)
        except Saturated as exc:
            await problem(self.base, 503, "saturated", "Service Unavailable", exc.detail,
                          headers={"Retry-After": str(exc.retry_after)},
                          limit=exc.limit)(scope, receive, send)
            return
        try:
            await self._checked(data, scope, receive, send)
        finally:
            self.admission.leave_body(nbytes)

    async def _checked(self, data: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        """The body's nesting checked, then the app called with it."""
        if await self._too_deep(data):
            await problem(
                self.base,
                413,
                "nesting-too-deep",
                "Content Too Large",
                f"the body nests arrays/objects deeper than {self.max_depth} levels",
                limit="max_json_depth",
            )(scope, receive, send)
            return
        await self.app(scope, _replay(data, receive), send)

    async def _too_deep(self, data: bytes) -> bool:
        """``nesting_exceeds``, off the loop for a large body (its numpy passes release
        the GIL, and a loop that lets it go waits for a busy thread to give it back)."""
        if len(data) < OFF_LOOP_MIN_BYTES:
            return nesting_exceeds(data, self.max_depth)
        return await off_loop(nesting_exceeds, data, self.max_depth)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem(
            self.base,
            413,
            "body-too-large",
            "Content Too Large",
            f"the body is larger than {self.max_bytes} bytes",
            headers={"Connection": "close"},
            limit="max_body_bytes",
        )(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then defers to the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
