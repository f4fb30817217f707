"""Large request bodies are decoded and validated in a worker thread, not on the event loop.

FastAPI decodes a JSON body and validates it against the endpoint's model before calling
the endpoint, on the event loop, even for a sync endpoint: sixteen concurrent 1.6 MB
bodies once kept ``/healthz`` waiting for seconds. ``OffloadedBodyRoute`` does both in
a worker thread when the body is large, with the same ``json.loads`` and the same
pydantic validation FastAPI runs. An endpoint that takes nothing but its body and the
request (the compute and picture routes) is then called straight with the model; any
other route lets FastAPI's own handler carry on with the decoded, validated model: it
validates a model instance again at no cost (pydantic does not revalidate instances),
solves the other parameters and calls the endpoint.
A small body of few arrays stays on the loop (``app.guards.decoded_off_loop``), where the
thread hop costs more than the work.

Either way the body is decoded by ``decode_json``: orjson where it gives ``json.loads``'
value (a sixth of the time on a body of numbers: 7 µs against 46 µs for a Rosenbrock
graph of 100 values), ``json.loads`` itself for the rest.

The thread is the loop's one body-work thread (``app.guards.off_loop``), which also
scans a large body's depth: that work holds the GIL in long C calls, and a single such
thread keeps the loop's wait for the GIL to one call at a time.

The errors are FastAPI's: a malformed body raises the ``json.JSONDecodeError`` where
FastAPI expects it, and invalid fields raise a ``RequestValidationError`` with the
``loc`` paths FastAPI gives (``("body", ...)``), so ``app.problems`` answers alike.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

import fastapi.routing
import orjson
from fastapi import params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from app.guards import decoded_off_loop, is_json_media_type, off_loop
from app.wire.bounded import check_counts
from app.wire.values import float_literal
from engine.graphs.graph import Limits
from engine.tape.collector import collector_paused

with contextlib.suppress(ImportError):  # FastAPI's OpenTelemetry hooks (recent FastAPI)
    import fastapi.telemetry

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class _Decoded(Request):
    """The request, its body already read and decoded (or found malformed): FastAPI's
    handler takes the decoded value from ``json()``, where it would call ``json.loads``."""

    def __init__(self, request: Request, body: bytes, decoded: Any) -> None:
        super().__init__(request.scope, request.receive)
        self._raw, self._decoded = body, decoded

    async def body(self) -> bytes:
        return self._raw

    async def json(self) -> Any:
        if isinstance(self._decoded, UNDECODABLE):
            raise self._decoded  # where FastAPI's own decoding would have raised it
        return self._decoded


# An integer token of 19 or more digits may lie past 64 bits, where orjson gives a float
# and json.loads an int; a body with one is left to json.loads. Found by mapping every
# digit to 0, a decimal point or an exponent mark to ".", every other byte to "|", and
# searching for "|" and 19 zeros: two passes in C, where a regular expression retries at
# every digit of every long float (30 µs on 2.6 KB of them). The digits after a point
# never match: a float written 0.00012345678901234567 is orjson's.
_SHAPES = bytearray(b"|" * 256)
_SHAPES[ord("0") : ord("9") + 1] = b"0" * 10
for _mark in b".eE":
    _SHAPES[_mark] = ord(".")
_NUMBER_SHAPES = bytes(_SHAPES)
_LONG_INTEGER = b"|" + b"0" * 19


# What json.loads raises for a body it cannot decode: malformed JSON, bytes that are not
# text, an integer past Python's digits, nesting deeper than the interpreter's recursion
# (only under a DERIV_MAX_JSON_DEPTH raised past it). FastAPI answers them 400 or 422.
UNDECODABLE = (ValueError, RecursionError)


def decode_json(body: bytes) -> Any:
    """``json.loads(body)``: the same value, or the same JSONDecodeError.

    orjson decodes it when it can give that value. What it refuses (bare ``NaN`` and
    ``Infinity`` tokens, ``1e400``, lone surrogates, a byte-order mark, UTF-16, malformed
    text) and integers that may not fit 64 bits go to ``json.loads``, which decodes them
    as FastAPI always has or raises the error it reports. A number past float64's range
    (``1e309``, which orjson names) decodes to a ``BeyondFloat64``, which a value refuses;
    in a body that also holds a bare ``NaN`` or ``Infinity`` token, it is read as
    ``json.loads`` reads it (inf).
    """
    if _bare_token(body):
        return json.loads(body)
    if _LONG_INTEGER not in b"|" + body.translate(_NUMBER_SHAPES):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "infinity" not in str(exc):  # malformed, or text JSON does not allow
                return json.loads(body)
    # a number may lie past float64's range: a Python call per number (36 ms against
    # json.loads' 22 ms for 2 MB of them) tells 1e309 from the token Infinity
    return json.loads(body, parse_float=float_literal)


def _bare_token(body: bytes) -> bool:
    """Whether ``body`` may hold a bare ``NaN`` or ``Infinity`` (Python's json.dumps writes
    them; JSON has neither): orjson would refuse it only once it got there, so such a
    body goes to json.loads at once. More of them than the wire's quoted strings."""
    # a capital letter first (memchr: 0.04 ms on 2 MB, a word 1.3 ms)
    if body.find(b"N") >= 0 and body.count(b"NaN") > body.count(b'"NaN"'):
        return True
    return body.find(b"I") >= 0 and body.count(b"Infinity") > (
        body.count(b'"Infinity"') + body.count(b'"-Infinity"'))


def _decoded_or_error(body: bytes) -> Any:
    """``decode_json(body)``, or the error it raised (``UNDECODABLE``), for FastAPI's
    handler to report where its own decoding would have raised it (``_Decoded.json``)."""
    try:
        return decode_json(body)
    except UNDECODABLE as exc:
        return exc


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


def _decoded_and_counted(body: bytes, limits: Limits) -> Any:
    """``_decoded_or_error(body)``, its lists measured against ``limits`` first
    (``app.wire.bounded.check_counts``: a LimitError past them)."""
    data = _decoded_or_error(body)
    if not isinstance(data, UNDECODABLE):
        check_counts(data, limits)
    return data


def _decode_and_validate(field: Any, body: bytes, limits: Limits) -> Any:
    """The body as FastAPI makes it: ``json.loads``, then the field's own validation
    (``ModelField.validate``: the model in Python mode, errors under ``("body", ...)``).

    A body that does not decode is returned (its error: ``UNDECODABLE``) for FastAPI's
    handler to report;
    invalid fields raise the RequestValidationError FastAPI would raise.
    """
    # the collector's rescans of the objects a big body decodes to (all alive) cost more
    # than decoding it, as on a long tape: paused the same way (engine.tape.collector)
    with collector_paused:
        data = _decoded_and_counted(body, limits)
        return data if isinstance(data, UNDECODABLE) else _validated(field, data)


def _validated(field: Any, data: Any) -> Any:
    """``data`` validated by the body field as FastAPI validates it, or the
    RequestValidationError it would raise."""
    value, errors = field.validate(data, {}, loc=("body",))
    if errors:
        raise RequestValidationError(errors, body=data)
    return value


def direct_call(route: APIRoute) -> Callable[..., Coroutine[Any, Any, Response]] | None:
    """The route's endpoint, to call straight with the validated body and the request,
    when those are all it takes (the compute routes): an ``async def`` of one body model
    and a ``Request``, no dependency, query, path, header or cookie parameter, its
    router's and app's included. None otherwise: FastAPI's handler then solves its
    parameters."""
    dependant = _as_included(route).dependant
    if (
        not inspect.iscoroutinefunction(dependant.call)
        or dependant.request_param_name is None
        or dependant.dependencies
        or dependant.path_params or dependant.query_params
        or dependant.header_params or dependant.cookie_params
        or any(getattr(dependant, name, None) is not None for name in _OTHER_PARAMS)
    ):
        return None
    return dependant.call


def _as_included(route: APIRoute) -> Any:
    """The route as FastAPI builds its handler: FastAPI 0.16x builds an included route's
    handler within its inclusion (the including router's dependencies joined to its own),
    which ``get_route_handler`` reads from a context variable; earlier FastAPI copies the
    route with them."""
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    included = None if context_var is None else context_var.get()
    return included if getattr(included, "original_route", None) is route else route


# FastAPI's special parameters a direct call would not fill
_OTHER_PARAMS = ("websocket_param_name", "http_connection_param_name", "response_param_name",
                 "background_tasks_param_name", "security_scopes_param_name")


class OffloadedBodyRoute(APIRoute):
    """An APIRoute whose large JSON bodies are decoded and validated in a worker thread.

    A route whose endpoint takes only its body and the request (``direct_call``) is
    called straight with the model, once the body validates: FastAPI's handler would
    solve the same two parameters at about 50 µs a request (a sixth of a seed-sized
    request's time in the app). Anything it would answer differently (a body that is
    empty, not JSON or malformed, or OpenTelemetry tracing the request) goes to it.
    """

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        field = _body_field(self)
        if field is None:
            return handler
        call = direct_call(self)
        body_name, request_name = field.name, self.dependant.request_param_name

        async def offloaded(request: Request) -> Response:
            body = await request.body()
            if not is_json_media_type(request.headers.get("content-type")):
                return await handler(request)
            limits = request.app.state.service.limits
            if not decoded_off_loop(body):
                decoded = _decoded_and_counted(body, limits)  # an empty body: UNDECODABLE
                if call is None or isinstance(decoded, UNDECODABLE) or traced():
                    return await handler(_Decoded(request, body, decoded))
                value = _validated(field, decoded)
            else:
                value = await off_loop(_decode_and_validate, field, body, limits)
                if call is None or isinstance(value, UNDECODABLE) or traced():
                    return await handler(_Decoded(request, body, value))
            return await call(**{body_name: value, request_name: request})

        return offloaded


def traced() -> bool:
    """Whether FastAPI's OpenTelemetry hooks follow this request: its handler then runs,
    which reports the body and the operations to them (FastAPI before the hooks: never)."""
    telemetry = getattr(fastapi, "telemetry", None)
    return telemetry is not None and telemetry.get_telemetry_data() is not None
