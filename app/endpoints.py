"""The compute endpoints, as one table: everything that differs between them.

Each row joins the engine's request kind (``engine.derive.kinds``) with what the web
layer needs of it: the request and response models, the response fields it renders,
whether it may run on the event loop, its examples and its documentation. The routes
(``app.routes.compute``), the dispatcher and the service read the row they are given;
none switches on a kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app import rendering
from app.examples import (
    MANY_POINTS,
    SPARSE_HESSIAN,
    SYMBOLIC_EXAMPLES,
    TENSORS,
    Examples,
    seed_examples,
)
from app.rendering import Quantities
from app.wire.requests import (
    ComputeRequest,
    DerivativeRequest,
    HessianRequest,
    SymbolicRequest,
)
from app.wire.responses import (
    DerivativeResponse,
    EvaluateResponse,
    GradientResponse,
    HessianResponse,
    JacobianResponse,
    SymbolicResponse,
)
from engine.check.agreement import CheckReport
from engine.derive import kinds
from engine.derive.kinds import Kind
from engine.derive.query import Result


@dataclass(frozen=True)
class Endpoint:
    """``POST /v1/<kind.name>``."""

    kind: Kind
    request: type[ComputeRequest]
    response: type[BaseModel]
    """The response's model: it documents the body ``quantities`` help render."""
    quantities: Quantities
    inline: bool
    """Whether a tiny request may compute on the event loop (``app.dispatch``)."""
    examples: Examples
    doc: str
    """The route's description in the OpenAPI document."""

    @property
    def name(self) -> str:
        return self.kind.name

    def render(self, result: Result, report: CheckReport) -> dict[str, Any]:
        """The response's JSON data."""
        return rendering.render(self.quantities, result, report)


EVALUATE = Endpoint(
    kinds.EVALUATE, ComputeRequest, EvaluateResponse, rendering.outputs_only, inline=True,
    examples={**seed_examples(("9", "27", "31", "31")), **MANY_POINTS, **TENSORS},
    doc="Forward values of the targets (`outputs`), as the graph computes them.",
)

GRADIENT = Endpoint(
    kinds.GRADIENT, ComputeRequest, GradientResponse, rendering.gradients, inline=True,
    examples={
        **seed_examples(("dy/dx = 6", "dy/dx = 27", "dz/dx = 4, dz/dy = 27", "4 and 27")),
        **MANY_POINTS,
        **TENSORS,
    },
    doc="""Gradients of the target with respect to each source, as `tape.gradient(target, sources)`.

    A list target is summed and a non-scalar target summed (or weighted by
    `output_gradients`); each gradient has its source's shape. A source that is not
    watched, or not connected to the target, is `null` with a note, or zeros with
    `"unconnected_gradients": "zero"`.
    """,
)

JACOBIAN = Endpoint(
    kinds.JACOBIAN, ComputeRequest, JacobianResponse, rendering.jacobian, inline=True,
    examples={
        **seed_examples(("dy/dx = 6", "dy/dx = 27", "4 and 27", "4 and 27")), **TENSORS
    },
    doc="""Full Jacobians, as `tape.jacobian(target, source)`: `target.shape + source.shape` each.

    With a list target, one Jacobian per target. The number of entries
    (target elements × source elements) is bounded by `DERIV_MAX_DERIVATIVE_WORK`.
    `output_gradients` is ignored, and a note (`reason: ignored_field`) says so: TF's
    `jacobian` has no such argument (weight the rows yourself, or ask `/v1/gradient`).
    """,
)

HESSIAN = Endpoint(
    kinds.HESSIAN, HessianRequest, HessianResponse, rendering.hessian, inline=True,
    examples={
        **seed_examples(
            ("d²y/dx² = 2", "d²y/dx² = 18", "[[2, 0], [0, 18]]", "[[2, 0], [0, 18]]")
        ),
        **MANY_POINTS,
        **SPARSE_HESSIAN,
    },
    doc="""Second derivatives of a scalar target by nested tapes, as TensorFlow computes them.

    `hessian[si][sj]` has shape `si.shape + sj.shape`; `matrix` is the same as one
    2-D array over the flattened sources in `sources` order (an unconnected block is
    zeros there). The gradients come along. The target must be a scalar (a 422
    otherwise), and the matrix size is bounded by `DERIV_MAX_DERIVATIVE_WORK`.

    With `format: coo` (the default beyond `DERIV_DENSE_MAX_SOURCES` source elements)
    the sparsity pattern is detected from the graph, columns that share no row are
    evaluated together (graph colouring, as ADOL-C does), and `sparse` lists the
    non-zeros; `structure` says what was found (e.g. `banded`, bandwidth 1, 3 colours
    for Rosenbrock). `DERIV_MAX_DERIVATIVE_WORK` then bounds the non-zeros.
    """,
)

_ORDER_3 = "[4, 27], [[2, 0], [0, 18]], and 6 at [1, 1, 1] of order 3"
DERIVATIVE = Endpoint(
    kinds.DERIVATIVE, DerivativeRequest, DerivativeResponse, rendering.derivatives,
    inline=False,
    examples=seed_examples(
        ("orders 1 to 3: 6, 2, 0", "orders 1 to 3: 27, 18, 6", _ORDER_3, _ORDER_3), order=3
    ),
    doc="""Every derivative of a scalar target up to `order`, by `order` nested tapes.

    `derivatives[j - 1]` is the j-th derivative: a number for one source, else the
    full symmetric tensor of shape `[n] * j` over `sources` (order 1 the gradient,
    2 the Hessian, ...). Sources must be scalar leaves and the target a scalar (422
    otherwise); `order` is bounded by `DERIV_MAX_DERIVATIVE_ORDER` and the entries
    n + n² + ... + nᵏ by `DERIV_MAX_DERIVATIVE_WORK` (422 beyond). `check` compares
    every order with SymPy, or orders 1 and 2 with finite differences.
    """,
)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e for e in (EVALUATE, GRADIENT, JACOBIAN, HESSIAN, DERIVATIVE)
}
"""By name, in the order the routes are registered (and the OpenAPI lists them)."""


@dataclass(frozen=True)
class SymbolicEndpoint:
    """``POST /v1/symbolic``: no engine kind (nothing is run on a tape), its own answer."""

    name: str
    request: type[SymbolicRequest]
    response: type[BaseModel]
    examples: Examples
    doc: str


SYMBOLIC = SymbolicEndpoint(
    "symbolic", SymbolicRequest, SymbolicResponse, SYMBOLIC_EXAMPLES,
    doc="""The function and every derivative up to `order`, as SymPy writes them: no values needed.

    `derivatives[j - 1]` is laid out as in `/v1/derivative`: a string for one scalar
    source, else nested lists of shape `[n] * j` over `sources` (default every variable,
    sorted; a tensor leaf counts as its elements, `w_0_1` for `w[0, 1]`). `latex` holds
    the same as LaTeX; with a value for every leaf, `values` holds the numbers there.
    Each expression is simplified within SymPy's budget (`DERIV_SYMPY_SECONDS`, twice);
    past it the text comes unsimplified with a note. A non-differentiable op is held
    constant (`floor' = 0`, `stop_gradient(x)` shown as such), and a note says so.

    Bounded before SymPy runs (422 naming the limit): `order` by
    `DERIV_MAX_DERIVATIVE_ORDER`; the nodes the target reads by `DERIV_SYMPY_MAX_NODES`
    and every tensor by `DERIV_SYMPY_MAX_ELEMENTS`; the laid-out strings
    (n + n² + ... + nᵏ) by 4096; the estimated symbolic work (`cost-limit`). The target
    must be a scalar. A 503 with `Retry-After` when every SymPy worker is busy.
    """,
)
