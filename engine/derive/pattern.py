"""Sparsity patterns of Jacobians and Hessians, read off a recorded tape without evaluating them.

Why: a Hessian or Jacobian that is mostly zeros can be evaluated in a few reverse
sweeps instead of one per row (engine.derive.sparse), once its zeros are known. They are
found as ADOL-C, CppAD and SparseConnectivityTracer find them: every tensor element
carries the set of flattened source indices it depends on, pushed forward over the
tape's entries by each op's ``Sparsity`` rule (``OpDef.sparsity``, index maps from
shapes alone), and every nonlinear interaction adds pairs to a global Hessian pattern:

- a linear op (add, slice, sum; piecewise-linear abs, relu, max) adds nothing;
- a "nonlinear" op adds S(e) x S(e) per output element e, S(e) the union of the sets
  of the input elements e depends on (sin(x): S(x_e)²);
- a ``Bilinear`` op adds S(u) x S(v) per term u·v only (mul: S(a_e) x S(b_e)).

A pattern is a superset of the true non-zeros (shapes say nothing about values), so
a compressed evaluation over it is exact. Sets are CSR index arrays
(engine.derive.index_sets), and each entry costs a few numpy calls over its elements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import budget
from engine.derive.index_sets import (
    MAX_PAIRS,
    Pattern,
    PatternTooLarge,
    collect,
    empty,
    from_coo,
    gathered_bound,
    guard,
    identity,
    pair_bound,
    row_products,
    union,
    unique,
)
from engine.ops import dependence
from engine.ops.dependence import Groups, IndexMap
from engine.ops.registry import Bilinear, OpDef, Sparsity
from engine.tape.entries import entries as entries_of
from engine.tensor import Tensor

__all__ = ["MAX_PAIRS", "PatternTooLarge", "gathered_for", "hessian_pattern", "jacobian_pattern",
           "propagate"]

if TYPE_CHECKING:
    from engine.tape.entries import RawEntry

# Work units per index detection gathers (measured: about 14 ns each, all included); the
# cost model's pattern term counts elements, not the sets they carry, so a caller stops
# detection past the work its request was admitted for (``gathered_for``), counted in these.
GATHER_WORK = 16.0
PAIRS_PER_SOURCE = 32  # detection's bound on a step's pairs, per source element
GATHER_FLOOR_WORK = 5e7  # about 50 ms: what any request's detection may gather for
# Patterns held at once may total this many steps' worth of ``max_pairs``, and at least
# HELD_FLOOR indices (8 bytes each), however small the steps' bound.
HELD_PER_STEP = 8
HELD_FLOOR = 1 << 22


# ------------------------------------------------------------ the propagation


class _Pairs:
    """Hessian pairs gathered op by op, compacted now and then so duplicates do not pile up."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.keys: list[np.ndarray] = []
        self.size = 0
        self.compacted = 0

    def add(self, i: np.ndarray, j: np.ndarray) -> None:
        if not i.size:
            return
        n = np.int64(max(self.n, 1))
        # both triangles folded into one: min * n + max
        self.keys.append(np.minimum(i, j) * n + np.maximum(i, j))
        self.size += i.size
        if self.size > 2 * self.compacted + (1 << 20):
            self._compact()

    def _compact(self) -> None:
        self.keys = [unique(np.concatenate(self.keys))]
        self.size = self.compacted = self.keys[0].size
        guard(self.size, "the Hessian pattern")

    def symmetric(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of both triangles, row-major."""
        if not self.keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        self._compact()
        lo, hi = np.divmod(self.keys[0], np.int64(max(self.n, 1)))
        off = lo != hi
        guard(lo.size + int(off.sum()), "the Hessian pattern")
        p = from_coo(np.concatenate([lo, hi[off]]), np.concatenate([hi, lo[off]]), self.n, self.n)
        return p.coo()


@dataclass
class TapePattern:
    """What ``propagate`` found: each reached tensor's pattern over the flattened sources
    (in sources order), and the Hessian pattern of the targets when asked for."""

    sizes: list[int]
    n: int
    patterns: dict[int, Pattern]  # id(tensor) -> its pattern; absent: depends on no source
    hessian: tuple[np.ndarray, np.ndarray] | None = None  # (rows, cols), both triangles

    def of(self, tensor: Tensor) -> Pattern:
        """``tensor``'s pattern, rows = its flattened elements (empty when unreached)."""
        return self.patterns.get(id(tensor)) or empty(tensor.size, self.n)


def sparsity_of(op: OpDef) -> Sparsity:
    return op.sparsity if op.sparsity is not None else dependence.DENSE


def _attrs(op: OpDef, attrs: dict[str, Any]) -> dict[str, Any]:
    """The recorded attrs with the op's defaults filled in (a call may omit them)."""
    if len(attrs) == len(op.attrs):
        return attrs
    return {name: spec.default for name, spec in op.attrs.items()} | attrs


def live_entries(entries: Sequence[RawEntry], targets: Iterable[Tensor]) -> set[int]:
    """Ids of tensors the targets depend on through differentiable ops: only their
    entries can add to the targets' derivatives."""
    live = {id(t) for t in targets}
    for op, inputs, output, _attrs in entries_of(reversed(entries)):
        if (id(output) in live and op.vjp is not None
                and sparsity_of(op).deps is not dependence.nothing):
            live.update(id(x) for x in inputs)
    return live


def pairs_for(elements: int) -> int:
    """How many index pairs detection may build in one step for sources of ``elements``
    elements (``propagate``'s ``max_pairs``): ``PAIRS_PER_SOURCE`` each, and at least for
    32 (a denser pattern is not worth detecting: its Hessian is nearly dense)."""
    return PAIRS_PER_SOURCE * max(elements, 32)


def gathered_for(work: float) -> int:
    """How many indices detection may gather for ``work`` units (engine.cost's ~1 ns),
    and at least for ``GATHER_FLOOR_WORK`` (a small graph's dense pattern is cheap to find
    but priced by its few elements): ``propagate``'s ``max_gathered``."""
    return int(max(work, GATHER_FLOOR_WORK) / GATHER_WORK)


def propagate(
    entries: Sequence[RawEntry],
    sources: Sequence[Tensor],
    targets: Sequence[Tensor] | None = None,
    *,
    hessian: bool = False,
    max_pairs: int = MAX_PAIRS,
    max_gathered: int | None = None,
) -> TapePattern:
    """Index-set patterns of every tensor reached from ``sources`` (or, given ``targets``,
    of those the targets depend on), and with ``hessian`` the targets' Hessian pattern.

    A source that is also an op's output (an intermediate tensor) keeps its own columns
    besides what its op gives it, as the reverse sweep's cotangents do. PatternTooLarge
    when a step would build more than ``max_pairs`` index pairs, the patterns held at
    once would pass ``HELD_PER_STEP`` steps' worth of them (or ``HELD_FLOOR``), or all
    steps would gather more than ``max_gathered`` indices (the work a caller allows).
    """
    token = pair_bound.set(max_pairs)
    count = gathered_bound.set(None if max_gathered is None else [0, max_gathered])
    try:
        return _propagate(entries, sources, targets, hessian)
    finally:
        gathered_bound.reset(count)
        pair_bound.reset(token)


def _propagate(
    entries: Sequence[RawEntry],
    sources: Sequence[Tensor],
    targets: Sequence[Tensor] | None,
    hessian: bool,
) -> TapePattern:
    sizes = [s.size for s in sources]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])
    patterns: dict[int, Pattern] = {}
    own: dict[int, Pattern] = {}
    for s, off in zip(sources, offsets[:-1], strict=False):
        mine = identity(int(off), s.size, n)
        own[id(s)] = union([own[id(s)], mine], s.size, n) if id(s) in own else mine
    patterns.update(own)
    live = None if targets is None else live_entries(entries, targets)
    # Given targets, a pattern is dropped after its last reader (all the caller reads is
    # the targets'), so what is held is the frontier, not every tensor's; held or not,
    # the total is bounded (HELD_PER_STEP steps' worth of the bound in force, or
    # HELD_FLOOR).
    last_read = {} if targets is None else {  # id(tensor) -> the last entry reading it
        id(x): k for k, (_op, ins, _out, _attrs) in enumerate(entries_of(entries)) for x in ins}
    kept = set() if targets is None else {id(t) for t in targets}
    held = sum(p.nnz for p in patterns.values())
    most_held = max(HELD_PER_STEP * pair_bound.get(), HELD_FLOOR)
    pairs = _Pairs(n) if hessian else None
    read: tuple[Tensor, ...] = ()  # the previous entry's inputs
    for k, (op, inputs, output, attrs) in enumerate(entries_of(entries)):
        if not k % 256:
            budget.check("sparsity detection")
        for x in read:
            if last_read.get(id(x)) == k - 1 and id(x) not in kept:
                dropped = patterns.pop(id(x), None)
                held -= 0 if dropped is None else dropped.nnz
        read = inputs if last_read else ()
        if live is not None and id(output) not in live:
            continue
        ins = [patterns.get(id(x)) for x in inputs]
        if all(p is None for p in ins):
            continue
        rule = sparsity_of(op)
        full = _attrs(op, attrs)
        shapes = tuple(x.shape for x in inputs)
        maps = rule.deps(op, shapes, output.shape, full)
        m = output.size
        parts = [
            (collect(mp, p, m), mp, p)
            for mp, p in zip(maps, ins, strict=True)
            if mp is not None and p is not None
        ]
        out = union([q for q, _, _ in parts], m, n)
        if pairs is not None and rule.second != "linear" and parts:
            _interactions(pairs, rule, op, shapes, output.shape, full, maps, ins, parts, out)
        if id(output) in own:
            out = union([out, own[id(output)]], m, n)
        if out.nnz:
            replaced = patterns.get(id(output))  # a source's own pattern, counted already
            patterns[id(output)] = out
            held += out.nnz - (0 if replaced is None else replaced.nnz)
            if held > most_held:
                raise PatternTooLarge(f"the patterns held at once would total {held} indices, "
                                      f"over the limit of {most_held}")
    return TapePattern(sizes, n, patterns, pairs.symmetric() if pairs is not None else None)


def _interactions(
    pairs: _Pairs, rule: Sparsity, op: OpDef, shapes: tuple[tuple[int, ...], ...],
    out_shape: tuple[int, ...], attrs: dict[str, Any], maps: Sequence[IndexMap | None],
    ins: Sequence[Pattern | None], parts: list[tuple[Pattern, IndexMap, Pattern]], out: Pattern,
) -> None:
    """Add one entry's nonlinear interactions to the Hessian pairs."""
    second = rule.second
    if isinstance(second, Bilinear):
        nterms, tmaps = (
            (out.nrows, tuple(maps)) if second.terms is None
            else second.terms(op, shapes, out_shape, attrs)
        )
        per_input: dict[int, Pattern] = {}

        def sets(i: int) -> Pattern | None:
            if i not in per_input and ins[i] is not None and tmaps[i] is not None:
                per_input[i] = collect(tmaps[i], ins[i], nterms)
            return per_input.get(i)

        for i, j in second.pairs:
            a, b = sets(i), sets(j)
            if a is not None and b is not None:
                pairs.add(*row_products(a, b))
        return
    if second != "nonlinear":
        raise ValueError(f"{op.name}: unknown second-order rule {second!r}")
    if len(parts) == 1 and isinstance(parts[0][1], Groups):
        # many outputs share each group's set (softmax, inv): square each group once
        g = parts[0][1]
        groups = collect(g.members, parts[0][2], int(g.members.slot.max()) + 1)
        pairs.add(*row_products(groups, groups))
        return
    pairs.add(*row_products(out, out))


# ------------------------------------------------------------ entry points


def jacobian_pattern(
    entries: Sequence[RawEntry], target: Tensor, sources: Sequence[Tensor],
    max_pairs: int = MAX_PAIRS,
) -> Pattern:
    """Which flattened source indices each element of ``target`` depends on."""
    return propagate(entries, sources, [target], max_pairs=max_pairs).of(target)


def hessian_pattern(
    entries: Sequence[RawEntry], targets: Sequence[Tensor], sources: Sequence[Tensor],
    max_pairs: int = MAX_PAIRS, max_gathered: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows, cols, n): the symmetric Hessian pattern of the sum of ``targets`` over the
    flattened sources, both triangles, row-major."""
    found = propagate(entries, sources, targets, hessian=True, max_pairs=max_pairs,
                      max_gathered=max_gathered)
    assert found.hessian is not None
    return (*found.hessian, found.n)
