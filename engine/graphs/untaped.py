"""A graph's run and its first-order gradient straight off its run plan, with no tape.

A graph is already the program a tape would record: its plan (engine.graphs.run_plan)
lists every op in topological order with the positions of its inputs. When nothing
needs the recording itself (one point, no trace, no second order, no tape open around
the call), ``run_values`` runs it on raw values and ``sweep`` walks the plan backwards
with the rules the tape's sweep calls (``OpDef.rule``, on raw values as engine.tape.backprop's
raw sweep gives them), keeping cotangents in a list by position. No Tensor, tape entry
or watched set is made per op: on a 100,000-op scalar chain, about two thirds of the time
of recording and sweeping a tape. The loops are the tape's (``Graph.run``,
engine.tape.backprop's sweep) written again for positions and raw values, since a call
more per node is what each of them saves.

``gradient`` answers what GradientTape would, bit for bit: a source is watched as the
tape would watch it; cotangents flow from the targets along ops with a rule, only into
inputs on a path from a watched source, added in the tape sweep's order; a source with
no gradient gets None (or zeros) and the tape's note on why (``none_note``).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from engine import budget
from engine.errors import EngineError
from engine.graphs.graph import BIG_OUTPUT, RUN_CHECK_EVERY, Graph, with_node
from engine.graphs.run_plan import (
    CALL_CONST_REF,
    CALL_LEAF,
    CALL_REF,
    CALL_REF_CONST,
    CALL_REF_REF,
    Step,
)
from engine.notes import Note
from engine.tape.arguments import unconnected_mode
from engine.tape.backprop import (
    ALONE,
    BOTH_NEEDED,
    CHECK_EVERY,
    FIRST_NEEDED,
    IN_PLACE_MIN,
    ONE_INPUT_NEEDED,
    SECOND_NEEDED,
    fit_cotangent,
    plus_into,
)
from engine.tape.gradient_tape import none_note
from engine.tape.recording import TAPE_STACK, as_output
from engine.tensor import Value, as_value

_f64 = np.float64
_ndarray = np.ndarray
_refs = sys.getrefcount


class ValuesById(Mapping[str, Any]):
    """A run's values (``run_values``) read by node id. The dict from ids to values is
    made only when an id is looked up (numeric notes on a graph with a kink or a
    non-finite value): a graph keeps a map of its leaves' positions only."""

    def __init__(self, graph: Graph, values: list[Any]) -> None:
        self._order = graph.order
        self._values = values
        self._by_id: dict[str, Any] | None = None

    def _map(self) -> dict[str, Any]:
        if self._by_id is None:
            self._by_id = dict(zip(self._order, self._values, strict=True))
        return self._by_id

    def __getitem__(self, key: str) -> Any:
        return self._map()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._map()

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._values)

    def values(self) -> Any:  # the run's own list (a Collection, in the graph's order)
        return self._values


def positions(graph: Graph, ids: Sequence[str]) -> list[int]:
    """Where each id sits in the graph's order: a leaf from the graph's own map of leaves,
    any other node by a walk from the end (a target is most often the last node)."""
    leaf = graph.leaf_position
    wanted = {i for i in ids if i not in leaf}
    found: dict[str, int] = {}
    order = graph.order
    for k in range(len(order) - 1, -1, -1) if wanted else ():
        if order[k] in wanted:
            found[order[k]] = k
            if len(found) == len(wanted):
                break
    return [leaf[i] if i in leaf else found[i] for i in ids]


def watched(graph: Graph, leaf: str, watch: Collection[str],
            watch_accessed_variables: bool) -> bool:
    """Whether a tape around the graph's run would watch ``leaf``: it is watched by name, or
    is a trainable variable that some op reads while the tape watches what ops access
    (TF's ``watch_accessed_variables``)."""
    node = graph.nodes[leaf]
    return leaf in watch or (watch_accessed_variables and node.op == "variable"
                             and node.trainable and leaf in graph.read_leaves)


def recorded(graph: Graph, sources: Sequence[str], where: Sequence[int],
             watch: Collection[str], watch_accessed_variables: bool) -> list[bool]:
    """Per source (at ``where``, its ``positions``), whether a tape around the graph's run
    would hold it: a leaf it watches, or an op node that reads, at some remove, a leaf it
    watches (a tape records every op that reads what it holds)."""
    leaf = graph.leaf_position
    if all(i in leaf for i in sources):
        return [watched(graph, i, watch, watch_accessed_variables) for i in sources]
    held = reach_from(graph.steps(), [k for i, k in leaf.items()
                                      if watched(graph, i, watch, watch_accessed_variables)])
    return [held[k] for k in where]


def run_values(graph: Graph, leaf_values: Mapping[str, Value]) -> list[Any]:
    """Every node's value, in the plan's order, with no Tensor made: ``Graph.run`` for a
    caller that needs no tape. Each op runs as its function runs it on raw values
    (``TAPE_STACK.raw``): the same forward, the same float64 conversion (``as_output``)."""
    done: list[Any] = []
    put = done.append
    nid = ""
    steps = graph.steps()
    check, f64 = budget.check, np.float64
    was_raw = TAPE_STACK.raw
    TAPE_STACK.raw = True
    try:
        for start in range(0, len(steps), RUN_CHECK_EVERY):
            check("graph evaluation")
            for nid, node, fn, call, a, b in steps[start:start + RUN_CHECK_EVERY]:
                # the usual calls (an op with no attrs, one or two inputs, see run_plan)
                # call its forward as its function would on raw values; as_output below
                # makes the same float64
                if call == CALL_REF_REF:
                    out = fn.op.forward(done[a], done[b])
                elif call == CALL_REF:
                    out = fn.op.forward(done[a])
                elif call == CALL_REF_CONST:
                    out = fn.op.forward(done[a], b.value)
                elif call == CALL_LEAF:
                    put(as_value(leaf_values[nid]))
                    continue
                elif call == CALL_CONST_REF:
                    out = fn.op.forward(a.value, done[b])
                else:  # through its function, which also reads its attrs and lists
                    args = [done[x] if type(x) is int else x.value for x in a]
                    out = fn(*args, **node.attrs) if node.attrs else fn(*args)
                if type(out) is not f64:
                    out = as_output(out)
                    if out.size > BIG_OUTPUT:
                        check("graph evaluation")
                put(out)
    except EngineError as e:
        if e.node is not None:
            raise
        raise with_node(e, nid, e.field) from e
    finally:
        TAPE_STACK.raw = was_raw
    return done


def reach_from(steps: Sequence[Step], sources: Collection[int]) -> list[bool]:
    """Per position, whether the node is on a path from a source: the tape's ``reachable``."""
    reach = [False] * len(steps)
    for s in sources:
        reach[s] = True
    for k, (_nid, _node, fn, call, a, b) in enumerate(steps):
        if fn is None or reach[k]:  # a leaf, or a source
            continue
        if call == CALL_REF_REF:
            reach[k] = reach[a] or reach[b]
        elif call == CALL_REF or call == CALL_REF_CONST:
            reach[k] = reach[a]
        elif call == CALL_CONST_REF:
            reach[k] = reach[b]
        else:
            reach[k] = any(reach[x] for x in a if type(x) is int)
    return reach


def gradient(graph: Graph, values: list[Any], targets: Sequence[int], seeds: Sequence[Any],
             sources: Sequence[str], watch: Collection[str], watch_accessed_variables: bool,
             unconnected_gradients: str) -> tuple[list[Any], list[Note]]:
    """Each source's gradient (a raw value) for the seeded targets (by position), from
    ``run_values``'s values, as ``GradientTape.gradient`` gives it: None for a source that
    is not watched or not connected (zeros with ``unconnected_gradients="zero"``), and
    the tape's notes on why."""
    mode = unconnected_mode(unconnected_gradients)
    where = positions(graph, sources)
    seen = recorded(graph, sources, where, watch, watch_accessed_variables)
    swept = iter(sweep(graph, values, targets, seeds,
                       [k for k, w in zip(where, seen, strict=True) if w]))
    grads = [next(swept) if w else None for w in seen]
    notes = []
    for i, w, g in zip(sources, seen, grads, strict=True):
        if g is None:
            node = graph.nodes[i]
            notes.append(none_note(i, i, w, node.op == "variable" and node.trainable,
                                   watch_accessed_variables))
    if mode == "zero":
        grads = [np.zeros(np.shape(values[k])) if g is None else g
                 for k, g in zip(where, grads, strict=True)]
    return grads, notes


def sweep(graph: Graph, values: list[Any], targets: Sequence[int], seeds: Sequence[Any],
          sources: Sequence[int]) -> list[Any]:
    """Each source's cotangent (a raw value) for the seeded targets, nodes named by their
    positions (``positions``), from the values ``run_values`` gave; None for a source with
    no path to a target through ops with a rule. The sources must be ones a tape would
    hold (``recorded``)."""
    steps = graph.steps()
    reach = reach_from(steps, sources)
    keep = {k for k in sources if steps[k][2] is not None}  # op nodes asked for
    n = len(steps)
    cts: list[Any] = [None] * n
    if not sources:
        return []
    for k, seed in zip(targets, seeds, strict=True):
        if reach[k]:
            cts[k] = seed if cts[k] is None else cts[k] + seed
    check = budget.check
    was_raw = TAPE_STACK.raw
    TAPE_STACK.raw = True
    try:
        for end in range(n, 0, -CHECK_EVERY):
            check("reverse sweep")
            for k in range(end - 1, max(end - CHECK_EVERY, 0) - 1, -1):
                g = cts[k]
                if g is None:
                    continue
                _nid, node, fn, call, a, b = steps[k]
                if fn is None:  # a leaf
                    continue
                if k not in keep:
                    cts[k] = None  # passed on: let it go
                rule = fn.op.rule
                if rule is None:  # not differentiable: no gradient flows through
                    continue
                # The usual calls spelled out (no argument list built per node). A rule runs
                # only for inputs on a path from a source, as on the tape, where a node with
                # none is not even recorded as on a path (an op node asked for as a source).
                if call == CALL_REF:
                    if reach[a]:
                        (gx,) = rule(g, ONE_INPUT_NEEDED, values[k], values[a])
                        _add(cts, a, gx, values)
                elif call == CALL_REF_REF:
                    if reach[a]:
                        if reach[b]:
                            gx, gy = rule(g, BOTH_NEEDED, values[k], values[a], values[b])
                            _add(cts, b, gy, values)  # as the tape's sweep: the second's first
                        else:
                            gx, _ = rule(g, FIRST_NEEDED, values[k], values[a], values[b])
                        _add(cts, a, gx, values)
                    elif reach[b]:
                        _, gy = rule(g, SECOND_NEEDED, values[k], values[a], values[b])
                        _add(cts, b, gy, values)
                elif call == CALL_REF_CONST:
                    if reach[a]:
                        gx, _ = rule(g, FIRST_NEEDED, values[k], values[a], b.value)
                        _add(cts, a, gx, values)
                elif call == CALL_CONST_REF:
                    if reach[b]:
                        _, gy = rule(g, SECOND_NEEDED, values[k], a.value, values[b])
                        _add(cts, b, gy, values)
                else:
                    _pass_back(rule, g, values, values[k], a, node.attrs, reach, cts)
    finally:
        TAPE_STACK.raw = was_raw
    return [cts[k] for k in sources]


def _pass_back(rule: Any, g: Any, values: list[Any], ans: Any, inputs: tuple[Any, ...],
               attrs: dict[str, Any], reach: list[bool], cts: list[Any]) -> None:
    """A node called with any inputs (``CALL_ANY``): its rule, if an input is on a path from
    a source, and their cotangents added to ``cts`` in the tape sweep's order (of two
    inputs, the second's first)."""
    needs = tuple([type(x) is int and reach[x] for x in inputs])
    if True not in needs:
        return
    grads = rule(g, needs, ans, *[values[x] if type(x) is int else x.value for x in inputs],
                 **attrs)
    if len(grads) != len(inputs):
        raise AssertionError("one cotangent per input")
    for i in (1, 0) if len(inputs) == 2 else range(len(inputs)):
        if needs[i]:
            _add(cts, inputs[i], grads[i], values)


def _add(cts: list[Any], k: int, gx: Any, values: list[Any]) -> None:
    """Add ``gx`` (None: nothing) to the cotangent at ``k``, summed down to that node's shape
    first; into the cotangent's own memory when it is large and nothing else holds it, as
    the tape's sweep adds (engine.tape.backprop.plus_into)."""
    if gx is None:
        return
    if type(gx) is not _f64:
        gx = fit_cotangent(gx, values[k])
    cur = cts[k]
    if cur is None:
        cts[k] = gx
    elif type(cur) is _ndarray and cur.size >= IN_PLACE_MIN and _refs(cur) == ALONE:
        cts[k] = plus_into(cur, gx)
    else:
        cts[k] = cur + gx
