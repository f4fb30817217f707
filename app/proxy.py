"""The path prefix a gateway mounts the service under, for docs, OpenAPI servers and links.

``ROOT_PATH`` (or ``DERIV_ROOT_PATH``) fixes it; with ``DERIV_TRUST_FORWARDED_PREFIX``
a proxy's ``X-Forwarded-Prefix`` header sets it per request. Routing works
whether or not the proxy strips the prefix from the path: a path without the
prefix gets it prepended, as the ASGI spec has ``path`` include ``root_path``.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_PREFIX = re.compile(r"^(?:/[A-Za-z0-9._~-]+)+$")


def clean_prefix(prefix: str) -> str | None:
    """``prefix`` without a trailing slash if it is a plain path, else None."""
    prefix = prefix.strip().rstrip("/")
    if not prefix:
        return ""
    return prefix if len(prefix) <= 256 and _PREFIX.match(prefix) else None


class PrefixMiddleware:
    """Sets the ASGI ``root_path`` from settings or a trusted ``X-Forwarded-Prefix``."""

    def __init__(self, app: ASGIApp, root_path: str, trust_forwarded_prefix: bool) -> None:
        self.app = app
        self.root_path = clean_prefix(root_path) or ""
        self.trust = trust_forwarded_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root = self.root_path
            if self.trust:
                for key, value in scope["headers"]:
                    if key == b"x-forwarded-prefix":
                        forwarded = clean_prefix(value.decode("latin-1"))
                        if forwarded is not None:
                            root = forwarded
                        break
            if root:
                scope = dict(scope)
                scope["root_path"] = root
                path = scope["path"]
                if path != root and not path.startswith(root + "/"):
                    # ASGI's path includes root_path; a stripping proxy sent it without.
                    scope["path"] = root + path
        await self.app(scope, receive, send)
