"""The compute endpoints: validate, hand to the service, send the encoded result.

One route per row of ``app.endpoints``, registered in its order. ``async def`` so
that ``app.dispatch`` can choose: a provably tiny request computes inline (cheaper
than the threadpool hop), anything else in the threadpool, so the event loop (and
``/healthz``) stays responsive while the engine works; for the same reason a large
body is decoded and validated in a thread too (``app.offload``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from app.dispatch import compute
from app.endpoints import ENDPOINTS, Endpoint
from app.offload import OffloadedBodyRoute
from app.openapi import COMPUTE_PROBLEMS
from app.wire.requests import ComputeRequest
from app.wire.responses import WireJSON

# Large bodies are decoded and validated in a worker thread (app.offload).
router = APIRouter(
    prefix="/v1", tags=["derivatives"], responses=COMPUTE_PROBLEMS, route_class=OffloadedBodyRoute
)


def _route(endpoint: Endpoint) -> Callable[[ComputeRequest, Request], Awaitable[Response]]:
    """The route function of ``endpoint``: its body model and examples are in its
    signature, where FastAPI reads them; its docstring is the endpoint's description."""

    async def route(request: ComputeRequest, http: Request) -> Response:
        return await compute(http, endpoint, request)

    body = Body(openapi_examples=endpoint.examples)  # type: ignore[arg-type]
    route.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Annotated[endpoint.request, body]),
        inspect.Parameter("http", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
    ], return_annotation=Response)
    route.__doc__ = endpoint.doc
    return route


for _endpoint in ENDPOINTS.values():
    router.add_api_route(
        f"/{_endpoint.name}",
        _route(_endpoint),
        methods=["POST"],
        response_model=_endpoint.response,
        name=_endpoint.name,
        response_class=WireJSON,
    )
