"""Checks on a request body before anything parses it: media type (415), size and depth (413).

A pure ASGI middleware, so a refused body is never JSON-decoded or validated:
the byte count is enforced from ``Content-Length`` and again while reading
(a lying or absent header does not help), and the nesting depth is measured
on the raw bytes, so ``[[[[...`` 10^5 deep is a 413 and not a RecursionError.
"""

from __future__ import annotations

import re

import numpy as np
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import problem
from app.settings import Settings

GUARDED_PREFIX = "/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_JSON_TYPE = re.compile(r"^application/(?:json|[A-Za-z0-9!#$&^_.-]+\+json)$")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ROUTE_CACHE_SIZE = 512  # (method, path) verdicts kept; bounded against a flood of paths


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, parameters (charset) allowed."""
    if not content_type:
        return False
    return bool(_JSON_TYPE.match(content_type.split(";", 1)[0].strip().lower()))


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """Whether arrays/objects in ``body`` nest deeper than ``limit``, without parsing it."""
    if body.count(b"[") + body.count(b"{") <= limit:  # the common case: cheap and exact enough
        return False
    if b'"' in body:
        body = _STRING.sub(b"", body)  # brackets inside strings do not nest
    brackets = np.frombuffer(body.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    if brackets.size <= limit:
        return False
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
    return int(np.cumsum(steps).max()) > limit


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


class BodyGuard:
    """Refuses compute request bodies that are of the wrong type, too large or too deep."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
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
        if nesting_exceeds(data, self.max_depth):
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
