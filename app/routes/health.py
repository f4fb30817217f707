"""Liveness and readiness; ``async`` so they answer while compute threads are busy."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

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
    moment, yet the replica is healthy, so it stays in rotation. `degraded` (still 200)
    while the shared graph store (`DERIV_GRAPH_STORE_URL`) cannot be reached: inline
    requests are served, `graph_id` ones from this replica's copies or with a 503.
    """
    if not service.ready():
        return WireJSON({"status": "starting"}, status_code=503)
    if await run_in_threadpool(service.store_state) == "degraded":
        return WireJSON({"status": "degraded"})
    return WireJSON({"status": "saturated" if service.admission.saturated() else "ready"})
