"""The picture endpoints' work, in a worker thread: numbers from the engine, then a picture.

A plot is the engine's derivative kind over sampled points (``app.plotting``), admitted
like any computation: its estimate plus the renderer's working memory must fit the
process's budget (``app.admission``), under the time budget. A drawing is the gradient
endpoint's own answer with its trace (``Service.run``: the same limits, admission and
check), laid out by Graphviz (``app.drawing``).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from app import drawing, plotting
from app.endpoints import GRADIENT
from app.service import Service
from app.wire.pictures import DRAW_MAX_EDGES, DRAW_MAX_NODES, PlotRequest
from app.wire.requests import ComputeRequest
from engine import budget, cost
from engine.errors import ComputeLimitError, GraphError
from engine.graphs.graph import LEAF_OPS, InlineConstant


def plot_svg(service: Service, request: PlotRequest, cancel: budget.Cancel) -> bytes:
    """The plot of ``request`` as SVG, or the engine's typed error."""
    held: list[float] = []

    def admit(estimate: cost.Estimate) -> None:
        service.admission.enter(estimate.bytes + plotting.RENDER_BYTES)
        held.append(estimate.bytes + plotting.RENDER_BYTES)

    settings = service.settings
    try:
        with budget.time_budget(settings.time_budget_seconds, cancel):
            graph = service.graph_of(request)
            curves = plotting.compute(
                request,
                graph,
                service.limits,
                service.cost_limits,
                settings.max_derivative_order,
                admit,
            )
        title = request.expression or f"{curves.target} ({request.graph_id or 'graph'})"
        with budget.time_budget(None, cancel):  # its wait for a turn stops with the client
            return plotting.render(curves, title[:90])
    finally:
        service.release(held)


def draw_svg(service: Service, request: ComputeRequest, cancel: budget.Cancel) -> bytes:
    """The recorded tape of ``request``'s gradient as SVG; a 422 past ``DRAW_MAX_NODES``
    or ``DRAW_MAX_EDGES``."""
    if request.points is not None:
        raise GraphError(
            "a drawing shows one point's tape; send values, not points", field="points"
        )
    if request.graph is not None:
        _check_size(len(request.graph.nodes), sum(len(n.inputs) for n in request.graph.nodes))
    with budget.time_budget(service.settings.time_budget_seconds, cancel):
        graph = service.graph_of(request)
        _check_size(len(graph.nodes), sum(len(n.inputs) for n in graph.nodes.values()))
        leaf_values = graph.leaf_values(request.values)
    leaves: dict[str, tuple[str, Any]] = {
        i: (graph.nodes[i].op, leaf_values.get(i))
        for i in graph.nodes
        if graph.nodes[i].op in LEAF_OPS
    }
    for node_id, node in graph.nodes.items():  # inline constants, as the trace names them
        for k, x in enumerate(node.inputs):
            if isinstance(x, InlineConstant):
                leaves[f"{node_id}.inputs[{k}]"] = ("inline constant", x.value)
    traced = request.model_copy(update={"trace": True})
    answer = service.run(GRADIENT, traced, cancel=cancel)
    target = answer["trace"]["entries"][-1]["output"] if answer["trace"]["entries"] else ""
    if isinstance(request.target, str):
        target = request.target
    with budget.time_budget(None, cancel):  # dot is bounded by its own time; this cancels
        return drawing.render(drawing.to_dot(answer, leaves, target))


def _check_size(nodes: int, edges: int) -> None:
    """Refused before anything runs: Graphviz's time grows with the nodes and the edges."""
    for count, limit, what, name in ((nodes, DRAW_MAX_NODES, "nodes", "DRAW_MAX_NODES"),
                                     (edges, DRAW_MAX_EDGES, "inputs", "DRAW_MAX_EDGES")):
        if count > limit:
            raise ComputeLimitError(
                f"the graph has {count} {what}, over the drawing limit of {limit} ({name}): "
                "draw a smaller graph, or ask /v1/gradient for its trace",
                field="graph",
            )


def unavailable(exc: drawing.DrawingUnavailable) -> HTTPException:
    return HTTPException(503, detail=str(exc), headers={"Retry-After": "60"})
