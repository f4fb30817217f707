"""A symbolic question as a worker's job: checked against every bound before SymPy is asked.

The order, the graph's size and its largest tensor (SymPy's limits), the laid-out entries
(n + n^2 + ... + n^k strings for n scalar sources) and the estimated symbolic work are all
checked here, so a request that could not finish is refused without holding a worker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.check.job import plain_nodes, sympy_work
from engine.check.limits import CheckLimits
from engine.errors import ComputeLimitError, CostError, GraphError, ShapeError
from engine.graphs.graph import LEAF_OPS, Graph, Limits
from engine.ops.registry import OPS

MAX_ENTRIES = 4096
"""Laid-out derivative strings in one answer (n + n^2 + ... + n^k, twice with LaTeX)."""
BUDGETS = 2
"""A symbolic answer may hold a SymPy worker for this many check budgets
(``DERIV_SYMPY_SECONDS`` each); simplification gets what the plain derivation does not
need (engine.check.symbolic_simplify)."""
WORK_PER_SECOND = 7_500
"""Units of ``symbolic_work`` SymPy gets through in a second on one core, measured on
nested compositions: tanh(tanh(tanh(tanh(x*y)))) to order 4 is 20,034 units in 3.3 s,
exp(sin(x*y*z)) to order 4 27,528 in 2.7 s, sin nested six deep to order 4 7,252 in 1.4 s."""


@dataclass(frozen=True)
class SymbolicQuery:
    graph: Graph
    values: Mapping[str, Any]
    sources: Sequence[str] | None = None  # None: every variable, sorted by id
    order: int = 1
    simplify: bool = True
    target: str | None = None  # None: the graph's last node
    limits: Limits = field(default_factory=Limits)
    check_limits: CheckLimits = field(default_factory=CheckLimits)
    max_order: int = 6
    max_response_bytes: float = math.inf


@dataclass(frozen=True)
class SymbolicJob:
    """What the worker is sent (``job``, the fields engine.check.sympy_symbolic reads) and
    what the caller keeps to bound and lay out its reply."""

    job: dict[str, Any]
    target: str
    n: int  # scalar sources: each laid-out order j is an n^j tensor
    work: int  # the estimated ``symbolic_work``, within the budget's cap


def budget_seconds(limits: CheckLimits) -> float:
    """How long one symbolic answer may hold a SymPy worker."""
    return limits.sympy_seconds * BUDGETS


def symbolic_job(q: SymbolicQuery) -> SymbolicJob:
    """``q`` as a worker's job, or the typed error naming the bound it is over."""
    if q.order > q.max_order:
        raise ComputeLimitError(
            f"order {q.order} is over the limit of {q.max_order}", field="order"
        )
    graph, limits = q.graph, q.check_limits
    target = q.target if q.target is not None else graph.last
    if target not in graph.nodes:
        raise GraphError(
            f"target {target!r} is not a node of the graph", node=target, field="target"
        )
    valued = all(n in q.values or graph.nodes[n].value is not None for n in graph.leaves)
    leaf_values = (
        graph.leaf_values(q.values)
        if valued or q.values
        else graph.leaf_values({n: 0.0 for n in graph.leaves if graph.nodes[n].value is None})
    )
    shapes = graph.infer_shapes(leaf_values, q.limits)
    if shapes[target]:
        raise ShapeError(
            f"the symbolic derivative needs a scalar target; {target!r} has "
            f"shape {list(shapes[target])} (sum it, e.g. sum(...))",
            node=target,
            field="target",
        )
    nodes = plain_nodes(graph, [target])
    _within_sympy_limits(nodes, shapes, limits)
    sources = _sources(graph, q.sources)
    n = sum(math.prod(shapes[s]) for s in sources)
    entries = sum(n**j for j in range(1, q.order + 1))
    if entries > MAX_ENTRIES:
        raise ComputeLimitError(
            f"derivatives up to order {q.order} by {n} scalar sources are {entries} strings "
            f"(n + n^2 + ... + n^{q.order}), over the limit of {MAX_ENTRIES}",
            field="order",
        )
    job: dict[str, Any] = {
        "kind": "symbolic",
        "quantities": ["derivatives"],
        "order": q.order,
        "nodes": nodes,
        "targets": [target],
        "target": target,
        "sources": [[s, list(i)] for s in sources for i in np.ndindex(shapes[s])],
        "frozen": [nd[0] for nd in nodes if nd[1] in OPS and OPS[nd[1]].vjp is None],
        "shapes": {k: list(v) for k, v in shapes.items() if graph.nodes[k].op in LEAF_OPS},
        "values": (
            {k: np.asarray(v, np.float64) for k, v in leaf_values.items()} if valued else None
        ),
        "simplify": q.simplify,
    }
    work = symbolic_work(nodes, shapes, n, q.order)
    cap = int(WORK_PER_SECOND * budget_seconds(limits))
    if work > cap:
        raise CostError(
            f"an estimated {work} units of symbolic work for derivatives up to "
            f"order {q.order} by {n} sources, over the {cap} SymPy can finish "
            f"in its budget of {budget_seconds(limits):g} s; ask for a "
            "lower order or fewer sources",
            field="order",
            limit="sympy_work",
            estimate=float(work),
        )
    return SymbolicJob(job, target, n, work)


def symbolic_work(
    nodes: list[list[Any]], shapes: dict[str, tuple[int, ...]], n: int, order: int
) -> int:
    """The function's written-out size, times each order's distinct entries, times the
    growth of a j-th derivative of a composition of depth d (about d^(j-1): Faa di
    Bruno's terms). Conservative for sums of separate terms, close for nested ones."""
    base = sympy_work(
        {
            "quantities": ["outputs"],
            "order": 0,
            "nodes": nodes,
            "targets": [nodes[-1][0]],
            "sources": [],
        },
        shapes,
    )
    depth: dict[str, int] = {}
    for nid, _op, ins, _attrs in nodes:
        depth[nid] = 1 + max((depth[x] for x in ins if isinstance(x, str)), default=-1)
    d = max(1, max(depth.values()))
    total = sum(math.comb(n + j - 1, j) * d ** (j - 1) for j in range(1, order + 1))
    return min(10**15, base * max(1, total))


def _within_sympy_limits(
    nodes: list[list[Any]], shapes: dict[str, tuple[int, ...]], limits: CheckLimits
) -> None:
    if len(nodes) > limits.sympy_max_nodes:
        raise ComputeLimitError(
            f"the target reads {len(nodes)} nodes, over SymPy's limit of "
            f"{limits.sympy_max_nodes} (DERIV_SYMPY_MAX_NODES)",
            node=nodes[-1][0],
        )
    for nid, *_ in nodes:
        size = math.prod(shapes[nid])
        if size > limits.sympy_max_elements:
            raise ComputeLimitError(
                f"a tensor of {size} elements, over SymPy's limit of "
                f"{limits.sympy_max_elements} (DERIV_SYMPY_MAX_ELEMENTS): one symbol each",
                node=nid,
            )


def _sources(graph: Graph, asked: Sequence[str] | None) -> list[str]:
    """The sources asked for (leaves, each once), or every variable sorted by id."""
    if asked is None:
        return sorted(n for n in graph.leaves if graph.nodes[n].op == "variable")
    for s in asked:
        if s not in graph.nodes:
            raise GraphError(f"source {s!r} is not a node of the graph", node=s, field="sources")
        if graph.nodes[s].op not in LEAF_OPS:
            raise GraphError(
                f"the symbolic derivative is taken by leaves; {s!r} is a {graph.nodes[s].op} node",
                node=s,
                field="sources",
            )
    if len(set(asked)) != len(asked):
        raise GraphError("each source may be listed once", field="sources")
    return list(asked)
