"""``POST /v1/symbolic``: the symbolic derivative as the answer, from ``app.endpoints.SYMBOLIC``.

A ``def`` route: FastAPI runs it in its threadpool, where it waits for a SymPy worker
(each job is bounded by its own budget in the worker pool, engine.check.sympy_pool).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app import symbolic
from app.dependencies import ServiceDep
from app.endpoints import SYMBOLIC
from app.offload import OffloadedBodyRoute
from app.openapi import COMPUTE_PROBLEMS
from app.wire.requests import SymbolicRequest
from app.wire.responses import WireJSON

router = APIRouter(
    prefix="/v1", tags=["derivatives"], responses=COMPUTE_PROBLEMS, route_class=OffloadedBodyRoute
)


@router.post(
    f"/{SYMBOLIC.name}",
    response_model=SYMBOLIC.response,
    name=SYMBOLIC.name,
    response_class=WireJSON,
    description=SYMBOLIC.doc,
)
def symbolic_derivatives(
    request: Annotated[SymbolicRequest, Body(openapi_examples=SYMBOLIC.examples)],  # type: ignore[arg-type]
    service: ServiceDep,
) -> WireJSON:
    """The function and its derivatives up to `order`, as SymPy writes them."""
    return WireJSON(symbolic.render(service.symbolic(request)))
