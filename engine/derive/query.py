"""A request to the engine and its answer, and what every kind does with them first:
resolve node ids, weigh output gradients, and charge the estimated cost.

Ids refer to graph nodes; a typed error names the node and the request's field.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import cost
from engine.derive.sparse import SparseResult
from engine.errors import ComputeLimitError, GraphError, ShapeError
from engine.graphs.graph import LEAF_OPS, Graph, Limits, check_count
from engine.notes import Note
from engine.tape.trace import Trace
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


# ------------------------------------------------------------------ resolving ids


def target_ids(q: Query) -> list[str]:
    """The target node ids (the last node by default), each checked to exist."""
    raw = q.graph.last if q.target is None else q.target
    ids = [raw] if isinstance(raw, str) else list(raw)
    check_count(len(ids), q.limits.max_nodes, "ids in target", field="target")
    if not ids:
        raise GraphError("target must name at least one node", field="target")
    for t in ids:
        if t not in q.graph.nodes:
            raise GraphError(f"target {t!r} is not a node of the graph", node=t, field="target")
    return ids


def check_leaf_ids(q: Query, ids: Sequence[str], name: str) -> None:
    """Every id of the field ``name`` is a node, and a leaf when it is ``watch``; at most
    ``max_nodes`` of them (each id costs the sweep an answer)."""
    check_count(len(ids), q.limits.max_nodes, f"ids in {name}", field=name)
    nodes = q.graph.nodes
    for i in ids:
        node = nodes.get(i)
        if node is None:
            raise GraphError(f"{name} names {i!r}, which is not a node", node=i, field=name)
        # by the node's op: a scan of the leaves for each id was 10^8 steps for 10^4 ids
        if name == "watch" and node.op not in LEAF_OPS:
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


def check_work(q: Query, rows: int, cols: int, what: str) -> None:
    """A ComputeLimitError (a 422) before a rows x cols derivative past the work limit."""
    if rows * cols > q.limits.max_derivative_work:
        raise ComputeLimitError(
            f"the {what} has {rows} x {cols} entries, over the limit of "
            f"{q.limits.max_derivative_work}",
            field="sources",
        )


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
    remembered = getattr(q.graph, "remembered", None)  # a reused graph's memory
    if remembered is None:
        graph_cost = cost.graph_cost(q.graph, shapes, batched, points)
    else:
        graph_cost = remembered("cost", shapes, (frozenset(batched), points),
                                lambda: cost.graph_cost(q.graph, shapes, batched, points))
    settle(q, price(graph_cost), what)
    return graph_cost


def settle(q: Query, estimate: cost.Estimate, what: str) -> None:
    """Refuse ``estimate`` past ``q``'s cost limits, else tell ``q.admit`` (admission)."""
    if q.cost_limits is not None:
        cost.enforce(estimate, q.cost_limits, what)
    if q.admit is not None:
        q.admit(estimate)


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
