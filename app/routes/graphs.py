"""Registered graphs: validate once, then compute by `graph_id` without resending the graph.

The store lives in each process (app.graph_store), or in Redis shared by every replica
(app.redis_store, app.store_backends); ids are content hashes, so a client that meets a
404 after an eviction registers the same graph again and gets the same id back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response

from app.dependencies import ServiceDep
from app.examples import graph_examples
from app.offload import OffloadedBodyRoute
from app.openapi import GRAPH_PROBLEMS
from app.wire.requests import GraphRequest
from app.wire.responses import GraphInfo, StoredGraphResponse, WireJSON

# A large graph is decoded and validated in a worker thread (app.offload).
router = APIRouter(
    prefix="/v1/graphs", tags=["graphs"], responses=GRAPH_PROBLEMS, route_class=OffloadedBodyRoute
)

GraphIdPath = Annotated[
    str, Path(description="The id `POST /v1/graphs` answered.", examples=["g_" + "0" * 64])
]


@router.post(
    "",
    status_code=201,
    response_model=GraphInfo,
    name="registerGraph",
    response_class=WireJSON,
    responses={200: {"model": GraphInfo, "description": "Already registered: the same id."}},
)
def register_graph(
    request: Annotated[GraphRequest, Body(openapi_examples=graph_examples())],  # type: ignore[arg-type]
    service: ServiceDep,
    http: Request,
) -> WireJSON:
    """Validate a graph once and keep it under a content hash, `g_<sha256>`.

    The same graph (up to key order and whitespace; numbers compared as float64) gets
    the same id on every replica. 201 when stored now, 200 when already present.
    Compute endpoints then take `"graph_id": ...` instead of `graph` or `expression`.
    Each process keeps at most `DERIV_GRAPH_CACHE_SIZE` graphs and
    `DERIV_GRAPH_CACHE_NODES` nodes, dropping the least recently used: a compute
    request naming a dropped id is a 404 problem, and registering again restores it.
    With `DERIV_GRAPH_STORE_URL` set, graphs live in Redis and every replica knows
    them; while Redis is unreachable, registering is a 503 problem with `Retry-After`.
    """
    info, created = service.register(request)
    location = graph_location(http, info["graph_id"])
    return WireJSON(info, status_code=201 if created else 200, headers={"Location": location})


def graph_location(http: Request, gid: str) -> str:
    """Where a registered graph lives, as a path-absolute reference (RFC 9110 allows one).

    Built from the configured prefix alone (``root_path``: the setting, or a trusted
    ``X-Forwarded-Prefix``, see app.proxy), never from the client's ``Host`` header, so
    a forged host cannot make the service hand out links to another site.
    """
    root: str = http.scope.get("root_path", "")
    return root.rstrip("/") + str(http.app.url_path_for("getGraph", graph_id=gid))


@router.get("/{graph_id}", response_model=StoredGraphResponse, name="getGraph",
            response_class=WireJSON)
def get_graph(graph_id: GraphIdPath, service: ServiceDep) -> WireJSON:
    """A registered graph's outline and validated nodes, in the order they were sent."""
    return WireJSON(service.describe(graph_id))


@router.delete("/{graph_id}", status_code=204, name="deleteGraph", response_class=Response)
def delete_graph(graph_id: GraphIdPath, service: ServiceDep) -> Response:
    """Forget a registered graph on this replica; with a shared store
    (`DERIV_GRAPH_STORE_URL`) on every replica, each dropping its copy at its next use."""
    service.forget(graph_id)
    return Response(status_code=204)
