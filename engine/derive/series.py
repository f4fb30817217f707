"""A scalar function of one variable and its derivatives up to order k, over many values of
that variable in one batched run: the numbers a plot draws.

The derivative kind over points. The variable's values are the points' batch axis
(``engine.derive.points``); ``order`` nested tapes record one batched forward run, then
close innermost first, each differentiating the previous order (as
``engine.derive.higher`` does). Points are independent, so the gradient of the sum over
points holds each point's own derivative: one reverse sweep per order serves every point.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine import budget, cost
from engine.derive import points as points_mod
from engine.derive.numeric_notes import TensorValues, input_values
from engine.derive.query import Query
from engine.derive.setup import Setup, set_up
from engine.errors import ComputeLimitError, GraphError, short
from engine.notes import Note
from engine.ops.registry import OPS
from engine.tape.gradient_tape import GradientTape
from engine.tensor import Tensor


@dataclass
class Series:
    """``curves[j]`` is the j-th derivative at every point (``curves[0]`` the function)."""

    target: str
    variable: str
    xs: np.ndarray
    curves: list[np.ndarray]
    kinks: np.ndarray  # one bool per point: some op of the graph meets its kink there
    kink_nodes: list[str]  # the nodes that meet one somewhere
    notes: list[Note]


def series(q: Query, variable: str, xs: np.ndarray, order: int) -> Series:
    """f and its derivatives by ``variable`` up to ``order`` at every value in ``xs``.

    ``q.target`` must be a scalar at each point and ``variable`` a scalar leaf; the other
    leaves keep ``q.values``. Orders past ``q.max_order`` are a ComputeLimitError.
    """
    if order < 0:
        raise GraphError(f"order must be at least 0, got {order}", field="order")
    if order > q.max_order:
        raise ComputeLimitError(f"order {order} is over the limit of {q.max_order}", field="order")
    if variable not in q.graph.nodes:
        leaves = q.graph.leaves
        names = ", ".join(leaves[:10]) + (", ..." if len(leaves) > 10 else "") or "none"
        raise GraphError(
            f"variable {short(variable)} is not in the function (its variables: {names})",
            node=variable[:128],
            field="variable",
        )
    q = dataclasses.replace(q, sources=[variable], watch=(), watch_accessed_variables=False)
    s = set_up(
        q,
        {variable: np.asarray(xs, dtype=float)},
        scalar_target="a plot needs",
        leaf_sources="plot",
        scalar_sources="plot",
    )
    s.charge(s.what(f"order-{order} plot"), lambda g: cost.derivatives(g, 1, max(order, 1)))
    x = s.leaves[variable]
    opened: list[GradientTape] = []
    curves: list[np.ndarray] = []
    try:
        for _ in range(order):
            tape = GradientTape(persistent=True, watch_accessed_variables=False)
            tape.__enter__()
            opened.append(tape)
            tape.watch([x])
        tensors = s.run()
        target = s.targets[0]
        curves.append(s.outputs(tensors)[target])
        current: Tensor | None = tensors[target]
        for level in range(1, order + 1):
            tape = opened.pop()
            tape.__exit__(None, None, None)
            budget.check(f"the plot's order-{level} derivative")
            current = None if current is None else tape.gradient(current, x)
            curves.append(np.zeros(s.points) if current is None else current.numpy())
    finally:
        while opened:
            opened.pop().__exit__(None, None, None)
    first = {variable: curves[1]} if order >= 1 else None
    mask, nodes = _kinks(s, tensors)
    return Series(
        target, variable, np.asarray(xs, dtype=float), curves, mask, nodes, s.notes(tensors, first)
    )


def _kinks(s: Setup, tensors: dict[str, Tensor]) -> tuple[np.ndarray, list[str]]:
    """Which points meet a kink of some op, and which nodes meet one."""
    assert s.batch is not None
    graph, batch = s.query.graph, s.batch
    mask = np.zeros(batch.size, dtype=bool)
    nodes: list[str] = []
    values = TensorValues(tensors)
    for node_id in graph.order:
        node = graph.nodes[node_id]
        op = OPS.get(node.op)
        if not node.inputs or op is None or op.kink is None or node_id not in tensors:
            continue
        flags = points_mod.batched_inputs(node, batch.batched)
        hit = points_mod.kink_mask(
            op, input_values(node.inputs, values), flags, node.attrs, batch.size
        )
        if hit.any():
            mask |= hit
            nodes.append(node_id)
    return mask, nodes
