"""The only bridge from the web layer to the engine: orchestration.

A validated request becomes a graph (``build_graph`` or ``parse_named``),
then an engine ``Query`` run under the time budget as its endpoint's kind says
(``app.endpoints``), then an independent check, then the endpoint's JSON data
(``app.rendering``). Engine errors pass through untouched; ``app.main`` maps each
class to a problem with ``app.problems.ERROR_PROBLEMS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from app import observability
from app.admission import Admission, Saturated
from app.endpoints import Endpoint
from app.graph_codec import UnreadableGraph
from app.graph_forms import (
    given_names,
    graph_id,
    structure_key,
    target_of,
    text_of,
    wire_node,
)
from app.graph_store import StoredGraph
from app.limits import check_limits, cost_limits, engine_limits
from app.op_catalogue import catalogue
from app.settings import Settings
from app.store_backends import open_graph_store
from app.wire.node_form import FormNode
from app.wire.requests import (
    ComputeRequest,
    DerivativeRequest,
    GraphRequest,
    HessianRequest,
    SymbolicRequest,
)
from app.wire.requests import Graph as WireGraph
from app.wire.requests import Node as WireNode
from engine import budget, cost
from engine.check import shared_checks, symbolic_query, sympy_pool, verify
from engine.check.agreement import CheckReport
from engine.check.shared_checks import NotLocal
from engine.check.symbolic_query import SymbolicQuery, SymbolicResult
from engine.derive import points
from engine.derive.kinds import Kind
from engine.derive.query import Query, Result
from engine.errors import BudgetExceeded, EngineError, GraphError
from engine.graphs.build import build_graph, check_node
from engine.graphs.expression import parse_named
from engine.graphs.graph import Graph, Limits, Node
from engine.graphs.plans import PlanCache
from engine.graphs.reusable import ReusableGraph
from engine.ops import OPS
from engine.tape.collector import collector_paused

# Estimated work under which a request computes on the event loop (app.dispatch): about
# 0.2 ms, the seed's examples and graphs of a dozen small nodes; about 2 ms when no other
# compute request is in flight (nobody waits behind it). Anything costlier, or needing
# more memory than INLINE_MAX_BYTES, goes to a worker thread, through admission control.
INLINE_MAX_WORK = 200_000.0
INLINE_ALONE_MAX_WORK = 2_000_000.0
INLINE_MAX_BYTES = 16 * 2**20
# Value names in the key of a parsed expression kept for reuse (the names decide its
# refusals), and their characters; a request naming more parses afresh, so a key is never
# a body's worth of names (one name may be as long as the body).
MAX_KEYED_NAMES = 64
MAX_KEYED_NAME_CHARS = 4096


class _Estimated(Exception):
    """Stops a dry run (``Service.estimate``) once the estimate is known."""


class NotInline(Exception):
    """A request sent to run inline turned out, once its shapes were known, to cost more
    than the event loop may spend, or its check to need more than SymPy's derivative
    compiled here (a worker, the shared store, finite differences): run it in a worker
    thread instead."""


class Service:
    """Runs requests against the engine with the limits of one ``Settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = engine_limits(settings)
        self.check_limits = check_limits(settings)
        self.cost_limits = cost_limits(settings)
        self.admission = Admission(settings.memory_budget_bytes, settings.max_running,
                                   settings.admission_wait_seconds)
        # inline graphs sent again are built once: at the defaults, four graphs of the
        # largest size (a built 10,000-node chain keeps about 6 MB), so that a few clients
        # each looping over its own big graph do not evict one another's
        self.plans = PlanCache(max_nodes=settings.plan_cache_nodes)
        self.catalogue_json = json.dumps({"ops": catalogue()}, separators=(",", ":")).encode()
        self.graphs = open_graph_store(settings, self._restore)
        # SymPy's derivatives are shared where the graphs are (None: within this process)
        shared_checks.configure(getattr(self.graphs, "checks", None))

    def start(self) -> None:
        """Warm the SymPy workers, so the first check does not pay their start-up."""
        sympy_pool.start(self.settings.sympy_workers)

    def stop(self) -> None:
        """Stop the SymPy workers."""
        sympy_pool.shutdown()

    def ready(self) -> bool:
        """The op table is loaded (SymPy workers are optional: checks degrade to numeric)."""
        return bool(OPS)

    def store_state(self) -> str:
        """``ready``, or ``degraded`` while the shared graph store is unreachable (blocking:
        it may ask Redis)."""
        return self.graphs.state()

    def run(self, endpoint: Endpoint, request: ComputeRequest, *, inline: float = 0.0,
            cancel: budget.Cancel | None = None, held: list[float] | None = None
            ) -> dict[str, Any]:
        """One compute request, as the response's JSON data.

        Its cost is estimated once its shapes are known and before anything runs: past
        the cost limits it is refused (CostError); ``inline`` (on the event loop, at most
        that much work) it must be tiny (else NotInline); in a worker thread (``inline``
        0) it waits for room in the process's memory budget (else Saturated). ``cancel``
        stops it at the next op boundary.
        The room it was admitted with is given back on return, unless the caller passes
        ``held``: then the caller gives it back (``release``), once the answer is sent.
        An estimate that grows once more is known (a sparse Hessian's colours) takes the
        difference too.
        """
        mine: list[float] = [] if held is None else held

        def admit(estimate: cost.Estimate) -> None:
            if inline:
                if estimate.work > inline or estimate.bytes > INLINE_MAX_BYTES:
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
            return self._run(endpoint, request, admit, cancel, local_check=bool(inline))
        finally:
            if held is None:
                self.release(mine)

    def estimate(self, endpoint: Endpoint, request: ComputeRequest) -> cost.Estimate:
        """What ``request`` would cost, from its shapes, without computing it (a dry run,
        to size requests against the limits); a CostError where ``run`` would refuse it
        from its shapes alone. A Hessian priced by its colouring (format coo, or a dense
        one whose n-seed sweep is over the limits) is estimated at one colour here: its
        colours, known once it records, may still refuse it."""
        seen: list[cost.Estimate] = []

        def stop(estimate: cost.Estimate) -> None:
            seen.append(estimate)
            raise _Estimated

        try:
            self._run(endpoint, request, stop, None)
        except _Estimated:
            return seen[0]
        raise AssertionError(f"{endpoint.name} computed without an estimate")  # all charge

    def release(self, held: list[float]) -> None:
        """Give back the room ``run`` was admitted with (see ``run``'s ``held``): its slot
        and every byte, once (the list is emptied)."""
        if held:
            total = sum(held)
            held.clear()
            self.admission.leave(total)

    def _run(self, endpoint: Endpoint, request: ComputeRequest,
             admit: Callable[[cost.Estimate], None], cancel: budget.Cancel | None,
             local_check: bool = False) -> dict[str, Any]:
        kind = endpoint.kind
        with budget.time_budget(self.settings.time_budget_seconds, cancel):
            query = Query(
                graph=self.graph_of(request),
                values=request.values,
                target=target_of(request),
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
            if request.points is not None and kind.over_points is None:
                raise GraphError(
                    f"points are not taken by /v1/{kind.name}; evaluate, gradient and hessian "
                    "take them",
                    field="points",
                )
            # the collector's rescans of a big graph's shapes, costs and tensors (all alive
            # till the answer) cost more than the work; the tapes pause it as they record
            with collector_paused:
                if request.points is None:
                    result = kind.compute(query)
                else:
                    result = kind.over_points(query, request.points)
            budget.check(f"the {kind.name} computation")
        checked_query, checked = query, result
        if request.points is not None:  # the check runs on the first point
            checked_query, checked = points.first_point(query, request.points, result)
        report = self._check(kind, checked_query, checked, request.check, local_check)
        observability.note_check(report.method, report.status)
        return endpoint.render(result, report)

    def graph_of(self, request: ComputeRequest) -> Graph:
        """The request's graph, whichever of its three forms it came in (by id, JSON, text):
        every endpoint that computes on a graph builds it here."""
        if request.graph_id is not None:
            return self.graphs.get(request.graph_id).graph
        return self._build(request.graph, text_of(request), given_names(request))

    def symbolic(self, request: SymbolicRequest) -> SymbolicResult:
        """The function and its derivatives as SymPy writes them (engine.check.symbolic_query):
        Saturated when no SymPy worker is free."""
        with budget.time_budget(self.settings.time_budget_seconds):
            graph = self.graph_of(request)  # type: ignore[arg-type]  # the same three forms
            query = SymbolicQuery(
                graph, request.values, sources=request.sources, order=request.order,
                simplify=request.simplify, target=request.target, limits=self.limits,
                check_limits=self.check_limits, max_order=self.settings.max_derivative_order,
                max_response_bytes=self.settings.max_response_bytes,
            )
        observability.note_graph(len(graph.nodes))
        try:
            return symbolic_query.symbolic(query)
        except sympy_pool.WorkerBusy as exc:
            raise Saturated(f"{exc}; try again shortly", retry_after=1,
                            limit="sympy_workers") from None

    def _build(self, graph: WireGraph | None, expression: str | Mapping[str, str] | None,
               given: Collection[str] = ()) -> Graph:
        if graph is not None:
            wire = graph.nodes
            built: Graph | None = getattr(wire, "built", None)
            if built is not None:  # built for this request before, and its JSON let go
                return built
            # a long list's JSON digest (app.wire.node_form) is a key already: its nodes
            # are then not read at all when the plan is known
            key: Any = getattr(wire, "digest", None)
            if key is None:
                with collector_paused:  # a key of a tuple per node: no rescans meanwhile
                    key = structure_key(wire)
            built = self.plans.get(key, lambda: build_graph(wire, self.limits, _engine_node))
            release = getattr(wire, "release", None)
            if release is not None:  # a long list's JSON, not needed from here on
                release(built)
            return built
        text = "" if expression is None else expression

        def parse() -> Graph:
            return parse_named(text, self.limits, given).graph

        names = frozenset(given)
        if len(names) > MAX_KEYED_NAMES or sum(map(len, names)) > MAX_KEYED_NAME_CHARS:
            return parse()  # a key to hold: too large
        # the same text with the same named values parses to the same graph (the names
        # only decide its refusals), so a client's loop over new values parses it once
        spelled = text if isinstance(text, str) else tuple(text.items())
        return self.plans.get(("expression", spelled, names), parse)

    # -------------------------------------------------------------- registered graphs

    def register(self, request: GraphRequest) -> tuple[dict[str, Any], bool]:
        """Validate and store a graph under its content hash: (its outline, whether it is new)."""
        with budget.time_budget(self.settings.time_budget_seconds):
            stored = self._stored(request.graph, request.expression)
        stored, created = self.graphs.put(stored)
        return stored.info(), created

    def _stored(self, wire: WireGraph | None, expression: str | None) -> StoredGraph:
        # the ids in the order sent, read before _build lets a long list's JSON go
        order = None if wire is None else tuple([n.id for n in wire.nodes])
        graph = ReusableGraph.of(self._build(wire, expression))
        if order is None:
            order = tuple(graph.nodes)
        gid = graph_id(graph.nodes[i] for i in order)
        return StoredGraph(gid, graph, order, tuple(graph.leaves), graph.last,
                           cost.graph_bytes(graph))

    def _restore(self, gid: str, nodes: list[dict[str, Any]]) -> StoredGraph:
        """A graph a shared store kept, validated again as if just sent; UnreadableGraph
        unless it hashes to ``gid``."""
        try:
            wire = WireGraph.model_validate({"nodes": nodes})
        except ValueError as exc:
            raise UnreadableGraph(f"stored nodes are not a valid graph: {exc}") from exc
        try:
            with budget.time_budget(self.settings.time_budget_seconds):
                stored = self._stored(wire, None)
        except EngineError as exc:  # registering it here would answer this as a 4xx
            raise UnreadableGraph(f"stored graph does not validate here: {exc}") from exc
        if stored.graph_id != gid:
            raise UnreadableGraph(f"stored nodes hash to {stored.graph_id}, not {gid}")
        return stored

    def describe(self, gid: str) -> dict[str, Any]:
        """A registered graph's outline and its validated nodes in wire form."""
        stored = self.graphs.get(gid)
        nodes = [wire_node(stored.graph.nodes[i]) for i in stored.order]
        return {**stored.info(), "graph": {"nodes": nodes}}

    def forget(self, gid: str) -> None:
        """Delete a registered graph (GraphNotFound if absent)."""
        self.graphs.delete(gid)

    def _check(self, kind: Kind, query: Query, result: Result, method: str,
               local: bool = False) -> CheckReport:
        """The cross-check runs under its own budget; running out is a status, not an error.
        ``local`` (on the event loop): only from SymPy's derivative compiled here, else
        NotInline (the request computes again in a thread, where the check may wait)."""
        try:
            with budget.time_budget(self.settings.time_budget_seconds):
                return verify.check(kind, query, result, method, self.check_limits, local)
        except NotLocal:
            raise NotInline from None
        except BudgetExceeded as exc:
            ran = method if method in ("sympy", "numeric") else "none"
            return CheckReport(method=ran, status="timeout", detail=exc.detail)


def _engine_node(node: WireNode | FormNode, _index: int, limits: Limits) -> Node:
    """A wire node as the engine's: its model checked its form and decoded its values, so
    the engine checks only what it means (``check_node``), never the form again."""
    return check_node(node.id, node.op, node.inputs, node.attrs, node.value,
                      node.given_trainable, limits)

