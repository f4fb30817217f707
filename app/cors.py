"""Cross-origin access for browsers, off unless ``DERIV_CORS_ORIGINS`` lists origins.

The API takes JSON bodies, so a browser on another site preflights every call: without
listed origins the service answers no CORS headers and browsers keep other sites out.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp

from app import problems

ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def parse_origins(value: str) -> list[str]:
    """``scheme://host[:port]`` origins (or ``*``), comma-separated; a ValueError names a
    malformed one, so a typo stops the start-up instead of silently allowing nothing."""
    origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
    for origin in origins:
        if origin != "*" and not ORIGIN.match(origin):
            raise ValueError(f"DERIV_CORS_ORIGINS: {origin!r} is not scheme://host[:port] or *")
    return origins


class ProblemCORS(CORSMiddleware):
    """Starlette's CORS, its refused preflight written as a problem (RFC 9457) like every
    other error of the service, not as its plain-text 400."""

    def __init__(self, app: ASGIApp, problem_type_base: str, **options: object) -> None:
        super().__init__(app, **options)  # type: ignore[arg-type]
        self.problem_type_base = problem_type_base

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode()  # "Disallowed CORS origin, headers"
        kept = {k: v for k, v in response.headers.items()
                if k.startswith("access-control-") or k == "vary"}
        return problems.problem(
            self.problem_type_base, 400, "cors-refused", "CORS preflight refused",
            f"{refused}: the origin, method or headers asked for are not allowed here "
            "(DERIV_CORS_ORIGINS lists the origins)", headers=kept)


def install(app: FastAPI, value: str, problem_type_base: str) -> None:
    """The CORS middleware for the listed origins; nothing when there are none."""
    origins = parse_origins(value)
    if not origins:
        return
    app.add_middleware(
        ProblemCORS,
        problem_type_base=problem_type_base,
        allow_origins=origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Location", "Retry-After"],
        max_age=600,
    )
