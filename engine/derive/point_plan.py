"""How a graph runs over many points (engine.derive.points), decided once per batch.

Which nodes carry the points axis follows from the roots (the leaves the points give
and the sources); how each op node then runs follows from which of its inputs carry
it and their ranks at one point. Both are settled before the run, so that the run pays
one lookup per op for them, and a reused graph remembers them per leaf shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import NamedTuple

import numpy as np

from engine.graphs.graph import LEAF_OPS, Graph, Node
from engine.ops.registry import OPS
from engine.tensor import OPS_FN, Tensor

Shape = tuple[int, ...]

# How an op node runs over the points, decided once per batch (``Step``'s first item):
# SHARED, no input carries the points axis and neither does the node; REPEATED, a source
# computed from shared values, one copy per point; DIRECT, an elementwise op whose inputs
# line up as they are (no batched input of a lower rank at one point than another input);
# ALIGNED, an elementwise op whose batched inputs are raised to a common rank first;
# RULE, the op's batch rule.
SHARED, REPEATED, DIRECT, ALIGNED, RULE = range(5)
# (how, the op's function or batch rule, which inputs carry the points axis)
Step = tuple[int, Callable[..., Tensor], tuple[bool, ...]]


class Plan(NamedTuple):
    """Which nodes carry the points axis, how each op node runs, and whether every one runs
    as at one point (SHARED or DIRECT): then the graph's own run serves as it is."""

    batched: frozenset[str]
    steps: dict[str, Step]
    plain: bool


def plan_points(graph: Graph, roots: frozenset[str], shapes: Mapping[str, Shape]) -> Plan:
    """The nodes whose value differs between points (the roots and all that reads them),
    and each op node's ``Step``: decided once, so that the run pays nothing per op for it.
    A pure function of the graph, the roots and the shapes (a reused graph remembers it)."""
    batched: set[str] = set()
    steps: dict[str, Step] = {}
    nodes = graph.nodes
    for nid in graph.order:
        node = nodes[nid]
        flags = tuple(batched_inputs(node, batched))
        if nid in roots or True in flags:
            batched.add(nid)
        if node.op in LEAF_OPS:
            continue
        op, fn = OPS[node.op], OPS_FN[node.op]
        if nid not in batched:
            steps[nid] = (SHARED, fn, flags)
        elif True not in flags:
            steps[nid] = (REPEATED, fn, flags)
        elif op.batch is not None:
            steps[nid] = (RULE, op.batch, flags)
        elif len(flags) == 1 or _lined_up(node, flags, shapes):
            steps[nid] = (DIRECT, fn, flags)
        else:
            steps[nid] = (ALIGNED, fn, flags)
    plain = all(how in (SHARED, DIRECT) for how, _, _ in steps.values())
    return Plan(frozenset(batched), steps, plain)


def _lined_up(node: Node, flags: tuple[bool, ...], shapes: Mapping[str, Shape]) -> bool:
    """Whether an elementwise node's inputs broadcast as one point's would with nothing
    done to them: no batched input has fewer dimensions at one point than another input
    (``engine.ops.batching.aligned`` would then leave every input as it is)."""
    ranks = [len(shapes[x]) if type(x) is str else np.ndim(x.value) for x in node.inputs]
    top = max(ranks)
    return all(r == top for r, batched in zip(ranks, flags, strict=True) if batched)


def batched_inputs(node: Node, batched: Collection[str]) -> list[bool]:
    """Which of ``node``'s inputs carry the batch axis (inline constants never do)."""
    return [type(x) is str and x in batched for x in node.inputs]
