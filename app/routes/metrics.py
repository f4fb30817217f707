"""``GET /metrics``: Prometheus text exposition of the service's request and check metrics.

``async`` on purpose: a scrape must answer while every threadpool worker computes.
Left out of the OpenAPI document: it is for the monitoring system, not for clients,
and a gateway need not expose it (scrape each replica directly).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.observability import CONTENT_TYPE_LATEST, render_metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", name="metrics", include_in_schema=False)
async def metrics() -> Response:
    """Request counts, latencies, problems and check outcomes (see app.observability)."""
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)
