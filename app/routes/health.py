"""Liveness and readiness; ``async`` so they answer while compute threads are busy."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.dependencies import ServiceDep
from app.wire.responses import Health, WireJSON

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, name="healthz", response_class=WireJSON)
async def healthz() -> Response:
    """The process is alive and its event loop is responsive."""
    return WireJSON({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Health,
    name="readyz",
    response_class=WireJSON,
    responses={503: {"model": Health, "description": "Not ready to serve yet."}},
)
async def readyz(service: ServiceDep) -> Response:
    """The op table is loaded and requests can be served.

    `saturated` (still 200) while every computation slot is taken or requests wait for
    room in the memory budget: new costly requests may get 503 with `Retry-After` for a
    moment, yet the replica is healthy, so it stays in rotation.
    """
    if not service.ready():
        return WireJSON({"status": "starting"}, status_code=503)
    return WireJSON({"status": "saturated" if service.admission.saturated() else "ready"})
