"""Request models of the picture endpoints and their bounds: ``POST /v1/plot`` (``/v1/draw``
takes the body of ``/v1/gradient``).

The bounds are what a picture costs beyond its numbers: samples and curves are the
paths matplotlib lays out and writes (its render time and the SVG's bytes grow with
both), nodes the boxes and edges Graphviz lays out.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, StrictInt, field_validator, model_validator

from app.wire.bounded import ListOf, MapOf, WireModel
from app.wire.requests import Graph, GraphId, Ref
from app.wire.values import Value

PLOT_MAX_SAMPLES = 2001
RANGE_MAX = 1e300  # |a|, |b| of a plot's range, and |y| drawn: a float span stays finite
"""Samples of one plot: 2001 points by 5 curves render in about 0.5 s into 0.26 MB of SVG."""
PLOT_DEFAULT_SAMPLES = 401
PLOT_MAX_ORDER = 4
"""Curves of one plot: f and its first four derivatives (at most the derivative order limit)."""
DRAW_MAX_NODES = 150
"""Nodes of one drawing (leaves and recorded ops): past a few hundred, Graphviz takes
seconds and the picture is unreadable."""
DRAW_MAX_EDGES = 300
"""Inputs of one drawing's nodes together (two per node at ``DRAW_MAX_NODES``): Graphviz's
layout grows with its edges, and more with how many ranks each spans; 148 nodes of 12
inputs each kept it busy past its 5 s, and 28 nodes each reading every node before took
1.9 s, where the worst found at this line (23 such nodes) took 0.5 s."""
SVG = "image/svg+xml"


class PlotRequest(WireModel):
    """f and its derivatives in one variable over a range, as a picture.

    Send exactly one of `graph`, `expression` or `graph_id` (not null); otherwise the
    answer is a 422.
    """

    graph: Graph | None = Field(default=None, description="The computation (or `expression`).")
    expression: str | None = Field(
        default=None, description="Infix text instead of `graph`, as in compute requests."
    )
    graph_id: GraphId | None = Field(
        default=None, description="Instead of `graph` or `expression`: a registered graph's id."
    )
    variable: Ref = Field(description="The scalar leaf on the horizontal axis.")
    range: ListOf[float] = Field(
        min_length=2,
        max_length=2,
        description=f"`[a, b]`, `a < b`, each within ±{RANGE_MAX:g}: the variable's span.",
    )
    order: StrictInt = Field(
        default=1,
        ge=0,
        le=PLOT_MAX_ORDER,
        description=f"Derivatives drawn: 0 (f alone) to {PLOT_MAX_ORDER}.",
    )
    samples: StrictInt = Field(
        default=PLOT_DEFAULT_SAMPLES,
        ge=2,
        le=PLOT_MAX_SAMPLES,
        description=f"Evenly spaced values of the variable, ends included (2 to "
        f"{PLOT_MAX_SAMPLES}).",
    )
    values: MapOf[Value] = Field(
        default_factory=dict, description="Values of the other leaves, held fixed."
    )
    target: Ref | None = Field(
        default=None, description="The scalar node drawn. Default: the last node."
    )

    @field_validator("range")
    @classmethod
    def _finite_increasing(cls, span: list[float]) -> list[float]:
        a, b = span
        if not (math.isfinite(a) and math.isfinite(b)) or not a < b:
            raise ValueError("range must be two finite numbers [a, b] with a < b")
        if max(abs(a), abs(b)) > RANGE_MAX:  # the axis's ticks and its span would overflow
            raise ValueError(f"range reaches past ±{RANGE_MAX:g}, more than a plot's axis spans")
        return span

    @model_validator(mode="after")
    def _one_computation(self) -> PlotRequest:
        given = sum(x is not None for x in (self.graph, self.expression, self.graph_id))
        if given != 1:
            raise ValueError("send exactly one of `graph`, `expression` or `graph_id`")
        return self


PLOT_EXAMPLES: dict[str, Any] = {
    "cubic": {
        "summary": "x**3 - 3x and its first two derivatives on [-2.5, 2.5]",
        "value": {"expression": "x**3 - 3*x", "variable": "x", "range": [-2.5, 2.5], "order": 2},
    },
    "kink": {
        "summary": "|x| * y at y = 2, with its kink at 0 marked",
        "value": {
            "expression": "abs(x) * y",
            "variable": "x",
            "range": [-1, 1],
            "values": {"y": 2},
            "samples": 201,
        },
    },
    "log": {
        "summary": "log(x) on [-1, 3]: the non-finite stretch is shaded",
        "value": {"expression": "log(x)", "variable": "x", "range": [-1, 3]},
    },
}
