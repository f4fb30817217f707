"""Large request bodies are decoded and validated in a worker thread, not on the event loop.

FastAPI decodes a JSON body and validates it against the endpoint's model before calling
the endpoint, on the event loop, even for a sync endpoint: sixteen concurrent 1.6 MB
bodies once kept ``/healthz`` waiting for seconds. ``OffloadedBodyRoute`` does both in
a worker thread when the body is large, with the same ``json.loads`` and the same
pydantic validation FastAPI runs, then lets FastAPI's own handler carry on with the
decoded, validated model: it validates a model instance again at no cost (pydantic
does not revalidate instances), solves the other parameters and calls the endpoint.
A small body stays on the loop, where the thread hop costs more than the work.

The thread is the loop's one body-work thread (``app.guards.off_loop``), which also
scans a large body's depth: that work holds the GIL in long C calls, and a single such
thread keeps the loop's wait for the GIL to one call at a time.

The errors are FastAPI's: a malformed body raises the ``json.JSONDecodeError`` where
FastAPI expects it, and invalid fields raise a ``RequestValidationError`` with the
``loc`` paths FastAPI gives (``("body", ...)``), so ``app.problems`` answers alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from app.guards import OFF_LOOP_MIN_BYTES, is_json_media_type, off_loop
from engine.tape.collector import collector_paused

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class _Decoded(Request):
    """The request, its body already read and decoded (or found malformed) off the loop."""

    def __init__(self, request: Request, body: bytes, decoded: Any) -> None:
        super().__init__(request.scope, request.receive)
        self._raw, self._decoded = body, decoded

    async def body(self) -> bytes:
        return self._raw

    async def json(self) -> Any:
        if isinstance(self._decoded, json.JSONDecodeError):
            raise self._decoded  # where FastAPI's own decoding would have raised it
        return self._decoded


def _body_field(route: APIRoute) -> Any | None:
    """The route's body field if its body is one plain JSON model (the compute routes');
    None otherwise (no body, several parts, forms): those are left to FastAPI."""
    field = route.body_field
    body_params = route.dependant.body_params
    if field is None or len(body_params) != 1 or body_params[0] is not field:
        return None
    info = field.field_info
    if not isinstance(info, params.Body) or isinstance(info, params.Form) or info.embed:
        return None
    return field


def _decode_and_validate(field: Any, body: bytes) -> Any:
    """The body as FastAPI makes it: ``json.loads``, then the field's own validation
    (``ModelField.validate``: the model in Python mode, errors under ``("body", ...)``).

    A malformed body is returned (its JSONDecodeError) for FastAPI's handler to report;
    invalid fields raise the RequestValidationError FastAPI would raise.
    """
    # the collector's rescans of the objects a big body decodes to (all alive) cost more
    # than decoding it, as on a long tape: paused the same way (engine.tape.collector)
    with collector_paused:
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            return exc
        value, errors = field.validate(data, {}, loc=("body",))
    if errors:
        raise RequestValidationError(errors, body=data)
    return value


class OffloadedBodyRoute(APIRoute):
    """An APIRoute whose large JSON bodies are decoded and validated in a worker thread."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        field = _body_field(self)
        if field is None:
            return handler

        async def offloaded(request: Request) -> Response:
            body = await request.body()
            if len(body) < OFF_LOOP_MIN_BYTES or not is_json_media_type(
                request.headers.get("content-type")
            ):
                return await handler(request)
            decoded = await off_loop(_decode_and_validate, field, body)
            return await handler(_Decoded(request, body, decoded))

        return offloaded
