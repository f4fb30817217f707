"""Evaluate, gradient, Jacobian, Hessian and derivatives of every order, with TF's tape
semantics: what each request kind computes, at one point or at many (``points``).

Each kind is the same three steps: ``set_up`` (ids, leaves, shapes: nothing runs yet),
``charge`` (the estimated cost, refused or admitted), then record on (nested) tapes
and gather the result, its notes and its trace.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from engine import cost
from engine.derive import coloured_hessian, higher
from engine.derive import hessian as hessian_mod
from engine.derive import sparse as sparse_mod
from engine.derive.numeric_notes import non_finite_entries
from engine.derive.pattern import gathered_for
from engine.derive.points import Points
from engine.derive.query import (
    Query,
    Result,
    arrays_by_id,
    blocks_by_id,
    check_work,
    settle,
    with_target,
)
from engine.derive.setup import Setup, set_up
from engine.derive.sparse import SparseResult
from engine.errors import ComputeLimitError, CostError, GraphError, ShapeError
from engine.graphs import untaped
from engine.graphs.graph import NUMPY_MAX_RANK
from engine.notes import Note, listed
from engine.tape.arguments import seeds_for
from engine.tape.gradient_tape import GradientTape
from engine.tape.recording import TAPE_STACK
from engine.tape.trace import Trace, build_trace
from engine.tensor import Tensor


def evaluate(q: Query, points: Points | None = None) -> Result:
    """Forward values of the targets; no tape (at one point, none at all: the run makes no
    Tensor per op), but with a trace: then one that watches every leaf, so that every op
    is recorded."""
    s = set_up(q, points, sources=False)
    s.charge(s.what("evaluation"),
             lambda g: cost.evaluate(g, s.elements(s.targets), q.trace, s.trace_names()))
    if _untaped(s):
        values = _run_untaped(s)
        return s.result(_target_tensors(s, values, untaped.positions(q.graph, s.targets)),
                        s.notes_at(untaped.ValuesById(q.graph, values)))
    if not q.trace:
        tensors = s.run()
        return s.result(tensors, s.notes(tensors))
    with GradientTape(persistent=True) as tape:
        tape.watch(list(s.leaves.values()))
        tensors = s.run()
    return s.result(tensors, s.notes(tensors),
                    trace=build_trace(tape.entries, None, points=_points(s)))


def _points(s: Setup) -> int | None:
    return None if s.batch is None else s.points


def first_order_trace(q: Query, points: Points | None = None) -> Trace:
    """The trace of what a Hessian or higher derivative differentiates again: the forward
    run and its first reverse sweep, recorded once more (``gradient``'s trace)."""
    traced = gradient(replace(q, trace=True), points).trace
    assert traced is not None  # gradient traces when asked
    return traced


def gradient(q: Query, points: Points | None = None) -> Result:
    """d(sum of targets)/d(source), as ``tape.gradient``; at many points, each point's
    own (one recording and one reverse sweep for all); a trace when asked (over the
    points, with them: each value carries the points axis)."""
    s = set_up(q, points)
    trace = q.trace
    s.charge(s.what("gradient"), lambda g: cost.gradient(
        g, s.elements(s.targets), s.elements(s.sources), trace, s.trace_names()))
    seeds = s.seeds()
    if _untaped(s):
        return _untaped_gradient(s, seeds)
    with GradientTape(watch_accessed_variables=q.watch_accessed_variables) as tape:
        tape.watch(s.watched())
        tensors = s.run()
    grads_seen: dict[int, Tensor] | None = {} if trace else None
    grads = tape.gradient([tensors[t] for t in s.targets], [tensors[i] for i in s.sources],
                          seeds, q.unconnected_gradients, grads_seen=grads_seen)
    gradients = arrays_by_id(s.sources, grads)
    notes = with_target(tape.notes) + s.notes(tensors, gradients)
    return s.result(tensors, notes, gradients=gradients,
                    trace=build_trace(tape.entries, grads_seen, gradients, _points(s))
                    if trace else None)


def _untaped(s: Setup) -> bool:
    """Whether ``s`` runs with no tape (engine.graphs.untaped): at one point, with no trace
    to show the recording, and no tape open around the call to record it."""
    return s.batch is None and not s.query.trace and not TAPE_STACK.logs


def _run_untaped(s: Setup) -> list[Any]:
    """Every node's value, in the graph's order, with no tape."""
    return untaped.run_values(s.query.graph, {nid: t.value for nid, t in s.leaves.items()})


def _target_tensors(s: Setup, values: list[Any], at: list[int]) -> dict[str, Tensor]:
    """The targets' values (``_run_untaped``'s, the targets at ``at``) as tensors, by id."""
    return {t: Tensor(values[k]) for t, k in zip(s.targets, at, strict=True)}


def _untaped_gradient(s: Setup, seeds: list[Any] | None) -> Result:
    """``gradient`` with no tape: the tape's answer and notes, bit for bit, with no Tensor
    or tape entry made per op."""
    q = s.query
    values = _run_untaped(s)
    at = untaped.positions(q.graph, s.targets)
    targets = _target_tensors(s, values, at)
    seeded = [x.value for x in seeds_for([targets[t] for t in s.targets], seeds)]
    grads, why = untaped.gradient(q.graph, values, at, seeded, s.sources, q.watch,
                                  q.watch_accessed_variables, q.unconnected_gradients)
    gradients = arrays_by_id(s.sources, [None if g is None else Tensor(g) for g in grads])
    notes = why + s.notes_at(untaped.ValuesById(q.graph, values), gradients)
    return s.result(targets, notes, gradients=gradients)


def jacobian(q: Query) -> Result:
    """d target / d source for each pair, of shape ``target.shape + source.shape``."""
    s = set_up(q)
    # an id named twice has one block in the answer: made once
    targets, sources = list(dict.fromkeys(s.targets)), list(dict.fromkeys(s.sources))
    rows_each = {t: s.elements([t]) for t in targets}
    rows, cols = sum(rows_each.values()), s.elements(sources)
    pair_names = 2 * (len(targets) * sum(map(len, sources)) + len(sources) * sum(map(len, targets)))
    s.charge("Jacobian", lambda g: cost.jacobian(g, q.graph, rows_each, cols, q.trace,
                                                 len(sources), s.trace_names(), pair_names))
    check_work(q, rows, cols, "Jacobian")
    with GradientTape(persistent=True,
                      watch_accessed_variables=q.watch_accessed_variables) as tape:
        tape.watch(s.watched())
        tensors = s.run()
    srcs = [tensors[i] for i in sources]
    jac: dict[str, dict[str, np.ndarray | None]] = {}
    notes: list[Note] = []
    for t in targets:
        jac[t] = arrays_by_id(sources, tape.jacobian(tensors[t], srcs, q.unconnected_gradients))
        notes += with_target(tape.notes, t)
    notes += s.notes(tensors) + non_finite_entries("jacobian", _block_parts(jac))
    if q.output_gradients is not None:  # the contract lets every request carry them
        notes.append(Note(
            "ignored_field",
            "output_gradients was ignored: TensorFlow's jacobian has no such argument and "
            "gives every row unweighted; weight the rows yourself, or ask for the gradient, "
            "which is the weighted sum",
        ))
    return s.result(tensors, notes, jacobian=jac,
                    trace=build_trace(tape.entries, None) if q.trace else None)


def hessian(q: Query, points: Points | None = None) -> Result:
    """Second derivatives of a scalar target by nested tapes: blocks and one matrix (each
    point's, with points); past ``dense_max_sources`` (format auto) or with format coo,
    from the detected sparsity pattern."""
    if points is not None and q.format == "coo":
        raise GraphError("points give dense Hessians, one per point; format coo does not "
                         "combine with points", field="format")
    s = set_up(q, points, scalar_target="the Hessian needs", leaf_sources="Hessian")
    n = s.elements(s.sources) // s.points
    if s.batch is None and (q.format == "coo" or (q.format == "auto"
                                                  and n > q.limits.dense_max_sources)):
        return _sparse_hessian(s, n)
    _check_block_rank(s)
    what = s.what("Hessian", over_points="per-point Hessian")
    check_work(q, s.points * n, n, what)
    tensors: dict[str, Tensor] = {}
    h = hessian_mod.hessian(
        s.rerun(tensors), [s.leaves[i] for i in s.sources], watch=s.watched(),
        watch_accessed_variables=q.watch_accessed_variables, output_gradients=s.seeds(),
        unconnected_gradients=q.unconnected_gradients,
        points=None if s.batch is None else s.points,
        columns=_dense_columns(s, n, what),
    )
    gradients = arrays_by_id(s.sources, h.gradients)
    blocks = blocks_by_id(s.sources, h.blocks)
    # the matrix holds every block's numbers: finite, it spares reading a block at a time
    # (a million of them for 1000 scalar sources)
    entries = ([] if np.isfinite(h.matrix).all()
               else non_finite_entries("hessian", _block_parts(blocks)))
    notes = (with_target(h.notes) + s.notes(tensors, gradients) + _null_blocks(blocks, gradients)
             + entries)
    return s.result(tensors, notes, gradients=gradients, hessian=blocks,
                    matrix=h.matrix, trace=first_order_trace(q, points) if q.trace else None)


def _dense_columns(s: Setup, n: int, what: str) -> hessian_mod.Columns | None:
    """The dense Hessian's sweep, priced: the n-seed one (coloured once the graph comes
    back, engine.derive.coloured_hessian), or, when that is over the cost limits, the
    coloured sweep from the first sight if its pattern allows, priced as the sparse
    Hessian answered densely; else the n-seed sweep's refusal."""
    q = s.query
    question = (tuple(s.sources), tuple(s.targets), q.watch, q.watch_accessed_variables)
    remembered = getattr(q.graph, "remembered", None)
    sources = len(s.sources)  # ids: a block per pair
    try:
        priced = s.charge(what, lambda g: cost.hessian(g, n, s.points, sources))
    except CostError as refusal:
        if s.batch is not None or coloured_hessian.known_not_to_pay(remembered, s.shapes,
                                                                     question):
            raise
        graph_cost = s.charge(f"{what} from its sparsity pattern",
                              lambda g: cost.sparse_hessian(g, n, dense=True, sources=sources))
        if graph_cost is None:
            raise

        def coloured(colours: int = 1) -> cost.Estimate:
            return cost.with_ids(cost.sparse_hessian(graph_cost, n, colours, dense=True,
                                                     sources=sources), s.ids)

        def settle_colours(colours: int) -> None:
            settle(q, coloured(colours), f"{what}'s coloured sweep ({colours} colours)")

        admitted = coloured().work
        # the sweep raises a new one: this one, raised again from the sweep's closure,
        # would hold that closure's frame in its traceback (a reference cycle)
        detail, node, field = refusal.detail, refusal.node, refusal.field
        limit, estimate = refusal.limit, refusal.estimate
        return coloured_hessian.columns_within(
            remembered, s.shapes, question, admitted, settle_colours,
            lambda: CostError(detail, node=node, field=field, limit=limit, estimate=estimate))
    if s.batch is not None:
        return None
    return coloured_hessian.columns_for(remembered, s.shapes, question, priced, n)


def _null_blocks(blocks: dict[str, dict[str, np.ndarray | None]],
                 gradients: dict[str, np.ndarray | None]) -> list[Note]:
    """One note on the blocks that are None though their row's gradient is not: the
    gradient has no path to that source, so the second derivative is 0 (``matrix``)."""
    pairs = [f"{a}/{b}" for a, row in blocks.items() if gradients.get(a) is not None
             for b, v in row.items() if v is None]
    if not pairs:
        return []
    return [Note("unconnected", f"hessian blocks {listed(pairs)} are "
                 "null, as TensorFlow's nested tapes give: that gradient has no path to that "
                 "source, so the second derivative is 0, as `matrix` holds it "
                 "(`unconnected_gradients: zero` gives zeros in both)")]


def _block_parts(blocks: dict[str, dict[str, np.ndarray | None]]
                 ) -> list[tuple[str, np.ndarray | None]]:
    """Each block of a Jacobian or a Hessian, named ``row/column``."""
    return [(f"{a}/{b}", v) for a, row in blocks.items() for b, v in row.items()]


def _check_block_rank(s: Setup) -> None:
    """A Hessian block is ``si.shape + sj.shape`` (after the points axis, with points):
    refused past numpy's dimensions, which two sources at the rank limit would reach."""
    if not s.sources or s.batch is None:
        return
    widest = max(s.sources, key=lambda i: len(s.shapes[i]))
    rank = 1 + 2 * len(s.shapes[widest])
    if rank > NUMPY_MAX_RANK:
        raise ShapeError(
            f"each point's Hessian block of {widest!r} would have {rank} dimensions (the "
            f"points axis and its shape twice), over numpy's {NUMPY_MAX_RANK}; send the "
            "points one by one, or a source of fewer dimensions",
            node=widest, field="sources",
        )


def _sparse_hessian(s: Setup, n: int) -> Result:
    """The Hessian from its detected pattern and one compressed sweep (engine.derive.sparse).

    The pattern bounds the work: its non-zeros, and the colours times the sources
    (the compressed sweep's seeds), must each fit ``max_derivative_work``; and the
    compressed sweep, once its colours are known, the cost limits.
    """
    q = s.query
    priced = s.charge("sparse Hessian", lambda g: cost.sparse_hessian(g, n))

    def within_cost(colours: int) -> None:
        """Price the compressed sweep now that its colours are known: refuse it, or admit
        what it needs beyond the first estimate (``q.admit`` hears the larger estimate)."""
        if priced is None:
            return
        settle(q, cost.with_ids(cost.sparse_hessian(priced, n, colours), s.ids),
               f"sparse Hessian's compressed sweep ({colours} colours)")

    limit = q.limits.max_derivative_work
    if q.output_gradients:
        raise GraphError("a sparse Hessian takes no output_gradients; use format: dense",
                         field="output_gradients")
    srcs = [s.leaves[i] for i in s.sources]
    tensors: dict[str, Tensor] = {}
    try:
        h = sparse_mod.sparse_hessian(s.rerun(tensors), srcs, watch=s.watched(),
                                      watch_accessed_variables=q.watch_accessed_variables,
                                      unconnected_gradients=q.unconnected_gradients,
                                      max_pairs=limit, on_colours=within_cost,
                                      max_gathered=None if priced is None else
                                      gathered_for(cost.sparse_hessian(priced, n).work))
    except sparse_mod.PatternTooLarge as e:
        raise ComputeLimitError(f"the Hessian's sparsity pattern is too dense: {e}",
                                field="format") from None
    if h.nnz > limit or h.colours * h.shape[0] > limit:
        raise ComputeLimitError(
            f"the sparse Hessian has {h.nnz} non-zeros and needs {h.colours} seeds of "
            f"{h.shape[0]} entries, over the limit of {limit}",
            field="sources",
        )
    fits = n * n <= limit  # dense blocks too (checks read them)
    gradients = arrays_by_id(s.sources, h.gradients or [None] * len(srcs))
    notes = s.notes(tensors, gradients) + non_finite_entries("hessian", [("sparse", h.values)])
    return s.result(tensors, notes, gradients=gradients, sparse=h,
                    hessian=_dense_blocks(h, s.sources, srcs) if fits else None,
                    trace=first_order_trace(q) if q.trace else None)


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
    s = set_up(q, scalar_target="derivatives of every order need", leaf_sources="derivative",
               scalar_sources="derivative")
    n = len(s.sources)
    if higher.entries(n, order) > q.limits.max_derivative_work:
        raise ComputeLimitError(
            f"derivatives up to order {order} by {n} sources have {higher.entries(n, order)} "
            f"entries (n + n^2 + ... + n^{order}), over the limit of "
            f"{q.limits.max_derivative_work}",
            field="order",
        )
    s.charge(f"order-{order} derivatives", lambda g: cost.derivatives(g, n, order))
    tensors: dict[str, Tensor] = {}
    h = higher.derivatives_up_to(s.rerun(tensors), [s.leaves[i] for i in s.sources], order,
                                 watch=s.watched(),
                                 watch_accessed_variables=q.watch_accessed_variables,
                                 output_gradients=s.seeds())
    gradients = arrays_by_id(s.sources, h.gradients)
    notes = with_target(h.notes) + s.notes(tensors, gradients) + non_finite_entries(
        "derivative", [(f"order {j}", d) for j, d in enumerate(h.derivatives[1:], start=2)])
    return s.result(tensors, notes, gradients=gradients,
                    derivatives=[d.reshape(()) if n == 1 else d for d in h.derivatives],
                    trace=first_order_trace(q) if q.trace else None)

