"""Leading batch axes on cotangents: what lets one reverse sweep carry many rows at once.

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
