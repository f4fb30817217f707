"""What a request will cost, estimated from shapes before anything is computed.

Limits on what a request *contains* (nodes, elements) say nothing of what it costs:
one scalar broadcast to 10^6 elements and fed to ``solve`` is a few hundred bytes
that factorise a matrix per element. Each op declares its work from shapes in the op
table (``engine.ops.costs``); this module adds them over a graph for what the
request asks (forward, gradient, Jacobian, Hessian, higher orders, points) and
refuses the request, naming the costliest node, when its work, its peak working
memory or its answer would pass the limits.

The model, in work units of about a nanosecond of one core (``engine.ops.costs``):
- forward ``F = sum(OVERHEAD + f_i)`` and memory ``M = sum(bytes_i)``: every node's
  tensor is held until the request ends;
- a reverse sweep carrying ``r`` seed rows, ``G(r) = sum(SWEEP_OVERHEAD + r * b_i)``:
  the Python around an op is paid once per sweep, its arithmetic once per row;
- a recorded sweep (Hessians, higher orders) is differentiated again: about three
  times the entries, each recorded backward op costing twice its own work;
- the answer is ``NUMBER_BYTES`` per number, held in memory while it is encoded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from math import comb

from engine.errors import CostError
from engine.graphs.graph import LEAF_OPS, Graph
from engine.ops.costs import Cost
from engine.ops.registry import OPS
from engine.tape.backprop import CHUNK_ELEMENTS  # a vectorised sweep's rows go in chunks

Shape = tuple[int, ...]

OVERHEAD = 6000.0  # work of the Python around one op of a graph run: tensor, tape entry
SWEEP_OVERHEAD = 3000.0  # and around its rule in one reverse sweep
NODE_BYTES = 600  # a node's Python objects: its tensor, tape entry, names and dict slots
# A request pays for the ids it names too: 10,000 scalar targets of a Jacobian once priced
# at 2e4 took 0.6 s (on the event loop, as tiny), 400 x 400 scalar pairs 5e6 took 1 s.
ID_WORK = 3000.0  # per id of target, sources and watch: its tensor found, seeded, answered
CALL_WORK = 60000.0  # per target of a Jacobian: a tape.jacobian call, and sweep, of its own
PASS_WORK = 1000.0  # and per op of the tape, which that call plans its sweep over and skips
MAX_SWEEP_GROUPS = 4  # target sizes priced exactly (engine.cost._ancestor_sweeps)
PAIR_WORK = 6000.0  # per (target, source) of a Jacobian: a block, or the note why it is None
PAIR_BYTES = 200  # and what that note adds to the answer
# per (source, source) block of a Hessian: its view, its encoding and its dict slot (999
# scalar sources, 998,001 blocks: 1.9 s and 225 MB over what was priced at 600 and nothing)
BLOCK_WORK = 2000.0
BLOCK_BYTES = 200
PATTERN_WORK = 250.0  # per element of the graph: a sparse Hessian's index sets and colours
FLOAT_BYTES = 8
TRACE_ENTRY_BYTES = 400  # one trace entry: its line of text and its JSON object, names and attrs
TRACE_NAME_COPIES = 5  # and each name in it: in the leaves, the header, an entry, its line,
# as measured (a 6.1 MB answer priced at 5.4 MB with four)
NUMBER_BYTES = 25  # the longest float64 in JSON, "-2.2250738585072014e-308", and a comma
RECORDED = 3.0  # a recorded sweep differentiated again: entries and work, relative
SMALL_BYTES = 1 << 20  # a graph this small is not worth finding its sweep's frontier


@dataclass(frozen=True)
class CostLimits:
    """The three bounds a request's estimate is held to (the service's settings)."""

    max_work: float = 3e9
    max_bytes: float = 192 * 2**20
    max_response_bytes: float = 64 * 2**20


@dataclass(slots=True)
class Estimate:
    """A request's estimated work, peak working memory and answer size."""

    work: float
    bytes: float
    response_bytes: float
    costliest: str | None = None  # the node whose forward and backward cost most


@dataclass(slots=True)
class GraphCost:
    """A graph's costs at given shapes, for one run (``points`` scale every batched node)."""

    forward: float  # F: every op once, with its overhead
    backward: float  # sum of the VJP work per seed row, without overhead
    ops: int  # op nodes (each pays OVERHEAD per sweep)
    bytes: float  # M: every node's tensor
    frontier: float  # the most cotangent bytes one seed row holds at once in a sweep
    widest: float  # the largest tensor, bytes
    scratch: float  # the largest temporary an op allocates beyond its output
    costliest: str | None
    node_backward: tuple[float, ...] = ()  # each node's VJP work per seed row, in graph order

    def sweep(self, rows: float = 1.0) -> float:
        """G(r): one reverse sweep carrying ``rows`` seed rows."""
        return self.ops * SWEEP_OVERHEAD + rows * self.backward

    def chunk(self, rows: float) -> float:
        """How many rows a vectorised sweep carries at once (engine.tape.backprop's chunks)."""
        widest_elements = max(self.widest / FLOAT_BYTES, 1.0)
        return max(1.0, min(rows, CHUNK_ELEMENTS // widest_elements))


def cells(shape: Shape) -> int:
    """A tensor's size as memory and JSON see it: its elements, or for an empty tensor its
    rows, since (10**9, 0) holds no number but is a billion nested lists to write out."""
    n = 1
    for d in shape:
        if d == 0:
            return n
        n *= d
    return n


def graph_cost(graph: Graph, shapes: Mapping[str, Shape], batched: Collection[str] = (),
               points: int = 1) -> GraphCost:
    """Add the op table's cost rules over ``graph`` at ``shapes`` (one point's); a node in
    ``batched`` runs over ``points`` points at once, so its work and bytes scale by it."""
    forward = backward = total = widest = scratch = most = 0.0
    ops = 0
    costliest = None
    nodes, rules = graph.nodes, OPS
    seen: dict[tuple, Cost] = {}
    node_backward: list[float] = []
    for nid in graph.order:
        node = nodes[nid]
        shape = shapes[nid]
        scale = points if nid in batched else 1
        nbytes = FLOAT_BYTES * cells(shape) * scale
        total += nbytes
        if nbytes > widest:
            widest = nbytes
        if node.op in LEAF_OPS:
            node_backward.append(0.0)
            continue
        ins = tuple([shapes[x] if type(x) is str else x.value.shape for x in node.inputs])
        if node.attrs:
            cost = rules[node.op].cost(ins, shape, node.attrs)
        else:  # most nodes: the same op on the same shapes costs the same (a scalar chain)
            cost = seen.get((node.op, shape, ins))
            if cost is None:
                cost = seen[node.op, shape, ins] = rules[node.op].cost(ins, shape, node.attrs)
        ops += 1
        forward += cost[0] * scale
        backward += cost[1] * scale
        node_backward.append(cost[1] * scale)
        if cost[2] * scale > scratch:
            scratch = cost[2] * scale
        if (cost[0] + cost[1]) * scale >= most:
            costliest, most = nid, (cost[0] + cost[1]) * scale
    total += ops * NODE_BYTES
    forward += ops * OVERHEAD
    # the frontier matters only where memory does: a small graph's is at most its total
    frontier = total if total <= SMALL_BYTES else _frontier(graph, shapes, batched, points)
    return GraphCost(forward, backward, ops, total, frontier, widest, scratch, costliest,
                     tuple(node_backward))


def _frontier(graph: Graph, shapes: Mapping[str, Shape], batched: Collection[str],
              points: int) -> float:
    """The peak bytes of live cotangents in one reverse sweep: a node's cotangent lives
    from its last reader's rule (in reverse order) until its own rule has run."""
    live: dict[str, float] = {}
    held = peak = 0.0
    for nid in reversed(graph.order):
        mine = live.pop(nid, 0.0)
        for x in graph.nodes[nid].inputs:
            if type(x) is str and x not in live:
                live[x] = FLOAT_BYTES * cells(shapes[x]) * (points if x in batched else 1)
                held += live[x]
        peak = max(peak, held + mine)
        held -= mine
    return peak


def graph_bytes(graph: Graph) -> int:
    """What a validated graph holds in memory: its leaf values and inline constants, and
    the Python objects of each node (a registered graph is kept across requests)."""
    leaves = sum(max(1, int(getattr(node.value, "size", 1))) for node in graph.nodes.values()
                 if node.value is not None)
    return NODE_BYTES * len(graph.nodes) + FLOAT_BYTES * (leaves + graph.inline_elements)


def _numbers(count: float) -> float:
    return NUMBER_BYTES * count


def _answer(numbers: float, working: float) -> tuple[float, float]:
    """(response bytes, peak memory): the answer's arrays and its encoding are held at once."""
    response = _numbers(numbers) + 1024
    return response, working + response + FLOAT_BYTES * numbers


def trace_names(graph: Graph) -> float:
    """The bytes of the names a trace writes, each about ``TRACE_NAME_COPIES`` times (its
    leaves, its text's header and lines, each entry's inputs): every op node's id and its
    inputs', an inline constant's being ``<node id>.inputs[k]``. 120 nodes of 128-byte ids
    reading 999 inline constants each, priced without them at 279 KB, answered 76.5 MB."""
    total = 0
    for nid, node in graph.nodes.items():
        if node.inputs:
            own = len(nid) + 12  # and ".inputs[k]"
            total += 2 * len(nid) + sum(len(x) if type(x) is str else own for x in node.inputs)
    return float(total)


def traced(g: GraphCost, grads: bool = True, names: float = 0.0) -> float:
    """A trace's size in numbers: every recorded value (and cotangent), plus each entry's
    line of text and its structured form, and the names in them (``trace_names``),
    counted as numbers of the same bytes."""
    return ((2 if grads else 1) * g.bytes / FLOAT_BYTES
            + (g.ops * TRACE_ENTRY_BYTES + TRACE_NAME_COPIES * names) / NUMBER_BYTES)


def evaluate(g: GraphCost, outputs: float, trace: bool = False, names: float = 0.0) -> Estimate:
    """Forward only; with a trace, recorded on a tape (values, no cotangents)."""
    extra = traced(g, grads=False, names=names) if trace else 0.0
    response, peak = _answer(outputs + extra, g.bytes * (1 + trace) + g.scratch)
    return Estimate(g.forward * (RECORDED if trace else 1.0), peak, response, g.costliest)


def gradient(g: GraphCost, outputs: float, sources: float, trace: bool = False,
             names: float = 0.0) -> Estimate:
    """Forward, one sweep; cotangents held as the tensors are, and a trace of both."""
    traced_numbers = traced(g, names=names) if trace else 0.0
    response, peak = _answer(outputs + sources + traced_numbers,
                             g.bytes + g.frontier + 2 * g.widest + g.scratch)
    return Estimate(g.forward + g.sweep(), peak, response, g.costliest)


def with_ids(estimate: Estimate, ids: int) -> Estimate:
    """``estimate`` and the work of the ``ids`` ids a request names (target, sources, watch)."""
    return Estimate(estimate.work + ids * ID_WORK, estimate.bytes, estimate.response_bytes,
                    estimate.costliest)


def jacobian(g: GraphCost, graph: Graph, rows_each: Mapping[str, int], cols: float,
             trace: bool = False, sources: int = 1, names: float = 0.0,
             pair_names: float = 0.0) -> Estimate:
    """One ``tape.jacobian`` call per target id (engine.derive.derivatives.jacobian): a pass
    over the tape, then one vectorised sweep over the target's ancestors, a seed per target
    element, or per source element when the target is tall (engine.tape.transposed, which
    records a sweep and sweeps it again); and a block per (target, source) pair. One
    target is priced over the whole graph, several each over its own ancestors: forty
    outputs of `expressions` share their variables, not their sweeps."""
    calls: dict[str, tuple[float, float]] = {}  # target -> (factor, seeds)
    for t, rows in rows_each.items():
        tall = rows > 2 * max(cols, 1)
        calls[t] = (RECORDED if tall else 1.0, cols if tall else rows)
    if len(calls) == 1:
        ((factor, seeds),) = calls.values()
        swept = factor * (g.sweep() + g.sweep(seeds))
    else:
        passes = sum(f for f, _ in calls.values()) * g.ops * PASS_WORK
        swept = passes + _ancestor_sweeps(g, graph, calls)
    pairs = len(calls) * sources
    work = g.forward + swept + len(calls) * CALL_WORK + pairs * PAIR_WORK
    working = max(f * (g.bytes + g.chunk(s) * (g.frontier + 2 * g.widest))
                  for f, s in calls.values()) + g.scratch
    rows = sum(rows_each.values())
    extra = traced(g, grads=False, names=names) if trace else 0.0
    # a pair's note names its source and its target, about twice each (``pair_names`` in
    # all): 500 by 500 ids of 128 bytes, priced at 200 bytes a pair, answered 176 MB
    notes = (pairs * PAIR_BYTES + pair_names) / NUMBER_BYTES  # as numbers of the same bytes
    response, peak = _answer(2 * rows * cols + rows + extra + notes, working)
    return Estimate(work, peak, response, g.costliest)


def _ancestor_sweeps(g: GraphCost, graph: Graph, calls: Mapping[str, tuple[float, float]]
                     ) -> float:
    """The sweeps of ``calls`` (target -> factor, seeds), each over the op nodes the target
    depends on: an op's overhead, and its VJP work per seed row and for the pass that
    plans the sweep. Which targets reach a node are the bits of one int, OR-ed from its
    consumers in reverse order, so a node shared by several paths counts once per target.
    Targets of one (factor, seeds) share a pass; past ``MAX_SWEEP_GROUPS`` of them, all are
    priced in one pass at the costliest, so the estimate costs a few passes at most."""
    groups: dict[tuple[float, float], list[str]] = {}
    for t, call in calls.items():
        groups.setdefault(call, []).append(t)
    if len(groups) > MAX_SWEEP_GROUPS:  # one pass each: 5,000 target sizes took 2.2 s
        groups = {max(groups, key=lambda call: call[0] * (call[1] + 1)): list(calls)}
    order, nodes, backward = graph.order, graph.nodes, g.node_backward
    total = 0.0
    for (factor, seeds), targets in groups.items():
        reach = {t: 1 << k for k, t in enumerate(targets)}
        for i in range(len(order) - 1, -1, -1):
            nid = order[i]
            mask = reach.get(nid)
            node = nodes[nid]
            if not mask or node.op in LEAF_OPS:
                continue
            total += factor * mask.bit_count() * (SWEEP_OVERHEAD + (seeds + 1) * backward[i])
            for x in node.inputs:
                if type(x) is str:
                    reach[x] = reach.get(x, 0) | mask
    return total


def hessian(g: GraphCost, n: float, points: int = 1, sources: int = 1) -> Estimate:
    """Nested tapes: a recorded gradient, then one vectorised sweep of n rows over it; a
    block per pair of source ids."""
    work = g.forward + RECORDED * (g.sweep() + g.sweep(n)) + sources**2 * BLOCK_WORK
    working = (RECORDED * (g.bytes + g.chunk(n) * (g.frontier + 2 * g.widest)) + g.scratch
               + sources**2 * BLOCK_BYTES)
    response, peak = _answer(2 * points * n * n + 2 * points * n, working)
    return Estimate(work, peak, response, g.costliest)


def sparse_hessian(g: GraphCost, n: float, colours: float = 1.0, dense: bool = False,
                   sources: int = 1) -> Estimate:
    """A recorded gradient, its pattern, and one compressed sweep of ``colours`` rows;
    ``dense``: answered as the whole n x n matrix and its blocks, as ``hessian``."""
    pattern = PATTERN_WORK * g.bytes / FLOAT_BYTES
    blocks = sources**2 if dense else 0
    work = g.forward + pattern + RECORDED * (g.sweep() + g.sweep(colours)) + blocks * BLOCK_WORK
    working = (RECORDED * (g.bytes + g.chunk(colours) * (g.frontier + 2 * g.widest))
               + g.scratch + blocks * BLOCK_BYTES)
    numbers = 2 * n * n + 2 * n if dense else 3 * n * colours + n
    response, peak = _answer(numbers, working)
    return Estimate(work, peak, response, g.costliest)


def derivatives(g: GraphCost, n: int, order: int) -> Estimate:
    """``order`` nested tapes: at level j, one sweep per multiset of j - 1 source indices,
    each over a tape about ``RECORDED ** (j - 1)`` times the graph, recorded by the
    levels still open (all but the last)."""
    work, held = g.forward, g.bytes
    for j in range(1, order + 1):
        sweeps = comb(n + j - 2, j - 1) if n else 1
        work += sweeps * RECORDED ** (j - 1) * g.sweep()
        if j < order:
            held += sweeps * RECORDED ** (j - 1) * 2 * g.bytes
    working = held + 2 * RECORDED ** (order - 1) * g.bytes + g.scratch
    numbers = sum(max(n, 1) ** j for j in range(1, order + 1))
    response, peak = _answer(numbers + n, working)
    return Estimate(work, peak, response, g.costliest)


def enforce(estimate: Estimate, limits: CostLimits, what: str) -> None:
    """A CostError naming the limit, the estimate and the costliest node, past any limit."""
    if (estimate.work <= limits.max_work and estimate.bytes <= limits.max_bytes
            and estimate.response_bytes <= limits.max_response_bytes):
        return  # the common case, without building the table below
    for name, value, limit, unit in (
        ("max_work", estimate.work, limits.max_work, "work units (about 1 ns each)"),
        ("max_request_bytes", estimate.bytes, limits.max_bytes, "bytes of working memory"),
        ("max_response_bytes", estimate.response_bytes, limits.max_response_bytes,
         "bytes of response"),
    ):
        if value > limit:
            where = f"; the costliest node is {estimate.costliest!r}" if estimate.costliest else ""
            raise CostError(
                f"the {what} is estimated at {value:.3g} {unit}, over the limit of {limit:.3g}"
                f"{where}",
                node=estimate.costliest, limit=name, estimate=value,
            )
