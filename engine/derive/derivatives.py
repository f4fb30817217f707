"""Evaluate, gradient, Jacobian and Hessian of a graph, with TF's tape semantics.

This is the engine's entry point for a request: it resolves targets, sources
and watches by node id, records the graph on (nested) tapes and gathers the
result, the notes and the trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import cost
from engine.derive import hessian as hessian_mod
from engine.derive import higher
from engine.derive import sparse as sparse_mod
from engine.derive.numeric_notes import numeric_notes
from engine.derive.sparse import SparseResult
from engine.errors import ComputeLimitError, GraphError, ShapeError
from engine.graphs.graph import Graph, Limits
from engine.notes import Note
from engine.tape.gradient_tape import GradientTape
from engine.tape.trace import Trace, build_trace
from engine.tensor import Tensor, as_value


@dataclass
class Query:
    """One request to the engine; ids refer to graph nodes."""

    graph: Graph
    values: Mapping[str, Any] = field(default_factory=dict)
    target: str | Sequence[str] | None = None  # None: the graph's last node
    sources: Sequence[str] | None = None  # None: every watched leaf
    watch: Sequence[str] = ()
    watch_accessed_variables: bool = True
    unconnected_gradients: str = "none"
    output_gradients: Mapping[str, Any] | None = None
    trace: bool = False
    limits: Limits = field(default_factory=Limits)
    format: str = "dense"  # Hessians: "dense", "coo" (sparse, compressed) or "auto" (by size)
    # Bounds on the estimated work, memory and answer size (engine.cost); None: unbounded.
    cost_limits: cost.CostLimits | None = None
    # Told the estimate once shapes are known, before anything runs (admission control).
    admit: Callable[[cost.Estimate], None] | None = None
    order: int = 1  # derivative: every order up to this one
    max_order: int = 6  # derivative: the highest order allowed


@dataclass
class Result:
    targets: list[str]
    sources: list[str]
    outputs: dict[str, np.ndarray]
    gradients: dict[str, np.ndarray | None] | None = None
    jacobian: dict[str, dict[str, np.ndarray | None]] | None = None
    hessian: dict[str, dict[str, np.ndarray | None]] | None = None
    matrix: np.ndarray | None = None
    notes: list[Note] = field(default_factory=list)
    trace: Trace | None = None
    derivatives: list[np.ndarray] | None = None  # derivative(): order j at index j - 1
    sparse: SparseResult | None = None  # a Hessian in coordinate form, and its structure
    points: int | None = None  # with points: every value has a leading axis of this size


@dataclass
class _Recording:
    """A graph recorded once: its tensors by node id, and the tape that saw it."""

    tape: GradientTape
    tensors: dict[str, Tensor]
    shapes: dict[str, tuple[int, ...]]
    targets: list[str]
    sources: list[str]


# ------------------------------------------------------------------ resolving ids


def target_ids(q: Query) -> list[str]:
    """The target node ids (the last node by default), each checked to exist."""
    raw = q.graph.last if q.target is None else q.target
    ids = [raw] if isinstance(raw, str) else list(raw)
    if not ids:
        raise GraphError("target must name at least one node", field="target")
    for t in ids:
        if t not in q.graph.nodes:
            raise GraphError(f"target {t!r} is not a node of the graph", node=t, field="target")
    return ids


def check_leaf_ids(q: Query, ids: Sequence[str], name: str) -> None:
    """Every id of the field ``name`` is a node, and a leaf when it is ``watch``."""
    for i in ids:
        if i not in q.graph.nodes:
            raise GraphError(f"{name} names {i!r}, which is not a node", node=i, field=name)
        if i not in q.graph.leaves and name == "watch":
            raise GraphError(
                f"watch names {i!r}, which is not a leaf: only variables and constants "
                "can be watched before the graph runs",
                node=i,
                field=name,
            )


def source_ids(q: Query) -> list[str]:
    """The sources asked for, or, as TF's watched variables, the watched leaves."""
    if q.sources is not None:
        check_leaf_ids(q, q.sources, "sources")
        return list(q.sources)
    watched = set(q.watch)
    return [
        i
        for i in q.graph.leaves
        if i in watched
        or (
            q.watch_accessed_variables
            and q.graph.nodes[i].op == "variable"
            and q.graph.nodes[i].trainable
        )
    ]


def _make_leaves(q: Query) -> tuple[dict[str, Tensor], dict[str, tuple[int, ...]]]:
    """Leaf tensors from the request's values, after every shape is known to fit the limits."""
    values = q.graph.leaf_values(q.values)
    shapes = q.graph.infer_shapes(values, q.limits)
    leaves = q.graph.make_leaves(values)
    return leaves, shapes


def _run(q: Query, leaves: dict[str, Tensor]) -> dict[str, Tensor]:
    return q.graph.run(leaves)


def seed_values(
    q: Query, targets: list[str], shapes: dict[str, tuple[int, ...]]
) -> list[Any] | None:
    """``output_gradients`` per target (None where not given), each of its target's shape."""
    if not q.output_gradients:
        return None
    extra = set(q.output_gradients) - set(targets)
    if extra:
        raise GraphError(
            f"output_gradients names {sorted(extra)[0]!r}, which is not a target",
            node=sorted(extra)[0],
            field="output_gradients",
        )
    seeds = []
    for t in targets:
        if t not in q.output_gradients:
            seeds.append(None)
            continue
        g = as_value(q.output_gradients[t])
        if np.shape(g) != shapes[t]:
            raise ShapeError(
                f"output_gradients[{t!r}] has shape {list(np.shape(g))}, the target has "
                f"shape {list(shapes[t])}",
                node=t,
                field="output_gradients",
            )
        seeds.append(g)
    return seeds


Price = Callable[[cost.GraphCost, int, int], cost.Estimate]  # (graph, target, source elements)


def _record(q: Query, what: str, price: Price, *, persistent: bool = False) -> _Recording:
    targets = target_ids(q)
    check_leaf_ids(q, q.watch, "watch")
    sources = source_ids(q)
    leaves, shapes = _make_leaves(q)
    rows, cols = elements(targets, shapes), elements(sources, shapes)
    charge(q, what, shapes, lambda g: price(g, rows, cols))
    with GradientTape(persistent, q.watch_accessed_variables) as tape:
        tape.watch([leaves[w] for w in q.watch])
        tensors = _run(q, leaves)
    return _Recording(tape, tensors, shapes, targets, sources)


def _outputs(rec: _Recording) -> dict[str, np.ndarray]:
    return {t: rec.tensors[t].numpy() for t in rec.targets}


def check_work(q: Query, rows: int, cols: int, what: str) -> None:
    """A ComputeLimitError (a 422) before a rows x cols derivative past the work limit."""
    if rows * cols > q.limits.max_derivative_work:
        raise ComputeLimitError(
            f"the {what} has {rows} x {cols} entries, over the limit of "
            f"{q.limits.max_derivative_work}",
            field="sources",
        )


def elements(ids: Sequence[str], shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Elements of the named nodes, together."""
    return sum(math.prod(shapes[i]) for i in ids)


def charge(
    q: Query,
    what: str,
    shapes: Mapping[str, tuple[int, ...]],
    price: Callable[[cost.GraphCost], cost.Estimate],
    batched: Collection[str] = (),
    points: int = 1,
) -> cost.GraphCost | None:
    """Estimate what ``q`` costs from its shapes, then refuse it past its limits or hand
    the estimate to ``q.admit``: all before anything is computed. The graph's costs
    come back for estimates made later (a sparse Hessian's colours)."""
    if q.cost_limits is None and q.admit is None:
        return None
    graph_cost = cost.graph_cost(q.graph, shapes, batched, points)
    estimate = price(graph_cost)
    if q.cost_limits is not None:
        cost.enforce(estimate, q.cost_limits, what)
    if q.admit is not None:
        q.admit(estimate)
    return graph_cost


# ------------------------------------------------------------------ the four kinds


def evaluate(q: Query) -> Result:
    """Forward values of the targets; no tape beyond the one that must exist."""
    targets = target_ids(q)
    leaves, shapes = _make_leaves(q)
    charge(q, "evaluation", shapes, lambda g: cost.evaluate(g, elements(targets, shapes)))
    tensors = _run(q, leaves)
    return Result(
        targets=targets,
        sources=[],
        outputs={t: tensors[t].numpy() for t in targets},
        notes=numeric_notes(q.graph, tensors),
    )


def gradient(q: Query) -> Result:
    """d(sum of targets)/d(source), as ``tape.gradient``; a trace when asked."""
    rec = _record(q, "gradient", lambda g, rows, cols: cost.gradient(g, rows, cols, q.trace))
    grads_seen: dict[int, Tensor] | None = {} if q.trace else None
    srcs = [rec.tensors[s] for s in rec.sources]
    grads = rec.tape.gradient(
        [rec.tensors[t] for t in rec.targets],
        srcs,
        seed_values(q, rec.targets, rec.shapes),
        q.unconnected_gradients,
        grads_seen=grads_seen,
    )
    gradients = arrays_by_id(rec.sources, grads)
    notes = with_target(rec.tape.notes) + numeric_notes(q.graph, rec.tensors, gradients)
    trace = build_trace(rec.tape.entries, grads_seen) if q.trace else None
    return Result(rec.targets, rec.sources, _outputs(rec), gradients, notes=notes, trace=trace)


def jacobian(q: Query) -> Result:
    """d target / d source for each pair, of shape ``target.shape + source.shape``."""
    rec = _record(q, "Jacobian", lambda g, rows, cols: cost.jacobian(g, rows, cols, q.trace),
                  persistent=True)
    check_work(q, sum(rec.tensors[t].size for t in rec.targets),
          sum(rec.tensors[s].size for s in rec.sources), "Jacobian")
    srcs = [rec.tensors[s] for s in rec.sources]
    jac: dict[str, dict[str, np.ndarray | None]] = {}
    notes: list[Note] = []
    for t in rec.targets:
        cols = rec.tape.jacobian(rec.tensors[t], srcs, q.unconnected_gradients)
        jac[t] = arrays_by_id(rec.sources, cols)
        notes += with_target(rec.tape.notes, t)
    notes += numeric_notes(q.graph, rec.tensors)
    trace = build_trace(rec.tape.entries, None) if q.trace else None
    return Result(rec.targets, rec.sources, _outputs(rec), jacobian=jac, notes=notes,
                  trace=trace)


def hessian(q: Query) -> Result:
    """Second derivatives of a scalar target, by nested tapes; blocks and one matrix."""
    targets = target_ids(q)
    check_leaf_ids(q, q.watch, "watch")
    sources = source_ids(q)
    leaves, shapes = _make_leaves(q)
    every: dict[str, Tensor] = {}

    def run_graph() -> list[Tensor]:
        every.update(_run(q, leaves))
        for t in targets:
            if every[t].ndim != 0:
                raise ShapeError(
                    f"the Hessian needs a scalar target; {t!r} has shape "
                    f"{list(every[t].shape)}",
                    node=t,
                    field="target",
                )
        return [every[t] for t in targets]

    for s in sources:
        if s not in leaves:
            raise GraphError(f"Hessian sources must be leaves; {s!r} is not", node=s,
                             field="sources")
    source_tensors = [leaves[s] for s in sources]
    n = sum(s.size for s in source_tensors)
    watch = [leaves[w] for w in q.watch]
    sparse: SparseResult | None = None
    matrix: np.ndarray | None = None
    if q.format == "coo" or (q.format == "auto" and n > q.limits.dense_max_sources):
        priced = charge(q, "sparse Hessian", shapes, lambda g: cost.sparse_hessian(g, n))
        sparse = _sparse_hessian(q, source_tensors, watch, run_graph, priced)
        grads: Sequence[Tensor | None] = sparse.gradients or [None] * len(sources)
        notes: list[Note] = []
        fits = n * n <= q.limits.max_derivative_work  # dense blocks too (checks read them)
        blocks = _dense_blocks(sparse, sources, source_tensors) if fits else None
    else:
        check_work(q, n, n, "Hessian")
        charge(q, "Hessian", shapes, lambda g: cost.hessian(g, n))
        h = hessian_mod.hessian(
            run_graph,
            source_tensors,
            watch=watch,
            watch_accessed_variables=q.watch_accessed_variables,
            output_gradients=seed_values(q, targets, shapes),
            unconnected_gradients=q.unconnected_gradients,
        )
        grads, notes, matrix = h.gradients, with_target(h.notes), h.matrix
        blocks = blocks_by_id(sources, h.blocks)
    gradients = arrays_by_id(sources, grads)
    return Result(
        targets,
        sources,
        {t: every[t].numpy() for t in targets},
        gradients,
        hessian=blocks,
        matrix=matrix,
        sparse=sparse,
        notes=notes + numeric_notes(q.graph, every, gradients),
    )


def _sparse_hessian(
    q: Query,
    source_tensors: list[Tensor],
    watch: list[Tensor],
    run_graph: Callable[[], list[Tensor]],
    priced: cost.GraphCost | None = None,
) -> sparse_mod.SparseHessian:
    """The Hessian from its detected pattern and one compressed sweep (engine.derive.sparse).

    The pattern bounds the work: its non-zeros, and the colours times the sources
    (the compressed sweep's seeds), must each fit ``max_derivative_work``; and the
    compressed sweep, once its colours are known, the cost limits (``priced``).
    """
    n = sum(s.size for s in source_tensors)

    def within_cost(colours: int) -> None:
        """Price the compressed sweep now that its colours are known: refuse it, or admit
        what it needs beyond the first estimate (``q.admit`` hears the larger estimate)."""
        if priced is None:
            return
        estimate = cost.sparse_hessian(priced, n, colours)
        if q.cost_limits is not None:
            cost.enforce(estimate, q.cost_limits,
                         f"sparse Hessian's compressed sweep ({colours} colours)")
        if q.admit is not None:
            q.admit(estimate)

    limit = q.limits.max_derivative_work
    if q.output_gradients:
        raise GraphError("a sparse Hessian takes no output_gradients; use format: dense",
                         field="output_gradients")
    try:
        h = sparse_mod.sparse_hessian(
            run_graph,
            source_tensors,
            watch=watch,
            watch_accessed_variables=q.watch_accessed_variables,
            max_pairs=limit,
            on_colours=within_cost,
        )
    except sparse_mod.PatternTooLarge as e:
        raise ComputeLimitError(f"the Hessian's sparsity pattern is too dense: {e}",
                         field="format") from None
    n = h.shape[0]
    if h.nnz > limit or h.colours * n > limit:
        raise ComputeLimitError(
            f"the sparse Hessian has {h.nnz} non-zeros and needs {h.colours} seeds of {n} "
            f"entries, over the limit of {limit}",
            field="sources",
        )
    return h


def _dense_blocks(
    h: SparseResult, sources: list[str], tensors: list[Tensor]
) -> dict[str, dict[str, np.ndarray | None]]:
    """``hessian[si][sj]`` blocks of a sparse Hessian, for the cross-check."""
    dense = h.todense()
    offsets = np.concatenate([[0], np.cumsum([t.size for t in tensors])]).astype(int)
    return blocks_by_id(sources, [
        [dense[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]].reshape(
            ti.shape + tj.shape) for j, tj in enumerate(tensors)]
        for i, ti in enumerate(tensors)
    ])


def derivative(q: Query) -> Result:
    """Every derivative of a scalar target up to ``q.order`` by scalar leaf sources.

    ``derivatives[j - 1]`` has shape ``(n,) * j`` over the ``n`` sources in order, or
    is a scalar for one source. ``order`` nested tapes record one forward run.
    """
    order, max_order = q.order, q.max_order
    if order < 1:
        raise GraphError(f"order must be at least 1, got {order}", field="order")
    if order > max_order:
        raise ComputeLimitError(f"order {order} is over the limit of {max_order}", field="order")
    targets = target_ids(q)
    check_leaf_ids(q, q.watch, "watch")
    sources = source_ids(q)
    leaves, shapes = _make_leaves(q)
    for t in targets:
        if shapes[t]:
            raise ShapeError(f"derivatives of every order need a scalar target; {t!r} has "
                             f"shape {list(shapes[t])}", node=t, field="target")
    for s in sources:
        if s not in leaves:
            raise GraphError(f"derivative sources must be leaves; {s!r} is not", node=s,
                             field="sources")
        if shapes[s]:
            raise ShapeError(f"derivative sources must be scalars; {s!r} has shape "
                             f"{list(shapes[s])}", node=s, field="sources")
    n = len(sources)
    if higher.entries(n, order) > q.limits.max_derivative_work:
        raise ComputeLimitError(
            f"derivatives up to order {order} by {n} sources have {higher.entries(n, order)} "
            f"entries (n + n^2 + ... + n^{order}), over the limit of "
            f"{q.limits.max_derivative_work}",
            field="order",
        )
    charge(q, f"order-{order} derivatives", shapes, lambda g: cost.derivatives(g, n, order))
    every: dict[str, Tensor] = {}

    def run_graph() -> list[Tensor]:
        every.update(_run(q, leaves))
        return [every[t] for t in targets]

    h = higher.derivatives_up_to(
        run_graph,
        [leaves[s] for s in sources],
        order,
        watch=[leaves[w] for w in q.watch],
        watch_accessed_variables=q.watch_accessed_variables,
        output_gradients=seed_values(q, targets, shapes),
    )
    gradients = arrays_by_id(sources, h.gradients)
    return Result(
        targets,
        sources,
        {t: every[t].numpy() for t in targets},
        gradients,
        notes=with_target(h.notes) + numeric_notes(q.graph, every, gradients),
        derivatives=[d.reshape(()) if n == 1 else d for d in h.derivatives],
    )


KINDS: dict[str, Callable[[Query], Result]] = {
    "evaluate": evaluate,
    "gradient": gradient,
    "jacobian": jacobian,
    "hessian": hessian,
}


def blocks_by_id(ids: Sequence[str], blocks: Sequence[Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """``hessian[si][sj]`` from the rows of blocks, in ``ids``' order both ways."""
    return {si: dict(zip(ids, row, strict=True)) for si, row in zip(ids, blocks, strict=True)}


def arrays_by_id(ids: Sequence[str], tensors: Sequence[Tensor | None]) -> dict[str, Any]:
    """Node id -> ndarray, keeping None (no path) distinct from zeros."""
    return {i: None if t is None else t.numpy() for i, t in zip(ids, tensors, strict=True)}


def with_target(notes: list[Note], target: str | None = None) -> list[Note]:
    """Tape notes already carry the source's name (its node id); add the target if any."""
    if target is None:
        return list(notes)
    return [Note(n.reason, f"{n.detail} (target {target!r})", n.source, n.node) for n in notes]
