"""RFC 9457 problem details for every fault, and the handlers that produce them.

Every error body is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; ``node``, ``field``, ``limit`` and ``errors`` are added
where they apply. Bodies are bounded: details are truncated and input is never
echoed back, so a hostile request cannot make the error larger than itself.
"""

from __future__ import annotations

import difflib
import json
import logging
import typing
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app import observability
from app.graph_store import GraphNotFound, GraphTooLarge
from engine.errors import (
    AttrError,
    BudgetExceeded,
    ComputeLimitError,
    CostError,
    EngineError,
    ExpressionError,
    GraphError,
    LimitError,
    ShapeError,
)

logger = logging.getLogger("app")

MAX_DETAIL = 400
MAX_ERRORS = 20
MAX_LOC_PART = 64
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(BaseModel):
    """One invalid field of the request."""

    loc: list[str | int] = Field(description="Path of the field, e.g. `body.graph.nodes.2.id`.")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="A URI naming the kind of problem; stable, for programs.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, for a person.")
    node: str | None = Field(default=None, description="The graph node at fault.")
    field: str | None = Field(default=None, description="The request field or attr at fault.")
    limit: str | None = Field(default=None, description="The configured limit that was hit.")
    estimate: float | None = Field(
        default=None,
        description="What the request was estimated to need of that limit (work, bytes).",
    )
    errors: list[ProblemError] | None = Field(
        default=None, description="Every invalid field (first ones only)."
    )
    request_id: str | None = Field(
        default=None,
        description="The request's id, as in the `X-Request-ID` response header: quote it.",
    )


class ProblemResponse(Response):
    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        """UTF-8 JSON; a lone surrogate that a detail quotes back from the body (a name
        sent as ``"\\ud800"``) has no UTF-8 form, so such a problem is written escaped."""
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(content, separators=(",", ":")).encode("ascii")


def clip(text: Any, limit: int = MAX_DETAIL) -> str:
    """``text`` as a string of at most ``limit`` characters."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def problem(
    base: str,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    """A problem response; ``extra`` members that are None are left out."""
    body: dict[str, Any] = {
        "type": base + slug,
        "title": title,
        "status": status,
        "detail": clip(detail),
    }
    for key, value in extra.items():
        if value is not None:
            body[key] = clip(value, 128) if isinstance(value, str) else value
    info = observability.current()
    if info is not None:
        body["request_id"] = info.request_id
        info.problem = slug
    return ProblemResponse(body, status_code=status, headers=headers)


def _base(request: Request) -> str:
    return request.app.state.settings.problem_type_base


# ------------------------------------------------------------------ handlers


def _loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int) else clip(p, MAX_LOC_PART) for p in loc]


def _dotted(loc: list[str | int]) -> str:
    parts = loc[1:] if loc and loc[0] == "body" else loc
    return ".".join(str(p) for p in parts) or "body"


def _node_of(body: Any, loc: list[str | int]) -> str | None:
    """The id of the node an error under ``graph.nodes[i]`` belongs to, if it has a sane one."""
    if len(loc) >= 4 and loc[:3] == ["body", "graph", "nodes"] and isinstance(loc[3], int):
        try:
            node_id = body["graph"]["nodes"][loc[3]]["id"]
        except (KeyError, IndexError, TypeError):
            return None
        if isinstance(node_id, str) and 0 < len(node_id) <= 128:
            return node_id
    return None


async def validation_handler(request: Request, exc: Exception) -> Response:
    """Malformed JSON is a 400; any other invalid field a 422 naming it (``loc``)."""
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    _drop_tracebacks(exc, raw)
    if raw and raw[0].get("type") == "json_invalid":  # FastAPI's one error for the body
        reason = raw[0].get("ctx", {}).get("error", "not JSON")
        where = raw[0]["loc"][-1] if raw[0].get("loc") else "?"
        return problem(
            _base(request),
            400,
            "malformed-json",
            "Malformed JSON",
            f"the body is not valid JSON: {clip(reason, 100)} at position {where}",
        )
    errors = [
        {"loc": _loc(e.get("loc", ())), "msg": clip(_message(request, e), 200), "type": e["type"]}
        for e in raw[:MAX_ERRORS]
    ]
    first = errors[0]["loc"] if errors else ["body"]
    more = f" (and {len(raw) - 1} more)" if len(raw) > 1 else ""
    detail = f"{_dotted(first)}: {errors[0]['msg'] if errors else 'invalid'}{more}"
    return problem(
        _base(request),
        422,
        "invalid-request",
        "Invalid request",
        detail,
        node=_node_of(exc.body, first),
        field=_dotted(first),
        errors=errors,
    )


def _drop_tracebacks(exc: BaseException, errors: list[dict[str, Any]]) -> None:
    """Forget where ``exc`` (and its causes) and the validators' errors were raised:
    FastAPI raises a malformed body's error from a frame that holds it, and a validator's
    error is kept in the error list its traceback's frames hold, so each traceback ties the
    request and its body into a reference cycle; tapes pause the cyclic collector, so
    under load those piled up. One plain pass: a body may bring 100,000 errors."""
    error: BaseException | None = exc
    while error is not None and error.__traceback__ is not None:
        error.__traceback__ = None
        error = error.__cause__ or error.__context__
    for e in errors:
        ctx = e.get("ctx")
        if ctx is not None:
            error = ctx.get("error")
            if isinstance(error, BaseException):
                error.__traceback__ = None


def _message(request: Request, error: dict[str, Any]) -> str:
    """Pydantic's message, but an unknown field names the one it may be a typo of."""
    loc = list(error.get("loc", ()))
    if error.get("type") != "extra_forbidden" or not loc or not isinstance(loc[-1], str):
        return str(error.get("msg", ""))
    route = request.scope.get("route")
    body = getattr(getattr(route, "body_field", None), "field_info", None)
    names = _fields_at(getattr(body, "annotation", None), loc[1:-1])
    if not names:
        return str(error.get("msg", ""))
    wrong = clip(loc[-1], MAX_LOC_PART)
    close: list[str] = []
    if len(loc[-1]) <= MAX_LOC_PART:  # longer is no typo; difflib took 0.3 s on 2 MB of key
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        meant = ALIASES.get(loc[-1].lower())
        if not close and meant in names:
            close = [meant]
    if close:
        return f"unknown field {wrong!r}: did you mean {close[0]!r}?"
    return (f"unknown field {wrong!r}; the fields here are {', '.join(names[:8])}"
            + (f" and {len(names) - 8} more (see /docs)" if len(names) > 8 else ""))


# Words people send for a field by another name (when no spelling is close).
ALIASES = {"input": "values", "inputs": "values", "variables": "values", "vars": "values",
           "expr": "expression", "formula": "expression", "function": "expression",
           "wrt": "sources", "with_respect_to": "sources", "variable": "sources"}


def _fields_at(model: Any, path: list[Any]) -> list[str]:
    """The field names of the model found at ``path`` below ``model`` (list indices and
    dict keys pass through to the item's model); [] when there is none."""
    model = _model_in(model)
    for part in path:
        if model is None:
            return []
        if isinstance(part, str) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
        elif not isinstance(part, int):
            return []
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any, depth: int = 0) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``Graph | None``, ``list[Node]``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if depth > 4:
        return None
    for arg in typing.get_args(annotation):
        found = _model_in(arg, depth + 1)
        if found is not None:
            return found
    return None


def _slug(phrase: str) -> str:
    return phrase.lower().replace(" ", "-").replace("'", "")


async def http_handler(request: Request, exc: Exception) -> Response:
    """Routing and framework errors (404, 405, ...) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    if exc.status_code == 404:
        detail = f"no endpoint at {clip(request.url.path, 100)}; see /docs"
    headers = exc.headers
    if exc.status_code == 405:
        allowed = _allowed(request, (exc.headers or {}).get("Allow", ""))
        headers = {**(exc.headers or {}), "Allow": allowed}
        detail = f"{request.method} is not allowed here; allowed: {allowed}"
    return problem(_base(request), exc.status_code, _slug(phrase), phrase, detail, headers=headers)


def _allowed(request: Request, route_allows: str) -> str:
    """Every method of the path, not only the first route's: GET and DELETE of
    ``/v1/graphs/{graph_id}`` are two routes, and the router names just the one it tried."""
    methods = {m.strip().upper() for m in route_allows.split(",") if m.strip()}
    template = getattr(request.scope.get("route"), "path", None)
    methods.update(m.upper() for m in request.app.openapi().get("paths", {}).get(template, {}))
    return ", ".join(sorted(methods))


async def unexpected_handler(request: Request, exc: Exception) -> Response:
    """A bug, never bad input: log it, answer 500 without internals."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        _base(request),
        500,
        "internal-error",
        "Internal Server Error",
        "the service failed unexpectedly; the error has been logged",
        # Answered outside the observability middleware, which adds the header elsewhere.
        headers=observability.request_id_headers(),
    )


Handler = Callable[[Request, Exception], Awaitable[Response]]


# (error class, HTTP status, problem type slug, title); the most specific first.
# A LimitError on what a request *contains* (bytes, nodes, a tensor sent) is a 413: it
# must shrink to succeed. One on what it would *compute* (shapes it produces, entries or
# order of a derivative: ComputeLimitError) and one on its estimated cost (CostError) are
# 422s, as the wire contract says: the body is fine, what it asks for is too much.
# A time-budget overrun is a deterministic property of the request, not an outage:
# 422, not 503 (which would invite retries) nor 408 (the client was not slow).
ERROR_PROBLEMS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (GraphError, 422, "invalid-graph", "Invalid graph"),
    (AttrError, 422, "invalid-attrs", "Invalid op attributes"),
    (ShapeError, 422, "shape-mismatch", "Incompatible shapes"),
    (ExpressionError, 422, "invalid-expression", "Invalid expression"),
    (ComputeLimitError, 422, "compute-limit", "Over a compute limit"),
    (LimitError, 413, "limit-exceeded", "Content Too Large"),
    (CostError, 422, "cost-limit", "Over a cost limit"),
    (BudgetExceeded, 422, "time-budget", "Time budget exceeded"),
    (EngineError, 422, "invalid-request", "Invalid request"),
    (GraphNotFound, 404, "graph-not-found", "Graph not found"),
    (GraphTooLarge, 413, "limit-exceeded", "Content Too Large"),
)


def engine_handler(status: int, slug: str, title: str) -> Handler:
    """A handler for one engine error class: its ``detail``, ``node`` and ``field`` go out."""

    async def handle(request: Request, exc: Exception) -> Response:
        return problem(
            _base(request),
            status,
            slug,
            title,
            getattr(exc, "detail", None) or str(exc),
            node=getattr(exc, "node", None),
            field=getattr(exc, "field", None),
            limit=getattr(exc, "limit", None),
            estimate=getattr(exc, "estimate", None),
        )

    return handle


async def saturated_handler(request: Request, exc: Exception) -> Response:
    """The replica is at its budget (app.admission): 503 with ``Retry-After``, so that a
    client or the gateway tries again later or elsewhere."""
    retry = int(getattr(exc, "retry_after", 1))
    return problem(
        _base(request),
        503,
        getattr(exc, "slug", "saturated"),  # or "store-unavailable" (app.graph_store)
        "Service Unavailable",
        getattr(exc, "detail", None) or str(exc),
        headers={"Retry-After": str(retry)},
        limit=getattr(exc, "limit", None),
    )
