"""POST /v1/plot and POST /v1/draw: pictures as ``image/svg+xml``; errors stay RFC 9457 JSON.

Both answer SVG whatever the ``Accept`` header asks (the only form they have); a problem
is ``application/problem+json`` as everywhere. The work (engine, matplotlib, Graphviz)
runs in the threadpool, never on the event loop; a client that disconnects cancels the
computation at its next op boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Request, Response

from app import pictures
from app.dispatch import off_loop
from app.drawing import DrawingUnavailable
from app.endpoints import GRADIENT
from app.offload import OffloadedBodyRoute
from app.openapi import COMPUTE_PROBLEMS
from app.service import Service
from app.wire.pictures import (
    DRAW_MAX_NODES,
    PLOT_EXAMPLES,
    PLOT_MAX_ORDER,
    PLOT_MAX_SAMPLES,
    SVG,
    PlotRequest,
)
from app.wire.requests import ComputeRequest

router = APIRouter(
    prefix="/v1", tags=["pictures"], responses=COMPUTE_PROBLEMS, route_class=OffloadedBodyRoute
)
F = TypeVar("F", bound=Callable[..., Any])

PLOT_DOC = f"""f and its derivatives up to `order` over `range`, as an SVG picture.

The values come from one batched run of the engine at `samples` evenly spaced values of
`variable` (the other leaves keep `values`): `order` nested tapes, one reverse sweep per
order for all samples. Curves are labelled f, f′, f″, ...; samples where an op meets its
kink (`abs` at 0) are marked, and stretches where a curve is not finite (`log` of a
negative number) shaded. `target` must be a scalar and `variable` a scalar leaf. Bounded
by `samples` (at most {PLOT_MAX_SAMPLES}), `order` (at most {PLOT_MAX_ORDER}) and the cost
limits; a render waits its turn behind other plots (a 503 past a few seconds).
"""

DRAW_DOC = f"""The tape `/v1/gradient` records for this body, drawn by Graphviz as SVG.

Each recorded op is a box with its node id, op, shape, value and adjoint (the gradient of
the target by it); each leaf an ellipse with its value, and a source its gradient, or
`gradient null` with the reason (`not_watched`, `unconnected`), dashed. Nodes and edges
on a path from a source to the target are red. One point only (no `points`); past
{DRAW_MAX_NODES} nodes a 422 (`.../compute-limit`) names the limit.
"""


DRAW_EXAMPLES = {  # the gradient's examples at one point: a drawing takes no points
    name: example
    for name, example in GRADIENT.examples.items()
    if "points" not in example.get("value", {})
}


def _svg_route(path: str, doc: str, summary: str, example: str) -> Callable[[F], F]:
    """``router.post`` for a route whose only form is SVG: the 200 documented as such."""
    svg_200 = {
        "description": summary,
        "content": {SVG: {"schema": {"type": "string", "format": "binary"}, "example": example}},
    }
    return router.post(
        path,
        response_class=Response,
        responses={200: svg_200},
        name=path.removeprefix("/"),
        description=doc,
    )


@_svg_route(
    "/plot",
    PLOT_DOC,
    'The plot: one `<g id="curve-j">` per order j, kinks and non-finite stretches marked.',
    '<svg xmlns="http://www.w3.org/2000/svg" ...><g id="curve-0">...</g></svg>',
)
async def plot(
    request: Annotated[PlotRequest, Body(openapi_examples=PLOT_EXAMPLES)], http: Request
) -> Response:
    """f and its derivatives over a range, as SVG."""
    service: Service = http.app.state.service
    svg = await off_loop(http, lambda cancel: pictures.plot_svg(service, request, cancel))
    return Response(svg, media_type=SVG)


@_svg_route(
    "/draw",
    DRAW_DOC,
    "The tape: a box per recorded op, an ellipse per leaf, the path to each source in red.",
    '<svg xmlns="http://www.w3.org/2000/svg" ...><g id="node1" class="node">...</g></svg>',
)
async def draw(
    request: Annotated[ComputeRequest, Body(openapi_examples=DRAW_EXAMPLES)], http: Request
) -> Response:
    """The recorded tape of a gradient, as SVG."""
    service: Service = http.app.state.service
    try:
        svg = await off_loop(http, lambda cancel: pictures.draw_svg(service, request, cancel))
    except DrawingUnavailable as exc:
        raise pictures.unavailable(exc) from None
    return Response(svg, media_type=SVG)
