"""Leading batch axes: on cotangents (many Jacobian rows in one reverse sweep) and on
values (many points in one forward run, engine.derive.points).

A cotangent ``g`` of an entry whose output is ``ans`` may carry leading batch
dims: ``g.shape == batch + ans.shape`` (one Jacobian row per batch element).
Elementwise rules broadcast right-aligned and need nothing; rules that name
axes, shapes or permutations shift them past the batch with these helpers.
With no batch (``nb == 0``, every ordinary gradient) each helper returns its
input unchanged after one int compare, so the plain sweep pays nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.ops.registry import F
from engine.tensor import Tensor

Shape = tuple[int, ...]


def batch_of(g: Tensor, ndim: int) -> Shape:
    """The batch dims of a cotangent ``g`` of a tensor of rank ``ndim``."""
    return g.shape[: g.ndim - ndim]


def shift_axis(axis: int, ndim: int, nb: int) -> int:
    """An axis of a rank-``ndim`` tensor, as an axis of its batched cotangent (``nb`` dims)."""
    if not nb:
        return axis
    return axis % ndim + nb


def shift_axes(axes: Sequence[int], nb: int) -> list[int]:
    """Non-negative axes moved past ``nb`` batch dims."""
    return [a + nb for a in axes] if nb else list(axes)


def batched_perm(perm: Sequence[int], nb: int) -> list[int]:
    """A permutation of a tensor's axes, extended to leave ``nb`` batch dims in front."""
    if not nb:
        return list(perm)
    return [*range(nb), *(p + nb for p in perm)]


def batched_shape(batch: Shape, shape: Sequence[int]) -> list[int]:
    """``batch + shape`` as the list a ``shape`` attr takes."""
    return [*batch, *shape]


def batched_slice(batch: Shape, begin: Any, end: Any, step: Any) -> dict[str, Any]:
    """slice / pad_slice attrs that take every batch axis whole and the rest as given."""
    if not batch:
        return {"begin": begin, "end": end, "step": step}
    nb = len(batch)
    return {
        "begin": [0] * nb + list(begin or ()),
        "end": None if end is None else [*batch, *end],
        "step": None if step is None else [1] * nb + list(step),
    }


# ------------------------------------------------- points: a leading batch axis on values
# engine.derive.points runs a graph once over B points: every tensor that depends on a point
# carries a leading axis of size B. An op's batch rule (``OpDef.batch``) receives its
# inputs, which of them are batched that way (at least one is) and its attrs, and calls
# ordinary engine ops to produce the batched output, so a tape records it as any op.


def points_of(xs: Sequence[Tensor], batched: Sequence[bool]) -> int:
    """B, the number of points: the leading axis of the first batched input."""
    for x, b in zip(xs, batched, strict=True):
        if b:
            return x.shape[0]
    raise AssertionError("a batch rule runs only when an input is batched")


def point_rank(x: Tensor, batched: bool) -> int:
    """The rank of one point's value of ``x``."""
    return x.ndim - 1 if batched else x.ndim


def with_rank(x: Tensor, rank: int) -> Tensor:
    """A batched ``x`` with size-1 axes inserted after the batch axis up to per-point
    ``rank``: it then broadcasts against the other inputs as one point would, instead
    of its batch axis lining up with one of theirs."""
    missing = rank - (x.ndim - 1)
    if missing <= 0:
        return x
    return F.reshape(x, shape=[x.shape[0], *([1] * missing), *x.shape[1:]])


def aligned(xs: Sequence[Tensor], batched: Sequence[bool]) -> list[Tensor]:
    """The inputs of an elementwise op, each batched one raised to the common per-point
    rank; unbatched ones broadcast right-aligned as they are."""
    ranks = [point_rank(x, b) for x, b in zip(xs, batched, strict=True)]
    rank = max(ranks)
    return [
        with_rank(x, rank) if b and r < rank else x
        for x, b, r in zip(xs, batched, ranks, strict=True)
    ]


def elementwise(fn: Any, xs: Sequence[Tensor], batched: Sequence[bool], **attrs: Any) -> Tensor:
    """``fn`` over the points by numpy broadcasting after the batch axis, as a batch rule
    (``where``'s). Ops whose ``batch`` is None run the same way, each op's way planned once
    per batch by engine.derive.point_plan.

    One input, or inputs all batched at one rank, go straight to ``fn``."""
    if len(xs) == 1 or (all(batched) and len({x.ndim for x in xs}) == 1):
        return fn(*xs, **attrs)
    return fn(*aligned(xs, batched), **attrs)


def spread(xs: Sequence[Tensor], batched: Sequence[bool]) -> list[Tensor]:
    """Every input with the batch axis: one without it repeated for every point (concat
    and stack join whole tensors, so broadcasting cannot do it for them)."""
    size = points_of(xs, batched)
    return [x if b else F.broadcast_to(x, shape=[size, *x.shape])
            for x, b in zip(xs, batched, strict=True)]
