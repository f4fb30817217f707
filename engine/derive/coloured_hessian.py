"""A dense Hessian from a few coloured seeds, when a reused graph's pattern is sparse.

A dense Hessian of n sources is one reverse sweep carrying n seed rows. When its
pattern is sparse, the sparse Hessian's colouring (engine.derive.sparse) gives the same
numbers from one seed per colour, 3 for the tridiagonal Rosenbrock Hessian, and the
dense matrix is those numbers written into zeros. Detecting the pattern costs more
than the n-seed sweep it saves for small n, so it is done for a graph that comes back
(a registered graph, an inline graph sent again: ``ReusableGraph.remembered``), on its
second request with the same shapes, sources and target, and the plan is kept: the
pattern follows from the graph and its shapes alone, never from values.

A dense Hessian whose n-seed sweep is over the cost limits (1,000 sources at the
defaults) is instead priced as the sparse Hessian answered densely, and detected on its
first sight (``columns_within``): it is answered if its pattern is sparse and the
coloured sweep fits, and refused as before otherwise.

The coloured sweep gives the n-seed sweep's numbers where every number is finite: each
entry of the compressed result sums one non-zero and exact zeros (to the last bit, but
where a BLAS call sums over k seed rows in another order than over n). A NaN or infinity
would be spread over a whole colour, so then the n-seed sweep runs instead, as it would
have without a colouring, and the plan is not used again for that graph (over the
limits, the request is refused).

What this keeps is bounded: at most ``PLANS_KEPT`` plans in the process, each at most
``PLAN_MAX_BYTES`` (a larger one is used once: under the limits the n-seed sweep answers
later requests, over them it is detected again), and detection builds at most
``pattern.PAIRS_PER_SOURCE`` index pairs per source in one step (engine.derive.pattern bounds
what it holds at once by a few steps' worth). Detection under the limits runs only where
it and the most colours it would use cost no more than the n-seed sweep admitted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import numpy as np

from engine import cost
from engine.derive.colouring import colour_rows
from engine.derive.hessian import Columns, RecordedGradient, hessian_columns
from engine.derive.pattern import PatternTooLarge, gathered_for, hessian_pattern, pairs_for
from engine.derive.sparse import colour_seeds, side_by_side, sweep_blocks
from engine.lru import LRU
from engine.tensor import Tensor

# A colouring is used when its seeds are at most this fraction of the sources: the
# compressed sweep must save more than writing its numbers into the dense matrix costs.
MAX_SEED_FRACTION = 0.25
SIGHTS_BEFORE_DETECTING = 1  # requests answered by the n-seed sweep before detection
PLANS_KEPT = 64
PLAN_MAX_BYTES = 256 * 1024
_MISSING = object()
_TOO_LARGE = object()  # a plan detected, used once and not kept: past PLAN_MAX_BYTES


@dataclass(frozen=True)
class ColouredPlan:
    """A Hessian pattern over the flattened sources, compressed by a colouring into
    ``seeds`` (one row per colour over the flattened gradient), with where each non-zero
    is read from (``take``, in the compressed result) and written to (``put``, in the
    n x n matrix)."""

    n: int
    seeds: np.ndarray
    take: np.ndarray
    put: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.seeds.nbytes + self.take.nbytes + self.put.nbytes


class _Sightings:
    """How often one graph was asked one Hessian at one set of shapes (the graph's memory
    keeps it; the plan, once detected, is kept in ``_PLANS`` under it)."""

    def __init__(self) -> None:
        self.count = 0


_PLANS: LRU[_Sightings, object] = LRU(PLANS_KEPT)  # a plan, None (colours do not pay), _TOO_LARGE

Remembered = Callable[[str, Mapping[str, tuple[int, ...]], Hashable, Callable[[], object]], object]


def columns_for(remembered: Remembered | None, shapes: Mapping[str, tuple[int, ...]],
                question: Hashable, priced: cost.GraphCost | None, n: int) -> Columns:
    """The Jacobian of the flattened gradient (``hessian_columns``'s answer), coloured
    when the graph is reused (``remembered``: its memory), was asked ``question`` at these
    ``shapes`` before, and its pattern is sparse. ``priced``: the graph's costs, when the
    request was priced, for the n-seed sweep over ``n`` sources it was admitted for."""
    if remembered is None:
        return hessian_columns
    may_detect = worth_detecting(priced, n)
    # detection may take half the work the n-seed sweep was admitted for
    allowed = None if priced is None else gathered_for(cost.hessian(priced, n).work / 2)

    def columns(rec: RecordedGradient, sources: list[Tensor]) -> list[np.ndarray | None]:
        seen = remembered("hessian sightings", shapes, question, _Sightings)
        assert isinstance(seen, _Sightings)
        seen.count += 1
        detect_now = seen.count > SIGHTS_BEFORE_DETECTING and may_detect
        plan = _plan(seen, rec, sources, detect_now, allowed)
        found = None if plan is None else coloured_columns(rec, sources, plan)
        if plan is not None and found is None:
            # a number not finite here: the n-seed sweep now, and from now on, so that
            # no request pays both sweeps twice
            _PLANS.put(seen, None)
        return hessian_columns(rec, sources) if found is None else found

    return columns


def columns_within(remembered: Remembered | None, shapes: Mapping[str, tuple[int, ...]],
                   question: Hashable, admitted: float, settle: Callable[[int], None],
                   refusal: Callable[[], Exception]) -> Columns:
    """As ``columns_for``, for a request whose n-seed sweep is over the cost limits: the
    coloured sweep from the first sight, its detection within the ``admitted`` work,
    priced once its colours are known (``settle`` hears them, and may refuse), else
    ``refusal()`` (a pattern too dense to pay or to find, a number that is not finite)."""

    def columns(rec: RecordedGradient, sources: list[Tensor]) -> list[np.ndarray | None]:
        seen = None
        if remembered is not None:
            seen = remembered("hessian sightings", shapes, question, _Sightings)
            assert isinstance(seen, _Sightings)
        plan = _plan(seen, rec, sources, True, gathered_for(admitted), reuse_large=True)
        if plan is None:
            raise refusal()
        settle(plan.seeds.shape[0])
        found = coloured_columns(rec, sources, plan)
        if found is None:
            raise refusal()
        return found

    return columns


def _plan(seen: _Sightings | None, rec: RecordedGradient, sources: list[Tensor],
          detect_now: bool, allowed: int | None, reuse_large: bool = False
          ) -> ColouredPlan | None:
    """The plan kept for ``seen``, else one detected now if ``detect_now``: kept if it is
    small enough (else remembered as too large, which ``reuse_large`` detects again)."""
    plan = _MISSING if seen is None else _PLANS.get(seen, _MISSING)
    if plan is _TOO_LARGE and reuse_large:
        plan = _MISSING
    if plan is _TOO_LARGE or (plan is _MISSING and not detect_now):
        return None
    if plan is _MISSING:
        plan = detect(rec, sources, allowed)
        if seen is not None:
            kept = _TOO_LARGE if plan is not None and plan.nbytes > PLAN_MAX_BYTES else plan
            _PLANS.put(seen, kept)
    assert plan is None or isinstance(plan, ColouredPlan)
    return plan


def known_not_to_pay(remembered: Remembered | None, shapes: Mapping[str, tuple[int, ...]],
                     question: Hashable) -> bool:
    """Whether this graph was asked ``question`` at ``shapes`` before and colours were
    found not to pay, so that a request over the limits is refused before recording: a
    pattern too dense, or too costly to find within a request's allowance, or none at all
    (a zero Hessian, which only the n-seed sweep answers), or a number that was not
    finite at some point (which turns colouring off for that graph and question, for
    every client, until the entry is evicted)."""
    if remembered is None:
        return False
    seen = remembered("hessian sightings", shapes, question, _Sightings)
    return _PLANS.get(seen, _MISSING) is None


def worth_detecting(priced: cost.GraphCost | None, n: int) -> bool:
    """Whether detection and the most colours that would be used cost no more than the
    n-seed sweep the request was admitted for (unpriced: the library's caller decides)."""
    if priced is None:
        return True
    most = cost.sparse_hessian(priced, n, MAX_SEED_FRACTION * n)
    return most.work <= cost.hessian(priced, n).work


def worth_colouring(colours: int, n: int) -> bool:
    """Whether a sweep of ``colours`` seeds pays against one of ``n``."""
    return 0 < colours <= MAX_SEED_FRACTION * n


def detect(rec: RecordedGradient, sources: list[Tensor], allowed: int | None = None
           ) -> ColouredPlan | None:
    """The pattern, its colouring and the compressed sweep's seeds, or None when colours
    would not pay (too many, or a pattern too dense to detect, or one that would gather
    more than ``allowed`` indices to find)."""
    if rec.flat is None:
        return None
    max_pairs = pairs_for(sum(s.size for s in sources))
    try:
        rows, cols, n = hessian_pattern(rec.inner.raw_entries, rec.targets, sources, max_pairs,
                                        allowed)
        colouring = colour_rows(rows, cols, (n, n), max_pairs)
    except PatternTooLarge:
        return None
    if not worth_colouring(colouring.count, n):
        return None
    seeds, _live = colour_seeds(rec, sources, colouring)
    return ColouredPlan(n, seeds, colouring.colours[rows] * n + cols, rows * n + cols)


def coloured_columns(rec: RecordedGradient, sources: list[Tensor], plan: ColouredPlan
                     ) -> list[np.ndarray | None] | None:
    """``hessian_columns``'s blocks from one coloured sweep, or None where a number is
    not finite (see the module)."""
    if rec.flat is None or rec.flat.size != plan.seeds.shape[1]:
        return None
    if not np.isfinite(rec.flat.value).all():
        return None
    blocks = sweep_blocks(rec.outer, rec.flat, sources, plan.seeds)
    compressed = side_by_side(blocks, sources, plan.seeds.shape[0], plan.n)
    values = compressed.ravel()[plan.take]
    if not np.isfinite(values).all():
        return None
    matrix = np.zeros((plan.n, plan.n))
    matrix.reshape(-1)[plan.put] = values
    sizes = [s.size for s in sources]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    starts = rec.starts(sizes)
    if len(starts) < len(sources):
        # the rows of ``flat``: its live sources' only (a row of no live source read
        # another row's number from the colour they share, and is dropped here)
        matrix = np.concatenate([matrix[offsets[i] : offsets[i + 1]] for i in starts])
    # None where the sweep met no path, as ``hessian_columns`` (``assemble`` reads it)
    return [None if b is None else matrix[:, offsets[j] : offsets[j + 1]]
            for j, b in enumerate(blocks)]
