"""Response models (they document the wire) and the JSON response class that sends it.

Compute routes return data already encoded by ``app.wire.values``: the models
here generate the OpenAPI schema, while ``WireJSON`` serializes without a
second validation pass, which keeps small requests cheap.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.sending import PIECE_BYTES, send_in_pieces
from app.wire.values import EncodedValue
from app.wire.written import Pieces, body_parts


class WireJSON(JSONResponse):
    """``application/json`` from plain data; refuses bare NaN (the codec never emits it).

    A ``JSONResponse`` subclass so that FastAPI documents each route's ``response_model``
    (for any other response class it writes ``{"type": "string"}`` into the OpenAPI).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes | Pieces:  # type: ignore[override]
        # orjson: numpy arrays written natively (see values.encode_for_response); the codec
        # has already turned every non-finite number into its string. A large answer
        # stays in its parts (app.wire.written).
        parts = body_parts(content)
        if len(parts) == 1:
            return parts[0]  # type: ignore[return-value]  # orjson's own bytes
        body = Pieces(parts)
        return bytes(body) if len(body) <= PIECE_BYTES else body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if len(self.body) <= PIECE_BYTES:
            await super().__call__(scope, receive, send)
            return
        parts = self.body.parts if isinstance(self.body, Pieces) else [self.body]
        try:  # a large answer: a piece at a time (app.sending), its room held until then
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await send_in_pieces(send, parts)
        finally:
            if self.background is not None:
                await self.background()


class Note(BaseModel):
    """Why a gradient is null, a result is not finite, or a kink was met."""

    reason: str = Field(
        description=(
            "not_watched | unconnected | gradient_not_recorded | non_finite | kink | ignored_field"
            " | summed_targets (several targets: the derivatives are of their sum)"
        )
    )
    detail: str
    source: str | None = Field(default=None, description="The source the note is about.")
    node: str | None = Field(default=None, description="The node the note is about.")


class Check(BaseModel):
    """What an independent method (SymPy, finite differences) said about the result."""

    model_config = ConfigDict(extra="allow")

    method: Literal["sympy", "numeric", "none"]
    status: Literal["agree", "disagree", "skipped", "timeout"] = Field(description=(
        "`agree`: every entry compared is within the tolerance. Entries with no finite "
        "number on both sides (NaN against NaN, an undefined derivative) and entries at a "
        "kink are left out, and `detail` counts them; `skipped` when nothing is left to "
        "compare. A finite tape value where the reference has no real number (d/dy x**y "
        "at x <= 0, 0 by TensorFlow's convention) is a disagreement, and `detail` says so."))
    max_abs_error: EncodedValue | None = Field(
        default=None, description="Largest difference between the tape and the method."
    )
    tolerance: EncodedValue | None = Field(default=None, description="Relative tolerance used.")
    abs_tolerance: EncodedValue | None = Field(default=None, description="Absolute tolerance used.")
    detail: str = ""
    symbolic: dict[str, Any] = Field(
        default_factory=dict, description="SymPy derivatives as text, per quantity."
    )
    latex: dict[str, Any] = Field(default_factory=dict, description="The same, as LaTeX.")
    disagreements: list[dict[str, Any]] = Field(
        default_factory=list, description="The entries that differ beyond the tolerance."
    )
    compared: int | None = Field(default=None, description="Entries compared.")
    elapsed_ms: EncodedValue | None = Field(default=None, description="Time the check took.")


class TraceEntry(BaseModel):
    """One recorded op of the tape."""

    index: int
    op: str
    inputs: list[str]
    output: str
    shape: list[int]
    value: EncodedValue
    grad: EncodedValue | None = None
    attrs: dict[str, Any] = Field(default_factory=dict)


class TraceLeaf(BaseModel):
    """A tensor the entries read that no entry produced."""

    name: str = Field(description="The node id, or `node.inputs[i]` for an inline constant.")
    kind: Literal["leaf", "constant"] = Field(
        description="`leaf`: a variable or constant node; `constant`: an inline number."
    )
    shape: list[int]
    value: EncodedValue
    grad: EncodedValue | None = Field(
        default=None, description="The leaf's gradient, when the request computed it."
    )


class Trace(BaseModel):
    """The recorded tape, in recording order, with a printable one-line-per-entry text.

    The text opens with a jaxpr-like header, `{ lambda consts ; leaves. let`, listing
    the inline constants with their values and the leaves with their shapes; it ends
    with `in (results) }` and the leaves' gradients. Names are the same in `entries`,
    `leaves` and `text`. Hessians and higher derivatives trace the forward run and its
    first reverse sweep (what they differentiate again); with `points`, every value
    carries the points axis.
    """

    entries: list[TraceEntry]
    text: str
    leaves: list[TraceLeaf] = Field(
        default_factory=list, description="What the entries read that no entry produced."
    )


class _Common(BaseModel):
    outputs: dict[str, EncodedValue] = Field(description="Value of each target, by id.")
    notes: list[Note] = Field(
        description="One note per null gradient, non-finite result and kink met."
    )
    check: Check
    trace: Trace | None = Field(default=None, description="The tape, when `trace` was true.")
    points: int | None = Field(
        default=None,
        description="With `points`: how many; every value then has a leading axis of this size.",
    )


class EvaluateResponse(_Common):
    """Forward values of the targets."""


class GradientResponse(_Common):
    """Gradients of the (summed) target, one per source, each of the source's shape."""

    gradients: dict[str, EncodedValue | None] = Field(
        description="By source id; null when not watched or unconnected (see `notes`)."
    )


class JacobianResponse(_Common):
    """Full Jacobians, each of shape `target.shape + source.shape`."""

    jacobian: dict[str, dict[str, EncodedValue | None]] = Field(
        description="`jacobian[target][source]`; null when unconnected and `none` was asked."
    )


class Structure(BaseModel):
    """The sparsity structure detected from the graph, and the compression it allowed."""

    kind: Literal["zero", "diagonal", "banded", "block-diagonal", "sparse", "dense"]
    nnz: int = Field(description="Entries that may be non-zero (the detected pattern).")
    density: float = Field(description="`nnz` over all entries.")
    bandwidth: int = Field(description="Largest |row - column| of a possible non-zero.")
    blocks: int = Field(description="Diagonal blocks that nothing couples.")
    colours: int = Field(
        description="Seeds of the compressed sweep: columns sharing no row share a colour."
    )
    lower_bound: int = Field(description="Most non-zeros in one row: no colouring needs fewer.")
    colouring: str = Field(description="How the colours were found.")


class SparseMatrix(BaseModel):
    """A matrix as coordinate lists (COO): `matrix[rows[k]][cols[k]] = values[k]`."""

    shape: list[int]
    rows: list[int]
    cols: list[int]
    values: EncodedValue


class HessianResponse(_Common):
    """Second derivatives of a scalar target."""

    gradients: dict[str, EncodedValue | None]
    hessian: dict[str, dict[str, EncodedValue | None]] | None = Field(
        default=None,
        description=(
            "`hessian[si][sj]` of shape `si.shape + sj.shape`; null when the gradient of "
            "`si` has no path to `sj` and `none` was asked: the second derivative is 0 "
            "there, as `matrix` holds it, and a note says so. Absent with `format: coo`."
        ),
    )
    matrix: EncodedValue | None = Field(
        default=None,
        description=(
            "The same as one 2-D array over the flattened sources, in `sources` order "
            "(with `points`, one per point). Absent with `format: coo`."
        ),
    )
    sparse: SparseMatrix | None = Field(
        default=None, description="With `format: coo`: the non-zeros of `matrix`."
    )
    structure: Structure | None = Field(
        default=None, description="With `format: coo`: the structure detected from the graph."
    )


class DerivativeResponse(_Common):
    """Every derivative of a scalar target up to `order`, by scalar sources."""

    sources: list[str] = Field(description="The sources, in the order of every tensor axis.")
    order: int = Field(description="The highest order computed.")
    derivatives: list[EncodedValue] = Field(
        description=(
            "`derivatives[j - 1]` is the j-th derivative: a number for one source, else a "
            "nested array of shape `[n] * j` over `sources` (order 1 the gradient, 2 the "
            "Hessian, ...). Symmetric: mixed partials commute. A source with no path "
            "contributes zeros; `notes` says why."
        )
    )


class SymbolicLatex(BaseModel):
    """The function and its derivatives as LaTeX, laid out as the text is."""

    function: str
    derivatives: list[Any]


class SymbolicValues(BaseModel):
    """The function and its derivatives at the leaves' values, laid out as the text is."""

    function: EncodedValue
    derivatives: list[EncodedValue]


class SymbolicResponse(BaseModel):
    """A scalar function and every derivative up to `order`, as SymPy writes them."""

    function: str = Field(description="The target as one expression of the leaves.")
    derivatives: list[Any] = Field(
        description=(
            "`derivatives[j - 1]` is the j-th derivative: a string for one scalar source, "
            "else nested lists of shape `[n] * j` over `sources` (as `/v1/derivative`)."
        )
    )
    latex: SymbolicLatex
    values: SymbolicValues | None = Field(
        default=None,
        description="With a value for every leaf: the numbers there (NaN at a kink).",
    )
    sources: list[str] = Field(description="The scalar sources, in the order of every axis.")
    order: int
    target: str = Field(description="The node differentiated.")
    simplified: bool = Field(description="Whether every expression was simplified.")
    notes: list[Note] = Field(
        description=(
            "Conventions of non-differentiable ops (`floor' = 0`), expressions left "
            "unsimplified, kinks met."
        )
    )


class GraphInfo(BaseModel):
    """A registered graph's id and outline."""

    graph_id: str = Field(description="Send this as `graph_id` instead of the graph.")
    nodes: int = Field(description="Number of nodes.")
    leaves: list[str] = Field(description="Variables and constants, in the graph's order.")
    last: str = Field(description="The default target: the last node sent.")


class StoredGraphResponse(GraphInfo):
    """A registered graph with its validated nodes (attrs normalized, values as float64)."""

    graph: dict[str, list[dict[str, Any]]] = Field(
        description="`{\"nodes\": [...]}` in the order sent: POST it to register it again."
    )


class OpAttr(BaseModel):
    kind: str
    default: Any = None
    required: bool = False
    doc: str = ""


class OpInfo(BaseModel):
    """One op of the catalogue."""

    name: str
    arity: int | None = Field(description="Number of inputs; null: one or more.")
    attrs: dict[str, OpAttr]
    formula: str = Field(description="The op and its derivative.")
    convention: str = Field(description="Derivative at kinks and ties, as TensorFlow defines it.")
    family: str


class OpsResponse(BaseModel):
    ops: list[OpInfo]


class Health(BaseModel):
    status: str
