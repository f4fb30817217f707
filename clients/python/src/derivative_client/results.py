"""Typed results: one class per endpoint, values decoded (arrays as numpy when installed).

Every result keeps the response's JSON as ``raw`` for fields this version does not name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .values import decode, decode_map


@dataclass(frozen=True)
class Note:
    """Why a gradient is null, where a value became non-finite, which kink was met."""

    reason: str
    detail: str
    source: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class Check:
    """The service's independent cross-check of the answer (SymPy or finite differences)."""

    method: str
    status: str
    detail: str = ""
    max_abs_error: float | None = None
    symbolic: dict[str, Any] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return self.status == "agree"

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Check:
        data = data or {"method": "none", "status": "skipped"}
        return cls(
            method=data["method"],
            status=data["status"],
            detail=data.get("detail", ""),
            max_abs_error=decode(data.get("max_abs_error")),
            symbolic=data.get("symbolic") or {},
        )


@dataclass(frozen=True)
class Result:
    """What every compute endpoint answers: the targets' values, notes and the check."""

    outputs: dict[str, Any]
    notes: list[Note]
    check: Check
    trace: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def _common(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "outputs": decode_map(data.get("outputs")),
            "notes": [Note(**_known(note, Note)) for note in data.get("notes", [])],
            "check": Check.from_json(data.get("check")),
            "trace": data.get("trace"),
            "raw": data,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(**cls._common(data))


@dataclass(frozen=True)
class GradientResult(Result):
    """``gradients[source]``: the source's shape, or None when there is no path (see notes)."""

    gradients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GradientResult:
        return cls(**cls._common(data), gradients=decode_map(data.get("gradients")))


@dataclass(frozen=True)
class JacobianResult(Result):
    """``jacobian[target][source]`` of shape ``target.shape + source.shape``."""

    jacobian: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JacobianResult:
        blocks = {t: decode_map(row) for t, row in (data.get("jacobian") or {}).items()}
        return cls(**cls._common(data), jacobian=blocks)


@dataclass(frozen=True)
class HessianResult(Result):
    """Dense: ``hessian[si][sj]`` blocks and the flattened ``matrix``; sparse: ``sparse``
    coordinates (``rows``, ``cols``, ``values``, ``shape``) and the ``structure`` found."""

    gradients: dict[str, Any] = field(default_factory=dict)
    hessian: dict[str, dict[str, Any]] | None = None
    matrix: Any = None
    sparse: dict[str, Any] | None = None
    structure: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HessianResult:
        blocks = data.get("hessian")
        sparse = data.get("sparse")
        if sparse is not None:
            sparse = {**sparse, "values": decode(sparse["values"])}
        return cls(
            **cls._common(data),
            gradients=decode_map(data.get("gradients")),
            hessian=None if blocks is None else {s: decode_map(r) for s, r in blocks.items()},
            matrix=decode(data.get("matrix")),
            sparse=sparse,
            structure=data.get("structure"),
        )


@dataclass(frozen=True)
class DerivativeResult(Result):
    """``derivatives[k-1]``: every k-th derivative, one axis per order over ``sources``."""

    sources: list[str] = field(default_factory=list)
    order: int = 0
    derivatives: list[Any] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DerivativeResult:
        return cls(
            **cls._common(data),
            sources=list(data.get("sources", [])),
            order=int(data.get("order", 0)),
            derivatives=[decode(d) for d in data.get("derivatives", [])],
        )


@dataclass(frozen=True)
class SymbolicResult:
    """The function and its derivatives as text (and LaTeX): ``derivatives[j-1]`` is laid
    out as in ``/v1/derivative`` over ``sources``; ``values`` holds their numbers when
    every leaf had a value."""

    function: str
    derivatives: list[Any]
    latex: dict[str, Any]
    values: dict[str, Any] | None
    sources: list[str]
    order: int
    notes: list[Note]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SymbolicResult:
        values = data.get("values")
        if values is not None:
            values = {
                "function": decode(values.get("function")),
                "derivatives": [decode(d) for d in values.get("derivatives", [])],
            }
        return cls(
            function=data.get("function", ""),
            derivatives=list(data.get("derivatives", [])),
            latex=data.get("latex") or {},
            values=values,
            sources=list(data.get("sources", [])),
            order=int(data.get("order", 1)),
            notes=[Note(**_known(note, Note)) for note in data.get("notes", [])],
            raw=data,
        )


@dataclass(frozen=True)
class GraphInfo:
    """A registered graph: pass it (or its ``graph_id``) where a graph goes."""

    graph_id: str
    nodes: int
    leaves: list[str]
    last: str
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraphInfo:
        return cls(data["graph_id"], data["nodes"], list(data["leaves"]), data["last"], data)


def _known(data: dict[str, Any], cls: type) -> dict[str, Any]:
    """The members ``cls`` names: a newer service may send more."""
    return {key: value for key, value in data.items() if key in cls.__dataclass_fields__}


RESULTS: dict[str, type[Result]] = {
    "evaluate": Result,
    "gradient": GradientResult,
    "jacobian": JacobianResult,
    "hessian": HessianResult,
    "derivative": DerivativeResult,
}
