"""Cross-origin access for browsers, off unless ``DERIV_CORS_ORIGINS`` lists origins.

The API takes JSON bodies, so a browser on another site preflights every call: without
listed origins the service answers no CORS headers and browsers keep other sites out.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def parse_origins(value: str) -> list[str]:
    """``scheme://host[:port]`` origins (or ``*``), comma-separated; a ValueError names a
    malformed one, so a typo stops the start-up instead of silently allowing nothing."""
    origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
    for origin in origins:
        if origin != "*" and not ORIGIN.match(origin):
            raise ValueError(f"DERIV_CORS_ORIGINS: {origin!r} is not scheme://host[:port] or *")
    return origins


def install(app: FastAPI, value: str) -> None:
    """The CORS middleware for the listed origins; nothing when there are none."""
    origins = parse_origins(value)
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Location", "Retry-After"],
        max_age=600,
    )
