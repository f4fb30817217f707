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
a compressed evaluation over it is exact. Sets are CSR index arrays, and each entry
costs a few numpy calls over its elements: no Python loop per element.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import budget
from engine.ops import dependence
from engine.ops.dependence import Groups, IndexMap, Pairs
from engine.ops.registry import Bilinear, OpDef, Sparsity
from engine.tape.entries import entries as entries_of
from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.tape.entries import RawEntry

# Index pairs one step may build before the pattern is declared too large (8 bytes
# each, a few arrays of them): a dense 8,000 x 8,000 Hessian is as far as sets go.
MAX_PAIRS = 1 << 26
# The bound in force: ``propagate``'s ``max_pairs`` for the steps it runs.
_limit: ContextVar[int] = ContextVar("max_pairs", default=MAX_PAIRS)


class PatternTooLarge(ValueError):
    """The index sets would exceed the bound (``max_pairs``): the pattern is too dense
    for sets to pay; a dense Hessian or Jacobian (engine.derive.hessian) is the way."""


@dataclass(frozen=True)
class Pattern:
    """Per element of a tensor (a CSR row), the sorted flat source indices it depends on."""

    indptr: np.ndarray  # int64, one more than the rows
    indices: np.ndarray  # int64 column indices, sorted and unique within each row
    ncols: int

    @property
    def nrows(self) -> int:
        return self.indptr.size - 1

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row_ids(self) -> np.ndarray:
        """The row of every stored index."""
        return np.repeat(np.arange(self.nrows, dtype=np.int64), self.lengths())

    def coo(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of every dependence, row-major."""
        return self.row_ids(), self.indices

    def todense(self) -> np.ndarray:
        out = np.zeros((self.nrows, self.ncols), dtype=bool)
        out[self.coo()] = True
        return out


def empty(nrows: int, ncols: int) -> Pattern:
    return Pattern(np.zeros(nrows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), ncols)


def unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values: a sort and a mask (numpy 2's ``np.unique`` hashes first,
    several times slower on the 10^5-10^6 int64 keys met here). A stable sort, as the
    keys are mostly concatenated sorted runs, which it merges in near-linear time."""
    keys = np.sort(keys, kind="stable")
    if keys.size < 2:
        return keys
    keep = np.empty(keys.size, dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def from_coo(rows: np.ndarray, cols: np.ndarray, nrows: int, ncols: int) -> Pattern:
    """A pattern from (row, col) pairs in any order, duplicates allowed."""
    if rows.size == 0:
        return empty(nrows, ncols)
    keys = unique(rows * np.int64(max(ncols, 1)) + cols)
    rows, cols = np.divmod(keys, np.int64(max(ncols, 1)))
    indptr = np.zeros(nrows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=nrows), out=indptr[1:])
    return Pattern(indptr, cols, ncols)


def guard(total: int, what: str) -> None:
    """PatternTooLarge when ``what`` would hold more index pairs than the bound in force."""
    limit = _limit.get()
    if total > limit:
        raise PatternTooLarge(
            f"{what} would hold {total} index pairs, over the limit of {limit}: the pattern "
            "is too dense for index sets"
        )


def expand(p: Pattern, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices of rows ``rows`` of ``p`` (repeats allowed), each with the position in
    ``rows`` it came from: the gather at the heart of every step."""
    starts = p.indptr[rows]
    lens = p.indptr[rows + 1] - starts
    total = int(lens.sum())
    guard(total, "an index map")
    which = np.repeat(np.arange(rows.size, dtype=np.int64), lens)
    # position in p.indices: the row's start, plus the rank within the row's run
    pos = np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return which, p.indices[pos]


def collect(m: IndexMap, p: Pattern, nslots: int) -> Pattern:
    """Per slot of ``m``, the union of the rows of ``p`` (the input's sets) it depends on."""
    if isinstance(m, Groups):
        if m.of_slot.size == 0 or m.members.slot.size == 0:
            return empty(nslots, p.ncols)
        ngroups = int(max(m.of_slot.max(), m.members.slot.max())) + 1
        per_group = collect(m.members, p, ngroups)
        used = np.flatnonzero(m.of_slot >= 0)
        return collect(Pairs(used, m.of_slot[used]), per_group, nslots)
    which, cols = expand(p, m.elem)
    if m.slot.size and np.all(np.diff(m.slot) > 0):
        # one input row per slot, slots in order: the gathered rows are a valid CSR already
        indptr = np.zeros(nslots + 1, dtype=np.int64)
        indptr[m.slot + 1] = p.indptr[m.elem + 1] - p.indptr[m.elem]
        return Pattern(np.cumsum(indptr), cols, p.ncols)
    return from_coo(m.slot[which], cols, nslots, p.ncols)


def union(parts: Sequence[Pattern], nrows: int, ncols: int) -> Pattern:
    """Row-wise union of patterns of the same rows."""
    parts = [q for q in parts if q.nnz]
    if not parts:
        return empty(nrows, ncols)
    if len(parts) == 1:
        return parts[0]
    rows = np.concatenate([q.row_ids() for q in parts])
    cols = np.concatenate([q.indices for q in parts])
    return from_coo(rows, cols, nrows, ncols)


def row_products(a: Pattern, b: Pattern) -> tuple[np.ndarray, np.ndarray]:
    """Per row r, every pair of A(r) x B(r): the interactions of one op's elements."""
    which, j = expand(b, a.row_ids())  # per stored index of A, its row of B
    return a.indices[which], j


def identity(offset: int, size: int, ncols: int) -> Pattern:
    """A source's own pattern: element k depends on column ``offset + k``."""
    return Pattern(
        np.arange(size + 1, dtype=np.int64), np.arange(offset, offset + size, dtype=np.int64),
        ncols,
    )


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


def propagate(
    entries: Sequence[RawEntry],
    sources: Sequence[Tensor],
    targets: Sequence[Tensor] | None = None,
    *,
    hessian: bool = False,
    max_pairs: int = MAX_PAIRS,
) -> TapePattern:
    """Index-set patterns of every tensor reached from ``sources`` (or, given ``targets``,
    of those the targets depend on), and with ``hessian`` the targets' Hessian pattern.

    A source that is also an op's output (an intermediate tensor) keeps its own columns
    besides what its op gives it, as the reverse sweep's cotangents do. PatternTooLarge
    when a step would build more than ``max_pairs`` index pairs.
    """
    token = _limit.set(max_pairs)
    try:
        return _propagate(entries, sources, targets, hessian)
    finally:
        _limit.reset(token)


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
    pairs = _Pairs(n) if hessian else None
    for k, (op, inputs, output, attrs) in enumerate(entries_of(entries)):
        if not k % 256:
            budget.check("sparsity detection")
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
            patterns[id(output)] = out
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
    max_pairs: int = MAX_PAIRS,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows, cols, n): the symmetric Hessian pattern of the sum of ``targets`` over the
    flattened sources, both triangles, row-major."""
    found = propagate(entries, sources, targets, hessian=True, max_pairs=max_pairs)
    assert found.hessian is not None
    return (*found.hessian, found.n)
