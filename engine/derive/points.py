"""Many points in one pass: a graph run once on values with a leading axis of B points.

As ``jax.vmap``: every op goes through its batching rule (``OpDef.batch``; None for
elementwise ops), which calls ordinary engine ops on tensors carrying the batch axis,
so an ordinary GradientTape records the run and Python's cost is per op, not per
point. Points are independent, so the gradient of the sum over points with respect
to a batched leaf holds each point's own gradient: one reverse sweep serves them all
(``engine.derive.setup`` runs every kind either way; ``engine.derive.hessian`` gives
each point's Hessian in one more sweep).

``points`` is a list of ``{leaf id: value}`` (one map per point, all naming the same
leaves) or one ``{leaf id: array}`` whose leading axis runs over the points. Leaves it
does not name keep the query's value, shared by every point; sources are batched all
the same (the shared value repeated), so that each point gets its own gradient.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import budget
from engine.derive.numeric_notes import OnePoint, TensorValues, numeric_notes
from engine.derive.point_plan import (
    ALIGNED,
    DIRECT,
    REPEATED,
    SHARED,
    Plan,
    Step,
    batched_inputs,
    plan_points,
)
from engine.derive.query import Query, Result
from engine.errors import ComputeLimitError, GraphError, LimitError, ShapeError, short
from engine.graphs.graph import LEAF_OPS, Graph, Limits, Node, check_count, to_value
from engine.notes import Note
from engine.ops.batching import aligned
from engine.ops.reductions import point_axes
from engine.ops.registry import OPS, F, OpDef
from engine.tensor import Tensor

Shape = tuple[int, ...]
Points = Sequence[Mapping[str, Any]] | Mapping[str, Any]


@dataclass
class Batch:
    """Validated points, ready to run: B, the leaf tensors (batched ones carry the axis),
    which nodes carry it, every node's shape at one point, and how each op node runs
    (``plain``: each as at one point)."""

    size: int
    leaves: dict[str, Tensor]
    batched: frozenset[str]
    shapes: dict[str, Shape]
    steps: dict[str, Step]
    plain: bool = False


# ------------------------------------------------------------------ reading the points


def stack_points(q: Query, points: Points) -> tuple[int, dict[str, np.ndarray]]:
    """B, and each named leaf's values stacked along a leading axis of points.

    Typed errors name the field: ``points``, ``points[i]`` (one point of a list).
    """
    if isinstance(points, Mapping):
        return _from_map(q, points)
    if isinstance(points, list | tuple):
        return _from_list(q, points)
    raise GraphError(
        "points must be a list of {leaf id: value} or an object {leaf id: array of points}",
        field="points",
    )


def _check_leaf(graph: Graph, key: Any, field: str) -> None:
    node = graph.nodes.get(key) if isinstance(key, str) else None
    if node is None:
        raise GraphError(
            f"points names {short(key)}, which is not a node of the graph",
            node=key[:128] if isinstance(key, str) else None, field=field,
        )
    if node.op not in LEAF_OPS:
        raise GraphError(
            f"points gives {node.op} node {short(key)} a value; only leaves take one",
            node=key, field=field,
        )


def _check_count(size: int, limits: Limits) -> None:
    if size < 1:
        raise GraphError("points is empty: give at least one point", field="points")
    check_count(size, limits.max_points, "points", field="points")


def _check_elements(name: str, arr: np.ndarray, limits: Limits) -> None:
    if arr.size > limits.max_elements:
        raise LimitError(
            f"{name!r} holds {arr.size} elements over all points, over the limit of "
            f"{limits.max_elements}", node=name, field="points",
        )


def _from_list(q: Query, points: Sequence[Any]) -> tuple[int, dict[str, np.ndarray]]:
    _check_count(len(points), q.limits)
    for i, p in enumerate(points):
        if not isinstance(p, Mapping):
            raise GraphError(f"points[{i}] must be an object {{leaf id: value}}",
                             field=f"points[{i}]")
    names = list(points[0])
    for name in names:
        _check_leaf(q.graph, name, "points[0]")
    want = set(names)
    for i, p in enumerate(points):
        if p.keys() == want:
            continue
        extra = next((k for k in p if k not in want), None)
        if extra is not None:
            _check_leaf(q.graph, extra, f"points[{i}]")
            raise GraphError(f"points[{i}] names {short(extra)} and points[0] does not: every "
                             "point names the same leaves", node=extra, field=f"points[{i}]")
        missing = next(k for k in names if k not in p)
        raise GraphError(f"points[{i}] has no value for {missing!r}: every point names the "
                         "same leaves", node=missing, field=f"points[{i}]")
    return len(points), {name: _column(q.limits, points, name) for name in names}


def _column(limits: Limits, points: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    """One leaf's values at every point, stacked; every point's must have the same shape."""
    raw = [p[name] for p in points]
    if all(type(v) is float for v in raw):  # the usual case: a scalar per point, no walk
        arr = np.array(raw, dtype=np.float64)
    else:
        parts = []
        for i, v in enumerate(raw):
            value = to_value(v, limits, name, f"points[{i}]")
            if parts and np.shape(value) != np.shape(parts[0]):
                raise ShapeError(
                    f"{name!r} has shape {list(np.shape(value))} at points[{i}] and "
                    f"{list(np.shape(parts[0]))} at points[0]", node=name, field=f"points[{i}]",
                )
            parts.append(value)
        arr = np.stack(parts)
    _check_elements(name, arr, limits)
    return arr


def _from_map(q: Query, points: Mapping[str, Any]) -> tuple[int, dict[str, np.ndarray]]:
    if not points:
        raise GraphError("points names no leaf: give {leaf id: array of points}",
                         field="points")
    size, first = -1, ""
    values = {}
    for name, raw in points.items():
        _check_leaf(q.graph, name, "points")
        arr = to_value(raw, q.limits, name, "points")
        if np.ndim(arr) == 0:
            raise ShapeError(f"points[{name!r}] is one number; it needs a leading axis that "
                             "runs over the points", node=name, field="points")
        if size < 0:
            size, first = arr.shape[0], name
        elif arr.shape[0] != size:
            raise ShapeError(f"{name!r} has {arr.shape[0]} points and {first!r} has {size}",
                             node=name, field="points")
        values[name] = arr
    _check_count(size, q.limits)
    return size, values


# ------------------------------------------------------------------ running over points


def batch_points(q: Query, points: Points, sources: Sequence[str] = ()) -> Batch:
    """Validate ``points`` against the graph and the limits; batch the leaves they name
    and every source (a shared value repeated), leave other leaves as they are."""
    graph = q.graph
    size, stacked = stack_points(q, points)
    if not isinstance(q.values, Mapping):
        graph.leaf_values(q.values)  # raises its typed error
    _check_declared_shapes(q, stacked)
    one = graph.leaf_values({**q.values, **{k: v[0] for k, v in stacked.items()}})
    shapes = graph.infer_shapes(one, q.limits)
    roots = frozenset(stacked) | frozenset(sources)
    remembered = getattr(graph, "remembered", None)  # a reused graph's memory
    plan: Plan = (plan_points(graph, roots, shapes) if remembered is None
                  else remembered("points", shapes, roots,
                                  lambda: plan_points(graph, roots, shapes)))
    _check_batched_sizes(q.limits, size, shapes, plan.batched)
    values = {}
    for nid in graph.leaves:
        if nid in stacked:
            values[nid] = stacked[nid]
        elif nid in plan.batched:
            values[nid] = np.broadcast_to(one[nid], (size, *shapes[nid]))
        else:
            values[nid] = one[nid]
    return Batch(size, graph.make_leaves(values), plan.batched, shapes, plan.steps, plan.plain)


def _check_declared_shapes(q: Query, stacked: Mapping[str, np.ndarray]) -> None:
    """A leaf that has a value of its own (in the node or the query's values) takes points
    of that shape: so ``{"x": [1, 2]}`` is two points of a scalar x, never one of a vector."""
    for name, arr in stacked.items():
        raw = q.values[name] if name in q.values else q.graph.nodes[name].value
        if raw is None:
            continue
        shape = np.shape(to_value(raw, q.limits, name, "values"))
        if arr.shape[1:] != shape:
            raise ShapeError(
                f"points give {name!r} values of shape {list(arr.shape[1:])}; its own value "
                f"has shape {list(shape)}", node=name, field="points",
            )


def _check_batched_sizes(limits: Limits, size: int, shapes: Mapping[str, Shape],
                         batched: frozenset[str]) -> None:
    """The element limits hold for B points of every batched node (B x one point's)."""
    total = 0
    for nid, shape in shapes.items():
        n = math.prod(shape) * (size if nid in batched else 1)
        if n > limits.max_elements:
            raise ComputeLimitError(
                f"{size} points of shape {list(shape)} make {n} elements, over the limit of "
                f"{limits.max_elements}", node=nid, field="points",
            )
        total += n
    if total > limits.max_total_elements:
        raise ComputeLimitError(
            f"over {size} points the graph holds {total} elements in all, over the limit of "
            f"{limits.max_total_elements}", field="points",
        )


def run(graph: Graph, batch: Batch) -> dict[str, Tensor]:
    """Every node's tensor, computed once for all points in topological order (tapes
    record the engine ops the batch rules call, as for one point). When every op node
    runs as at one point (a chain of elementwise ops), the graph's own run does it."""
    if batch.plain:
        return graph.run(batch.leaves)
    steps, size = batch.steps, batch.size

    def apply(nid: str, node: Node, args: list[Tensor]) -> Tensor:
        how, fn, flags = steps[nid]
        attrs = node.attrs
        if how == DIRECT or how == SHARED:  # DIRECT: most nodes of a long graph, first
            return fn(*args, **attrs) if attrs else fn(*args)
        if how == REPEATED:
            out = fn(*args, **attrs)
            return F.broadcast_to(out, shape=[size, *out.shape])
        if how == ALIGNED:
            return fn(*aligned(args, flags), **attrs)
        return fn(args, flags, **attrs)  # the op's batch rule

    return graph.run(batch.leaves, apply)


def first_point(q: Query, points: Points, result: Result) -> tuple[Query, Result]:
    """The query at the first point, and ``result`` cut to that point: what a check made
    for one point (engine.check.verify) compares. ``points`` is as validated by ``result``'s run."""
    if isinstance(points, Mapping):
        first = {k: v[0] for k, v in points.items()}
    else:
        first = dict(points[0])
    query = dataclasses.replace(q, values={**q.values, **first})

    def cut(d: Mapping[str, Any] | None) -> Any:
        return None if d is None else {k: None if v is None else v[0] for k, v in d.items()}

    one = dataclasses.replace(
        result, outputs=cut(result.outputs), gradients=cut(result.gradients),
        hessian=None if result.hessian is None else {k: cut(r) for k, r in result.hessian.items()},
        matrix=None if result.matrix is None else result.matrix[0], points=None,
    )
    return query, one


# ------------------------------------------------------------------ notes over points


def point_notes(
    graph: Graph, batch: Batch, tensors: Mapping[str, Tensor],
    gradients: Mapping[str, np.ndarray | None] | None = None,
) -> list[Note]:
    """``numeric_notes.numeric_notes`` over points: a node is noted where a non-finite value
    first appears at some point (that point's inputs finite), or where some point meets
    a kink; the kink note says at how many points."""
    return numeric_notes(graph, TensorValues(tensors), gradients,
                         probe=_OverPoints(graph, batch))


class _OverPoints(OnePoint):
    """The questions of ``numeric_notes``, answered point by point (vectorised)."""

    def __init__(self, graph: Graph, batch: Batch) -> None:
        self.graph, self.size, self.batched = graph, batch.size, batch.batched

    def _flags(self, node_id: str) -> list[bool]:
        return batched_inputs(self.graph.nodes[node_id], self.batched)

    def _starts(self, node_id: str, output: Any, inputs: list[Any]) -> np.ndarray:
        """Per point: the node made a non-finite value there from finite inputs."""
        bad = _per_point(~np.isfinite(output), node_id in self.batched, self.size)
        for v, f in zip(inputs, self._flags(node_id), strict=True):
            bad &= ~_per_point(~np.isfinite(v), f, self.size)
        return bad

    def starts_non_finite(self, node_id: str, output: Any, inputs: list[Any]) -> bool:
        return bool(self._starts(node_id, output, inputs).any())

    def where_non_finite(self, node_id: str, output: Any, inputs: list[Any]) -> str:
        return at_points(self._starts(node_id, output, inputs), self.size)

    def where_gradient_non_finite(self, g: Any) -> str:
        return at_points(_per_point(~np.isfinite(g), True, self.size), self.size)

    def kink(self, node_id: str, node: Node, inputs: list[Any]) -> str | None:
        hits = kink_mask(OPS[node.op], inputs, self._flags(node_id), node.attrs, self.size)
        return at_points(hits, self.size) if hits.any() else None


SHOWN_POINTS = 10  # a note lists at most this many point indices


def at_points(mask: np.ndarray, size: int) -> str:
    """`` (at points 0, 3 of 10)``: which points (0-based, as sent) a note is about."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(map(str, idx[:SHOWN_POINTS].tolist()))
    more = f" and {idx.size - SHOWN_POINTS} more" if idx.size > SHOWN_POINTS else ""
    word = "point" if idx.size == 1 else "points"
    return f" (at {word} {shown}{more} of {size})"


def _per_point(mask: Any, batched: bool, size: int) -> np.ndarray:
    """Whether each point has a True in ``mask``."""
    mask = np.asarray(mask)
    if not batched:
        return np.full(size, bool(mask.any()))
    return mask.any(axis=tuple(range(1, mask.ndim))) if mask.ndim > 1 else mask.copy()


def kink_mask(op: OpDef, inputs: list[Any], flags: list[bool], attrs: Mapping[str, Any],
              size: int) -> np.ndarray:
    """Which points meet a kink of ``op`` (one bool per point): its kink mask, computed on
    batched values (``flags``: which inputs carry the points axis)."""
    assert op.kink is not None
    if not any(flags):
        return np.full(size, bool(np.any(op.kink(*inputs, **attrs))))
    if op.batch is None:  # elementwise: ranks aligned as its batch rule aligns them
        mask = op.kink(*[t.value for t in aligned([Tensor(v) for v in inputs], flags)], **attrs)
    elif len(inputs) == 1 and all(a.kind in ("axes", "bool", "ord") for a in op.attrs.values()):
        # a reduction (max, min, norm): the axes of one point, past the batch axis
        ndim = np.ndim(inputs[0]) - 1
        moved = {k: point_axes(v, ndim) if op.attrs[k].kind == "axes" else v
                 for k, v in attrs.items()}
        mask = op.kink(inputs[0], **moved)
    else:  # any other op: point by point (no op of the table needs it today), in budget
        hits = np.zeros(size, dtype=bool)
        for b in range(size):
            if b % 1024 == 1023:
                budget.check("kinks over points")
            point = [v[b] if f else v for v, f in zip(inputs, flags, strict=True)]
            hits[b] = bool(np.any(op.kink(*point, **attrs)))
        return hits
    return _per_point(mask, True, size)
