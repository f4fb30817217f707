"""The only bridge from the web layer to the engine.

A validated request becomes a graph (``build_graph`` or ``parse_expression``),
then an engine ``Query`` run under the time budget, then an independent check,
then plain JSON data encoded by the value codec. Engine errors pass through
untouched; ``app.main`` maps each class to a problem with ``ERROR_PROBLEMS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from app import observability
from app.admission import Admission
from app.graph_store import GraphNotFound, GraphStore, GraphTooLarge, StoredGraph, graph_id
from app.settings import Settings
from app.wire.requests import ComputeRequest, DerivativeRequest, GraphRequest, HessianRequest
from app.wire.requests import Graph as WireGraph
from app.wire.values import MAX_RANK, encode, encode_for_response, jsonable
from engine import budget, cost
from engine.check import higher_check, sympy_worker, verify
from engine.derive import points
from engine.derive.kinds import KINDS, Kind
from engine.derive.query import Query, Result
from engine.errors import (
    AttrError,
    BudgetExceeded,
    ComputeLimitError,
    CostError,
    EngineError,
    ExpressionError,
    GraphError,
    LimitError,
    ShapeError,
)
from engine.graphs.expression import parse_expression
from engine.graphs.graph import Graph, Limits, build_graph
from engine.graphs.prepared import PreparedGraph
from engine.ops import OPS

# (engine error class, HTTP status, problem type slug, title); the most specific first.
# A LimitError on what a request *contains* (bytes, nodes, a tensor sent) is a 413: it
# must shrink to succeed. One on what it would *compute* (shapes it produces, entries or
# order of a derivative: ComputeLimitError) and one on its estimated cost (CostError) are
# 422s, as the wire contract says: the body is fine, what it asks for is too much.
# A time-budget overrun is a deterministic property of the request, not an outage:
# 422, not 503 (which would invite retries) nor 408 (the client was not slow).
ERROR_PROBLEMS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (GraphError, 422, "invalid-graph", "Invalid graph"),
    (AttrError, 422, "invalid-attrs", "Invalid op attributes"),
    (ShapeError, 422, "shape-mismatch", "Incompatible shapes"),
    (ExpressionError, 422, "invalid-expression", "Invalid expression"),
    (ComputeLimitError, 422, "compute-limit", "Over a compute limit"),
    (LimitError, 413, "limit-exceeded", "Content Too Large"),
    (CostError, 422, "cost-limit", "Over a cost limit"),
    (BudgetExceeded, 422, "time-budget", "Time budget exceeded"),
    (EngineError, 422, "invalid-request", "Invalid request"),
    (GraphNotFound, 404, "graph-not-found", "Graph not found"),
    (GraphTooLarge, 413, "limit-exceeded", "Content Too Large"),
)

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
        max_rank=MAX_RANK,
        max_derivative_work=settings.max_derivative_work,
        max_points=settings.max_points,
        dense_max_sources=settings.dense_max_sources,
    )


def cost_limits(settings: Settings) -> cost.CostLimits:
    return cost.CostLimits(
        max_work=settings.max_work,
        max_bytes=settings.max_request_bytes,
        max_response_bytes=settings.max_response_bytes,
    )


# Estimated work under which a request computes on the event loop (app.dispatch): about
# 0.2 ms, the seed's examples and graphs of a dozen small nodes. Anything costlier goes to
# a worker thread, through admission control.
INLINE_MAX_WORK = 200_000.0


class _Estimated(Exception):
    """Stops a dry run (``Service.estimate``) once the estimate is known."""


class NotInline(Exception):
    """A request sent to run inline turned out, once its shapes were known, to cost more
    than the event loop may spend: run it in a worker thread instead."""


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
        self.cost_limits = cost_limits(settings)
        self.admission = Admission(settings.memory_budget_bytes, settings.max_running,
                                   settings.admission_wait_seconds)
        self.catalogue_json = json.dumps({"ops": catalogue()}, separators=(",", ":")).encode()
        self.graphs = GraphStore(settings.graph_cache_size, settings.graph_cache_nodes,
                                 settings.graph_cache_bytes)

    def start(self) -> None:
        """Warm the SymPy workers, so the first check does not pay their start-up."""
        sympy_worker.start(self.settings.sympy_workers)

    def stop(self) -> None:
        """Stop the SymPy workers."""
        sympy_worker.shutdown()

    def ready(self) -> bool:
        """The op table is loaded (SymPy workers are optional: checks degrade to numeric)."""
        return bool(OPS)

    def run(self, kind: str, request: ComputeRequest, *, inline: bool = False,
            cancel: budget.Cancel | None = None, held: list[float] | None = None
            ) -> dict[str, Any]:
        """One compute request, as the response's JSON data.

        Its cost is estimated once its shapes are known and before anything runs: past
        the cost limits it is refused (CostError); ``inline`` (on the event loop) it must
        be tiny (else NotInline); in a worker thread it waits for room in the process's
        memory budget (else Saturated). ``cancel`` stops it at the next op boundary.
        The room it was admitted with is given back on return, unless the caller passes
        ``held``: then the caller gives it back (``release``), once the answer is sent.
        An estimate that grows once more is known (a sparse Hessian's colours) takes the
        difference too.
        """
        mine: list[float] = [] if held is None else held

        def admit(estimate: cost.Estimate) -> None:
            if inline:
                if estimate.work > INLINE_MAX_WORK:
                    raise NotInline
                return
            if not mine:
                self.admission.enter(estimate.bytes)
                mine.append(estimate.bytes)
            elif estimate.bytes > sum(mine):
                more = estimate.bytes - sum(mine)
                self.admission.grow(more)
                mine.append(more)

        try:
            return self._run(kind, request, admit, cancel)
        finally:
            if held is None:
                self.release(mine)

    def estimate(self, kind: str, request: ComputeRequest) -> cost.Estimate:
        """What ``request`` would cost, from its shapes, without computing it (a dry run,
        to size requests against the limits); a CostError where ``run`` would refuse it."""
        seen: list[cost.Estimate] = []

        def stop(estimate: cost.Estimate) -> None:
            seen.append(estimate)
            raise _Estimated

        try:
            self._run(kind, request, stop, None)
        except _Estimated:
            return seen[0]
        raise AssertionError(f"{kind} computed without an estimate")  # every kind charges

    def release(self, held: list[float]) -> None:
        """Give back the room ``run`` was admitted with (see ``run``'s ``held``): its slot
        and every byte, once (the list is emptied)."""
        if held:
            total = sum(held)
            held.clear()
            self.admission.leave(total)

    def _run(self, kind: str, request: ComputeRequest,
             admit: Callable[[cost.Estimate], None], cancel: budget.Cancel | None
             ) -> dict[str, Any]:
        with budget.time_budget(self.settings.time_budget_seconds, cancel):
            query = Query(
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
                format=request.format if isinstance(request, HessianRequest) else "dense",
                cost_limits=self.cost_limits,
                admit=admit,
                order=request.order if isinstance(request, DerivativeRequest) else 1,
                max_order=self.settings.max_derivative_order,
            )
            observability.note_graph(len(query.graph.nodes))  # for the request's log line
            order = request.order if isinstance(request, DerivativeRequest) else 0
            if request.points is not None:
                result = _at_points(KINDS[kind], query, request.points)
            else:
                result = KINDS[kind].compute(query)
            budget.check(f"the {kind} computation")
        checked_query, checked = query, result
        if request.points is not None:  # the check runs on the first point
            checked_query, checked = points.first_point(query, request.points, result)
        report = self._check(kind, checked_query, checked, request.check, order)
        observability.note_check(report.method, report.status)
        return render(kind, result, report)

    def _graph(self, request: ComputeRequest) -> Graph:
        if request.graph_id is not None:
            return self.graphs.get(request.graph_id).graph
        return self._build(request.graph, request.expression)

    def _build(self, graph: WireGraph | None, expression: str | None) -> Graph:
        if graph is not None:
            return build_graph([_node_dict(n) for n in graph.nodes], self.limits)
        return parse_expression(expression or "", self.limits)

    # -------------------------------------------------------------- registered graphs

    def register(self, request: GraphRequest) -> tuple[dict[str, Any], bool]:
        """Validate and store a graph under its content hash: (its outline, whether it is new)."""
        with budget.time_budget(self.settings.time_budget_seconds):
            graph = PreparedGraph.of(self._build(request.graph, request.expression))
            sent = request.graph.nodes if request.graph is not None else None
            order = tuple(n.id for n in sent) if sent is not None else tuple(graph.nodes)
            gid = graph_id([_canonical(graph.nodes[i]) for i in order])
        stored, created = self.graphs.put(
            StoredGraph(gid, graph, order, tuple(graph.leaves), graph.last,
                        cost.graph_bytes(graph))
        )
        return stored.info(), created

    def describe(self, gid: str) -> dict[str, Any]:
        """A registered graph's outline and its validated nodes in wire form."""
        stored = self.graphs.get(gid)
        nodes = [_wire_node(stored.graph.nodes[i]) for i in stored.order]
        return {**stored.info(), "graph": {"nodes": nodes}}

    def forget(self, gid: str) -> None:
        """Delete a registered graph (GraphNotFound if absent)."""
        self.graphs.delete(gid)

    def _check(
        self,
        kind: str,
        query: Query,
        result: Result,
        method: str,
        order: int = 0,
    ) -> verify.CheckReport:
        """The cross-check runs under its own budget; running out is a status, not an error."""
        try:
            with budget.time_budget(self.settings.time_budget_seconds):
                if kind == "derivative":
                    return higher_check.check(query, result, order, method, self.check_limits)
                return verify.check(kind, query, result, method, self.check_limits)
        except BudgetExceeded as exc:
            ran = method if method in ("sympy", "numeric") else "none"
            return verify.CheckReport(method=ran, status="timeout", detail=exc.detail)


def _at_points(kind: Kind, query: Query, at: Any) -> Result:
    """``kind`` over a batch of points; a kind that takes none is the client's error."""
    if kind.over_points is None:
        raise GraphError(
            f"points are not taken by /v1/{kind.name}; evaluate, gradient and hessian take them",
            field="points",
        )
    return kind.over_points(query, at)


def _node_dict(node: Any) -> dict[str, Any]:
    """A wire node as the engine's node mapping: only the keys the client sent."""
    out = {}
    for key in node.model_fields_set:
        value = getattr(node, key)
        if value is not None:
            out[key] = value
    return out


def _canonical(node: Any) -> list[Any]:
    """A validated node as plain data for the content hash; a reference and an inline
    constant stay distinct even when the constant is the string "NaN"."""
    inputs = [["r", x] if type(x) is str else ["c", encode(x.value)] for x in node.inputs]
    value = None if node.value is None else encode(node.value)
    return [node.id, node.op, inputs, jsonable(node.attrs), value, node.trainable]


def _wire_node(node: Any) -> dict[str, Any]:
    """A validated node as the wire writes it: only what differs from the defaults."""
    out: dict[str, Any] = {"id": node.id, "op": node.op}
    if node.inputs:
        out["inputs"] = [x if type(x) is str else encode(x.value) for x in node.inputs]
    if node.attrs:
        out["attrs"] = jsonable(node.attrs)
    if node.value is not None:
        out["value"] = encode(node.value)
    if not node.trainable:
        out["trainable"] = False
    return out


# ------------------------------------------------------------------ rendering


def render(kind: str, result: Result, report: verify.CheckReport) -> dict[str, Any]:
    """A result and its check report as JSON data; every number through the codec."""
    wire = encode_for_response
    body: dict[str, Any] = {"outputs": {k: wire(v) for k, v in result.outputs.items()}}
    if kind in ("gradient", "hessian"):
        body["gradients"] = {k: wire(v) for k, v in (result.gradients or {}).items()}
    if kind == "jacobian":
        body["jacobian"] = {
            t: {s: wire(v) for s, v in row.items()} for t, row in (result.jacobian or {}).items()
        }
    if kind == "hessian" and result.sparse is not None:
        h = result.sparse
        body["sparse"] = {"shape": list(h.shape), "rows": h.rows, "cols": h.cols,
                          "values": wire(h.values)}
        body["structure"] = asdict(h.structure)
    elif kind == "hessian":
        body["hessian"] = {
            a: {b: wire(v) for b, v in row.items()} for a, row in (result.hessian or {}).items()
        }
        body["matrix"] = wire(result.matrix)
    if kind == "derivative":
        body["sources"] = list(result.sources)
        body["order"] = len(result.derivatives or ())
        body["derivatives"] = [wire(d) for d in result.derivatives or ()]
    body["notes"] = [_note(n) for n in result.notes]
    body["check"] = {name: jsonable(getattr(report, name)) for name in _CHECK_FIELDS}
    body["trace"] = None if result.trace is None else _trace(result.trace)
    if result.points is not None:
        body["points"] = result.points
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
