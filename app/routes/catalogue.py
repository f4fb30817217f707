"""The op catalogue, rendered once from the engine's op table."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.dependencies import ServiceDep
from app.wire.responses import OpsResponse, WireJSON

router = APIRouter(prefix="/v1", tags=["catalogue"])


@router.get("/ops", response_model=OpsResponse, name="listOps", response_class=WireJSON)
async def list_ops(service: ServiceDep) -> Response:
    """Every op a graph node may use: name, arity, attrs, formula and kink convention.

    `arity` null means one or more inputs (`concat`, `stack`). `convention` states
    the derivative at kinks and ties, as TensorFlow defines it (`abs'(0) = 0`,
    `relu'(0) = 0`, a `maximum`/`minimum` tie sends the gradient to the first input).
    """
    return Response(service.catalogue_json, media_type="application/json")
