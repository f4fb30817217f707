"""The check's job as plain data, and what each method would cost on it.

``build_job`` turns the request's graph into plain data (ops by name), pruned to what
the targets need; the same job goes to the SymPy worker and to finite differences, and
says what to compute by quantity name (``Kind.compares``), never by kind. What
``check: auto`` decides by is estimated here: each quantity's costs are a row of
``CHECK_COSTS``, and a job's are the sum over the quantities it compares.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from engine.check.limits import CheckLimits, budget_work
from engine.ops.registry import OPS

if TYPE_CHECKING:
    from engine.derive.kinds import Kind
    from engine.derive.query import Query, Result
    from engine.graphs.graph import Graph

Job = dict[str, Any]
Shapes = dict[str, tuple[int, ...]]
LINALG_SQUARE = ("inv", "det", "solve")


class Sizes(NamedTuple):
    """A job's size as the estimates see it."""

    src: int  # elements of the checked sources
    tgt: int  # elements of the targets
    order: int  # derivatives: every order up to this one


def distinct(n: int, order: int) -> int:
    """Distinct entries of every order's symmetric derivative tensor in ``n`` sources."""
    return sum(math.comb(n + j - 1, j) for j in range(1, order + 1))


@dataclass(frozen=True)
class CheckCost:
    """What comparing one quantity costs each method, and what it needs of the job."""

    order: Callable[[int], int]
    """Its derivative order, given the job's (0: values). From 1 on it needs sources;
    from 2 on they must be leaves and finite differences have a tighter limit."""
    of_loss: bool
    """It differentiates the targets' sum weighted by ``output_gradients``."""
    entries: Callable[[Sizes], int]
    """Entries SymPy forms, for ``auto``'s ``sympy_max_derivatives``."""
    work: Callable[[Sizes], int]
    """Derivative entries the expression's size is multiplied by in ``sympy_work``."""
    runs: Callable[[Sizes], int]
    """Forward runs finite differences take (beyond the unperturbed one)."""
    entries_are: str = "derivative entries"
    needs_a_source: bool = False
    """A tensor over the checked sources: nothing to check without one."""


CHECK_COSTS: dict[str, CheckCost] = {
    "outputs": CheckCost(lambda _k: 0, False, lambda z: z.tgt, lambda _z: 0, lambda _z: 0),
    "gradients": CheckCost(lambda _k: 1, True, lambda z: z.src, lambda z: z.src,
                      lambda z: 4 * z.src),
    "jacobian": CheckCost(lambda _k: 1, False, lambda z: z.tgt * z.src, lambda z: z.src,
                     lambda z: 4 * z.src),
    "hessian": CheckCost(lambda _k: 2, True, lambda z: z.src * z.src, lambda z: z.src * z.src,
                    lambda z: 4 * z.src * (z.src + 1)),
    # each order differentiates the last one, whose tree grows about linearly with it;
    # finite differences stop at the second order
    "derivatives": CheckCost(lambda k: k, True, lambda z: distinct(z.src, z.order),
                        lambda z: distinct(z.src, z.order) * z.order,
                        lambda z: 4 * z.src + (4 * z.src * (z.src + 1) if z.order > 1 else 0),
                        entries_are="distinct derivative entries", needs_a_source=True),
    # a Hessian as the response lays it out: the Hessian's own entries, gathered, so
    # they cost neither method anything beyond the Hessian's row
    "matrix": CheckCost(lambda _k: 2, True, lambda _z: 0, lambda _z: 0, lambda _z: 0),
    "sparse": CheckCost(lambda _k: 2, True, lambda _z: 0, lambda _z: 0, lambda _z: 0),
}


NAMED_CONSTANTS = {"e": math.e, "pi": math.pi}  # as an expression names them


def plain_nodes(graph: Graph, roots: list[str]) -> list[list[Any]]:
    """``[id, op, inputs, attrs]`` of every node the roots read, in graph order: what a
    worker process can take (ops by name, constants as lists), and nothing it need not
    compute."""
    need: set[str] = set()
    stack = list(roots)
    while stack:  # iterative: graphs can be deep
        nid = stack.pop()
        if nid not in need:
            need.add(nid)
            stack.extend(x for x in graph.nodes[nid].inputs if isinstance(x, str))
    nodes = []
    for nid in graph.order:
        if nid in need:
            n = graph.nodes[nid]
            ins = [x if isinstance(x, str) else np.asarray(x.value).tolist() for x in n.inputs]
            attrs = dict(n.attrs)
            if n.op == "constant" and _named_constant(nid, n.value):
                attrs["exact"] = nid  # SymPy's own E or pi, not a symbol named e
            nodes.append([nid, n.op, ins, attrs])
    return nodes


def _named_constant(nid: str, value: Any) -> bool:
    """Whether a constant node is an expression's ``e`` or ``pi``: that name, that value."""
    exact = NAMED_CONSTANTS.get(nid)
    return exact is not None and np.ndim(value) == 0 and float(value) == exact


# A graph of at most this many nodes and inline constant elements keeps the plan of its
# last check (``planned_job``): 25 KiB at these bounds, 3 KiB for the seed's graph
# (tracemalloc), so the 272 graphs the plan cache and the graph store hold keep 7 MB at most.
PLAN_MEMO_NODES = 64
PLAN_MEMO_ELEMENTS = 256


class JobPlan:
    """What a check decides from its job's structure alone (the graph, the ids, the
    shapes; never a value): the job's plain nodes and what ``auto`` decides by. A small
    reused graph keeps its last one (``planned_job``), so a client that sends one graph
    with new values has it made once: for the seed's request, about a third of its check
    (from 170 to 110 µs of CPU in-process)."""

    def __init__(self, skeleton: Job, need: frozenset[str], shapes: Shapes,
                 limits: CheckLimits) -> None:
        self._skeleton = skeleton  # the job with its values and weights left out
        self.need = need  # the ids of its nodes
        self.shapes = shapes  # of the nodes the job needs
        self._limits = limits

    def job(self, values: dict[str, Any], weights: dict[str, np.ndarray]) -> Job:
        """The job of one request: the plan's, with that request's values and weights."""
        return {**self._skeleton, "values": values, "weights": weights}

    @cached_property
    def unchecked(self) -> str:
        """``not_checkable``: why neither method checks the job, or ""."""
        return not_checkable(self._skeleton)

    @cached_property
    def sympy_auto(self) -> tuple[str, int | None]:
        """``sympy_lines`` for ``auto``: why SymPy should not run, and its work."""
        return sympy_lines(self._skeleton, self.shapes, self._limits, auto=True)

    @cached_property
    def numeric(self) -> tuple[bool, str]:
        """``numeric_fits`` for ``auto``: whether finite differences may run, and why not."""
        return numeric_fits(self._skeleton, self.shapes, self._limits)

    @cached_property
    def numeric_asked(self) -> tuple[bool, str]:
        """``numeric_fits`` for an explicit ``numeric``: its memory and work lines only."""
        return numeric_fits(self._skeleton, self.shapes, self._limits, auto=False)


def build_job(kind: Kind, query: Query, result: Result, limits: CheckLimits
              ) -> tuple[Job, Shapes, list[str]]:
    """The graph as plain data (ops by name), pruned to what the targets need; shapes;
    and the sources the tape does not watch (None by design, never compared)."""
    job, plan, unwatched = planned_job(kind, query, result, limits)
    return job, dict(plan.shapes), unwatched


def planned_job(kind: Kind, query: Query, result: Result, limits: CheckLimits
                ) -> tuple[Job, JobPlan, list[str]]:
    """``build_job``'s job, with its plan (kept with a small reused graph) and the
    unwatched sources."""
    graph = query.graph
    costs = [CHECK_COSTS[q] for q in kind.compares]
    order = len(result.derivatives or ())  # 0 but for the derivative kind
    unwatched = [n.source for n in result.notes
                 if n.source is not None and n.reason == "not_watched"]
    by_source = any(c.order(order) for c in costs)
    sources = [s for s in result.sources if s not in unwatched] if by_source else []
    leaf_values = graph.leaf_values(query.values)
    shapes = graph.infer_shapes(leaf_values, getattr(query, "limits", graph.limits))
    weights = {}
    if any(c.of_loss for c in costs):
        weights = {t: np.asarray(w, np.float64) for t, w in (query.output_gradients or {}).items()}

    def plan() -> JobPlan:
        nodes = plain_nodes(graph, [*result.targets, *sources])
        need = frozenset(node[0] for node in nodes)
        skeleton = {
            "quantities": list(kind.compares),
            "order": order,
            "nodes": nodes,
            # without values or weights: kept with the graph, it holds no client data
            "values": dict.fromkeys(k for k in leaf_values if k in need),
            "targets": list(result.targets),
            "sources": sources,
            "weights": {},
            "frozen": [n[0] for n in nodes if n[1] in OPS and OPS[n[1]].vjp is None],
            "text_max": limits.text_max_elements,
            # every source of the result in order, with its size: how a laid-out Hessian
            # (matrix, sparse) flattens them (engine.check.layout); not used by the methods
            "layout": [[s, math.prod(shapes[s])] for s in result.sources],
            # what an unwatched source's entries are by design (None, or zeros): compared
            # as such (engine.check.agreement), never as a derivative; not used by the
            # methods
            "unconnected": query.unconnected_gradients,
        }
        return JobPlan(skeleton, need, {k: v for k, v in shapes.items() if k in need}, limits)

    remembered = getattr(graph, "remembered_last", None)
    if (remembered is None or len(graph.nodes) > PLAN_MEMO_NODES
            or graph.inline_elements > PLAN_MEMO_ELEMENTS):
        made = plan()
    else:
        made = remembered("check plan", shapes, (tuple(kind.compares), order,
                          tuple(result.targets), tuple(sources), tuple(result.sources), limits,
                          query.unconnected_gradients),
                          plan)
    values = {k: v for k, v in leaf_values.items() if k in made.need}
    return made.job(values, weights), made, unwatched


def _costs(job: Job) -> list[CheckCost]:
    return [CHECK_COSTS[q] for q in job["quantities"]]


def _elements(ids: list[str], shapes: Shapes) -> int:
    return sum(math.prod(shapes[i]) for i in ids)


def _sizes(job: Job, shapes: Shapes) -> Sizes:
    return Sizes(_elements(job["sources"], shapes), _elements(job["targets"], shapes),
                 job["order"])


def _highest_order(job: Job) -> int:
    return max(c.order(job["order"]) for c in _costs(job))


def not_checkable(job: Job) -> str:
    """Why neither method checks this job, or ""."""
    if _highest_order(job) >= 2 and any(s not in job["values"] for s in job["sources"]):
        return "a Hessian with respect to an inner node is not cross-checked"
    if not job["sources"] and any(c.needs_a_source for c in _costs(job)):
        return "no watched source"
    return ""


def sympy_too_big(job: Job, shapes: Shapes, limits: CheckLimits, auto: bool) -> str:
    """Why SymPy should not run on this job, or "" if it should."""
    return sympy_lines(job, shapes, limits, auto)[0]


def sympy_lines(job: Job, shapes: Shapes, limits: CheckLimits, auto: bool
                ) -> tuple[str, int | None]:
    """``sympy_too_big``'s answer, and ``sympy_work`` when it was estimated on the way
    (None otherwise), so a caller that runs SymPy next does not estimate it again."""
    largest = max((math.prod(s) for s in shapes.values()), default=0)
    if len(job["nodes"]) > limits.sympy_max_nodes:
        return f"{len(job['nodes'])} nodes, over SymPy's limit of {limits.sympy_max_nodes}", None
    if largest > limits.sympy_max_elements:
        return (f"a tensor of {largest} elements, over SymPy's limit of "
                f"{limits.sympy_max_elements}"), None
    if not auto:
        return "", None
    costs, sizes = _costs(job), _sizes(job, shapes)
    entries = sum(c.entries(sizes) for c in costs)
    if entries > limits.sympy_max_derivatives:
        return (f"{entries} {costs[-1].entries_are}, over SymPy's limit of "
                f"{limits.sympy_max_derivatives}"), None
    work = sympy_work(job, shapes)
    if work > limits.sympy_max_work:
        return f"an estimated {work} units of symbolic work, over SymPy's limit of " \
               f"{limits.sympy_max_work}", work
    for nid, op, ins, _ in job["nodes"]:
        if op in LINALG_SQUARE and isinstance(ins[0], str) and shapes[ins[0]]:
            n = shapes[ins[0]][-1]
            if n > limits.sympy_max_matrix:
                return f"{op} of a {n}x{n} matrix at {nid!r}, over SymPy's limit of " \
                       f"{limits.sympy_max_matrix}", work
    return "", work


def sympy_plan(auto_why: str, explicit_why: str, work: int, limits: CheckLimits
               ) -> tuple[str, bool]:
    """An explicit SymPy check: why it does not run (or ""), and whether it is heavy.

    ``auto_why`` and ``explicit_why`` are ``sympy_too_big``'s answers. Past auto's
    lines a job still runs, as heavy (it may not take the last free worker); one
    estimated at many budgets' worth is refused outright, so it cannot hold a worker
    for its whole budget only to be killed.
    """
    if explicit_why:
        return explicit_why, True
    cap = int(budget_work(limits) * limits.sympy_refuse_budgets)
    if work > cap:
        return (f"an estimated {work} units of symbolic work, far over the {cap} SymPy "
                f"could finish in its {limits.sympy_seconds:g} s budget: not run"), True
    return "", bool(auto_why)


def sympy_work(job: Job, shapes: Shapes) -> int:
    """The derivative's size written out as a tree, times the derivative entries.

    A node used twice counts twice (SymPy's derivative of a shared subexpression grows
    like the written-out tree), an element reading k input elements (a reduction, a
    matmul's contraction) counts each of them, and an element of inv, det or solve of
    an n x n matrix reads n * n! (cofactor expansion: n! products of n entries).
    """
    cap = 10**12
    terms: dict[str, int] = {}
    for nid, op, ins, _ in job["nodes"]:
        if op in ("variable", "constant"):
            terms[nid] = 1
            continue
        out = max(1, math.prod(shapes[nid]))
        total = 1
        for x in ins:
            if not isinstance(x, str):
                total += 1
                continue
            fan = max(1, math.prod(shapes[x]) // out)
            if op == "matmul" and shapes[ins[0]]:
                fan = shapes[ins[0]][-1]
            if op in LINALG_SQUARE and x == ins[0] and shapes[x]:
                fan = shapes[x][-1] * math.factorial(shapes[x][-1])
            total += terms[x] * fan
        terms[nid] = min(cap, total)
    # the chain rule gives each node a factor holding its own subtree, so the derivative
    # is about as large as every node's tree together
    size = sum(terms[n[0]] * math.prod(shapes[n[0]]) for n in job["nodes"])
    sizes = _sizes(job, shapes)
    return min(cap, size * max(1, sum(c.work(sizes) for c in _costs(job))))


def numeric_fits(job: Job, shapes: Shapes, limits: CheckLimits, auto: bool = True
                 ) -> tuple[bool, str]:
    """Whether finite differences may check the job, and why not: ``auto`` within its
    lines on sources too, an explicit ``numeric`` within the memory and work lines."""
    values = sum(math.prod(s) for s in shapes.values())
    if values > limits.numeric_max_values:
        return False, (f"{values} elements in the graph's values, over finite differences' "
                       f"limit of {limits.numeric_max_values}")
    src = _elements(job["sources"], shapes)
    second = _highest_order(job) >= 2
    cap = limits.numeric_max_hessian_elements if second else limits.numeric_max_elements
    if auto and src > cap:
        return False, f"{src} source elements, over finite differences' limit of {cap}"
    sizes = _sizes(job, shapes)
    runs = 1 + sum(c.runs(sizes) for c in _costs(job))
    work = runs * max(1, values)
    if work > limits.numeric_max_work:
        return False, (f"{runs} forward runs of {work // runs} elements, over finite "
                       f"differences' limit of {limits.numeric_max_work}")
    return True, ""
