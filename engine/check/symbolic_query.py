"""The symbolic derivative as an answer: a graph's scalar function and its derivatives of
every order up to k, as text, LaTeX and (when every leaf has a value) numbers.

Everything that bounds the job is checked here, before a SymPy worker is asked: the
order, the graph's size and its largest tensor (SymPy's limits), the laid-out entries
(n + n^2 + ... + n^k strings for n scalar sources) and the estimated symbolic work.
The job runs in the SymPy worker pool (engine.check.sympy_symbolic) under a hard budget;
a simplification that overruns it is given up for the unsimplified text, with a note.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.check import sympy_pool
from engine.check.job import plain_nodes, sympy_work
from engine.check.limits import CheckLimits, budget_work
from engine.errors import BudgetExceeded, ComputeLimitError, CostError, GraphError, ShapeError
from engine.graphs.graph import LEAF_OPS, Graph, Limits
from engine.notes import Note
from engine.ops.registry import OPS

MAX_ENTRIES = 4096
"""Laid-out derivative strings in one answer (n + n^2 + ... + n^k, twice with LaTeX)."""
BUDGETS = 2
"""A symbolic answer may hold a SymPy worker for this many check budgets
(``DERIV_SYMPY_SECONDS`` each); simplification gets what the plain derivation does not
need (``_run``)."""
REPLACE_SECONDS = 1.5
"""Kept, out of a symbolic answer's budget, for a worker killed mid-simplification to be
replaced by a warm one (about a second on 2 shared cores) before the plain job runs."""
HEAVY_SECONDS = 1.0
"""An answer estimated past this many seconds of SymPy queues as a heavy check does."""
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


@dataclass
class SymbolicResult:
    target: str
    sources: list[str]  # one per scalar source: ``x``, or ``w_0_1`` for ``w[0, 1]``
    order: int
    function: str
    derivatives: list[Any]  # order j: a string for one source, else nested lists [n] * j
    latex_function: str
    latex_derivatives: list[Any]
    values: dict[str, Any] | None  # {"function": number, "derivatives": [...]} laid out alike
    notes: list[Note]
    simplified: bool


def symbolic(q: SymbolicQuery) -> SymbolicResult:
    """The derivatives of ``q``'s scalar target up to ``q.order``, symbolically."""
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
    cap = int(WORK_PER_SECOND * limits.sympy_seconds * BUDGETS)
    if work > cap:
        raise CostError(
            f"an estimated {work} units of symbolic work for derivatives up to "
            f"order {q.order} by {n} sources, over the {cap} SymPy can finish "
            f"in its budget of {limits.sympy_seconds * BUDGETS:g} s; ask for a "
            "lower order or fewer sources",
            field="order",
            limit="sympy_work",
            estimate=float(work),
        )
    reply, simplified, notes = _run(job, work, limits)
    return _answer(q, target, n, reply, simplified, notes + _conventions(nodes, job["frozen"]))


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


def _run(
    job: dict[str, Any], work: int, limits: CheckLimits
) -> tuple[dict[str, Any], bool, list[Note]]:
    """The worker's reply: simplified within the budget, else unsimplified with a note.
    WorkerBusy (no worker free) goes to the caller; an overrun is BudgetExceeded."""
    seconds = limits.sympy_seconds * BUDGETS
    # the plain derivation's estimated time, doubled, and a killed worker's replacement are
    # kept for the plain job: one slow ``simplify`` costs the formulas' form, not the answer
    plain = min(seconds, 2 * work / WORK_PER_SECOND + REPLACE_SECONDS)
    simplify_within = seconds - plain
    # past about a second's work it may not take the last free worker (checks need one)
    heavy = work > WORK_PER_SECOND * HEAVY_SECONDS
    admission = sympy_pool.Admission(
        work=work, heavy=heavy, wait=limits.sympy_queue_seconds, max_ahead=budget_work(limits)
    )
    pool = sympy_pool.get_pool(limits.sympy_workers)
    notes: list[Note] = []
    start = time.monotonic()
    try:
        if job["simplify"] and simplify_within > 0:
            try:
                reply = pool.run(
                    {**job, "simplify_seconds": simplify_within / 2}, simplify_within, admission
                )
                if reply["unsimplified"]:
                    notes.append(
                        Note(
                            "not_simplified",
                            f"{reply['unsimplified']} of "
                            f"{len(reply['text'])} expressions left unsimplified: "
                            "simplification ran out of its time or they are large",
                        )
                    )
                return reply, not reply["unsimplified"], notes
            except sympy_pool.WorkerBusy:
                raise
            except sympy_pool.WorkerTimeout as e:
                notes.append(
                    Note(
                        "not_simplified",
                        f"simplification did not finish ({e}): "
                        "the derivatives are shown unsimplified",
                    )
                )
        elif job["simplify"]:
            notes.append(
                Note(
                    "not_simplified",
                    "deriving alone needs the whole budget: shown unsimplified",
                )
            )
        # the plain job has what the simplified one left of the one budget, no more
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            raise sympy_pool.WorkerTimeout(f"SymPy ran past its budget of {seconds:g} s")
        reply = pool.run({**job, "simplify": False}, left, admission)
        return reply, False, notes
    except sympy_pool.WorkerBusy:
        raise
    except sympy_pool.WorkerTimeout as e:
        raise BudgetExceeded(f"the symbolic derivatives did not finish: {e}") from None
    except sympy_pool.WorkerError as e:
        raise ComputeLimitError(f"SymPy could not derive this graph: {e}") from None


def _conventions(nodes: list[list[Any]], frozen: list[str]) -> list[Note]:
    """A note per non-differentiable op: what its derivative is taken to be, and why."""
    out, seen = [], set()
    for nid, op, *_ in nodes:
        if nid in frozen and op not in seen:
            seen.add(op)
            out.append(
                Note(
                    "convention",
                    f"{op}' = 0: {op} is held constant by the derivative ({OPS[op].convention})",
                    node=nid,
                )
            )
    return out


def _answer(
    q: SymbolicQuery,
    target: str,
    n: int,
    reply: dict[str, Any],
    simplified: bool,
    notes: list[Note],
) -> SymbolicResult:
    """The reply's distinct entries laid out as /v1/derivative lays them out."""
    at = {tuple(k): i for i, k in enumerate(reply["keys"])}

    def lay(items: list[Any]) -> list[Any]:
        out = []
        for j in range(1, q.order + 1):
            if n == 1:
                out.append(items[at[(0,) * j]])
                continue
            grid = np.empty((n,) * j, dtype=object)
            for idx in np.ndindex(grid.shape):
                grid[idx] = items[at[tuple(sorted(idx))]]
            out.append(grid.tolist())
        return out

    text, latex = reply["text"], reply["latex"]
    size = sum(
        len(text[at[tuple(sorted(idx))]]) + len(latex[at[tuple(sorted(idx))]])
        for j in range(1, q.order + 1)
        for idx in np.ndindex((n,) * j)
    )
    if size > q.max_response_bytes:
        raise CostError(
            f"the derivatives' text is {size} bytes, over the response limit",
            field="order",
            limit="max_response_bytes",
            estimate=float(size),
        )
    values = None
    if "values" in reply:
        nums = reply["values"]
        values = {"function": nums[at[()]], "derivatives": lay(nums)}
        if reply["kinks"]:
            k = len(reply["kinks"])
            notes.append(
                Note(
                    "kink",
                    f"{k} derivative {'entry is' if k == 1 else 'entries are'}"
                    " at a kink, where the derivative is undefined: NaN",
                    node=target,
                )
            )
    return SymbolicResult(
        target,
        reply["symbols"],
        q.order,
        text[at[()]],
        lay(text),
        latex[at[()]],
        lay(latex),
        values,
        notes,
        simplified,
    )
