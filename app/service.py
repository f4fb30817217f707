"""The only bridge from the web layer to the engine.

A validated request becomes a graph (``build_graph`` or ``parse_expression``),
then an engine ``Query`` run under the time budget, then an independent check,
then plain JSON data encoded by the value codec. Engine errors pass through
untouched; ``app.main`` maps each class to a problem with ``ERROR_PROBLEMS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from app.settings import Settings
from app.wire.requests import ComputeRequest
from app.wire.values import MAX_RANK, encode, jsonable
from engine import budget, derivatives, sympy_worker, verify
from engine.errors import (
    AttrError,
    BudgetExceeded,
    EngineError,
    ExpressionError,
    GraphError,
    LimitError,
    ShapeError,
)
from engine.expression import parse_expression
from engine.graph import Graph, Limits, build_graph
from engine.ops import OPS

# (engine error class, HTTP status, problem type slug, title); the most specific first.
# Every LimitError is a 413: each limit bounds the size of what a request asks for
# (bytes, nodes, elements, entries of a derivative), so it must shrink to succeed.
# A time-budget overrun is a deterministic property of the request, not an outage:
# 422, not 503 (which would invite retries) nor 408 (the client was not slow).
ERROR_PROBLEMS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (GraphError, 422, "invalid-graph", "Invalid graph"),
    (AttrError, 422, "invalid-attrs", "Invalid op attributes"),
    (ShapeError, 422, "shape-mismatch", "Incompatible shapes"),
    (ExpressionError, 422, "invalid-expression", "Invalid expression"),
    (LimitError, 413, "limit-exceeded", "Content Too Large"),
    (BudgetExceeded, 422, "time-budget", "Time budget exceeded"),
    (EngineError, 422, "invalid-request", "Invalid request"),
)

KINDS: dict[str, Callable[[derivatives.Query], derivatives.Result]] = {
    "evaluate": derivatives.evaluate,
    "gradient": derivatives.gradient,
    "jacobian": derivatives.jacobian,
    "hessian": derivatives.hessian,
}

LEAVES = (
    {
        "name": "variable",
        "arity": 0,
        "attrs": {},
        "formula": "a leaf; its value comes from `values` or the node's `value`",
        "convention": "watched automatically, as tf.Variable; `trainable: false` unwatched "
        "unless listed in `watch`",
        "family": "leaf",
    },
    {
        "name": "constant",
        "arity": 0,
        "attrs": {},
        "formula": "a leaf; its value comes from `values` or the node's `value`",
        "convention": "not watched unless listed in `watch`, as tf.constant",
        "family": "leaf",
    },
)


def engine_limits(settings: Settings) -> Limits:
    """The one place where settings become the engine's limits."""
    return Limits(
        max_nodes=settings.max_nodes,
        max_elements=settings.max_tensor_elements,
        max_total_elements=settings.max_total_elements,
        max_inputs=settings.max_inputs,
        max_expression_length=settings.max_expression_chars,
        max_expression_depth=settings.max_expression_depth,
        max_value_depth=MAX_RANK,
        max_derivative_work=settings.max_derivative_work,
    )


def check_limits(settings: Settings) -> verify.CheckLimits:
    return verify.CheckLimits(
        sympy_max_nodes=settings.sympy_max_nodes,
        sympy_max_elements=settings.sympy_max_elements,
        numeric_max_elements=settings.numeric_max_elements,
        sympy_seconds=settings.sympy_seconds,
        numeric_seconds=settings.numeric_seconds,
        sympy_workers=settings.sympy_workers,
    )


class Service:
    """Runs requests against the engine with the limits of one ``Settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = engine_limits(settings)
        self.check_limits = check_limits(settings)
        self.catalogue_json = json.dumps({"ops": catalogue()}, separators=(",", ":")).encode()

    def start(self) -> None:
        """Warm the SymPy workers, so the first check does not pay their start-up."""
        sympy_worker.start(self.settings.sympy_workers)

    def stop(self) -> None:
        """Stop the SymPy workers."""
        sympy_worker.shutdown()

    def ready(self) -> bool:
        """The op table is loaded (SymPy workers are optional: checks degrade to numeric)."""
        return bool(OPS)

    def run(self, kind: str, request: ComputeRequest) -> dict[str, Any]:
        """One compute request, as the response's JSON data."""
        with budget.time_budget(self.settings.time_budget_seconds):
            query = derivatives.Query(
                graph=self._graph(request),
                values=request.values,
                target=request.target,
                sources=request.sources,
                watch=tuple(request.watch),
                watch_accessed_variables=request.watch_accessed_variables,
                unconnected_gradients=request.unconnected_gradients,
                output_gradients=request.output_gradients,
                trace=request.trace,
                limits=self.limits,
            )
            result = KINDS[kind](query)
            budget.check(f"the {kind} computation")
        return render(kind, result, self._check(kind, query, result, request.check))

    def _graph(self, request: ComputeRequest) -> Graph:
        if request.graph is not None:
            return build_graph([_node_dict(n) for n in request.graph.nodes], self.limits)
        return parse_expression(request.expression or "", self.limits)

    def _check(
        self, kind: str, query: derivatives.Query, result: derivatives.Result, method: str
    ) -> verify.CheckReport:
        """The cross-check runs under its own budget; running out is a status, not an error."""
        try:
            with budget.time_budget(self.settings.time_budget_seconds):
                return verify.check(kind, query, result, method, self.check_limits)
        except BudgetExceeded as exc:
            ran = method if method in ("sympy", "numeric") else "none"
            return verify.CheckReport(method=ran, status="timeout", detail=exc.detail)


def _node_dict(node: Any) -> dict[str, Any]:
    """A wire node as the engine's node mapping: only the keys the client sent."""
    out = {}
    for key in node.model_fields_set:
        value = getattr(node, key)
        if value is not None:
            out[key] = value
    return out


# ------------------------------------------------------------------ rendering


def render(kind: str, result: derivatives.Result, report: verify.CheckReport) -> dict[str, Any]:
    """A result and its check report as JSON data; every number through the codec."""
    body: dict[str, Any] = {"outputs": {k: encode(v) for k, v in result.outputs.items()}}
    if kind in ("gradient", "hessian"):
        body["gradients"] = {k: encode(v) for k, v in (result.gradients or {}).items()}
    if kind == "jacobian":
        body["jacobian"] = {
            t: {s: encode(v) for s, v in row.items()} for t, row in (result.jacobian or {}).items()
        }
    if kind == "hessian":
        body["hessian"] = {
            a: {b: encode(v) for b, v in row.items()} for a, row in (result.hessian or {}).items()
        }
        body["matrix"] = encode(result.matrix)
    body["notes"] = [_note(n) for n in result.notes]
    body["check"] = {name: jsonable(getattr(report, name)) for name in _CHECK_FIELDS}
    body["trace"] = None if result.trace is None else _trace(result.trace)
    return body


_CHECK_FIELDS = tuple(f.name for f in fields(verify.CheckReport))


def _note(note: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if note.source is not None:
        out["source"] = note.source
    if note.node is not None:
        out["node"] = note.node
    out["reason"] = note.reason
    out["detail"] = note.detail
    return out


def _trace(trace: Any) -> dict[str, Any]:
    return {
        "entries": [
            {
                "index": e.index,
                "op": e.op,
                "inputs": list(e.inputs),
                "output": e.output,
                "shape": list(e.shape),
                "value": encode(e.value),
                "grad": encode(e.grad),
                "attrs": jsonable(e.attrs),
            }
            for e in trace.entries
        ],
        "text": trace.text,
    }


def catalogue() -> list[dict[str, Any]]:
    """The op table as the wire shows it: leaves first, then every op."""
    ops = [
        {
            "name": op.name,
            "arity": op.arity,
            "attrs": {
                name: {
                    "kind": a.kind,
                    "default": jsonable(a.default),
                    "required": a.required,
                    "doc": a.doc,
                }
                for name, a in op.attrs.items()
            },
            "formula": op.formula,
            "convention": op.convention,
            "family": op.family,
        }
        for op in OPS.values()
    ]
    return [*LEAVES, *ops]
