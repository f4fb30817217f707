"""Undo numpy broadcasting on a cotangent, once, for every edge of the reverse sweep."""

from __future__ import annotations

from engine.ops.registry import F
from engine.tensor import Tensor


def unbroadcast(g: Tensor, shape: tuple[int, ...], batch: tuple[int, ...] = ()) -> Tensor:
    """Sum ``g`` down to ``batch + shape``: over axes broadcasting added (after the batch),
    and over axes where ``shape`` has size 1. Written in engine ops so an outer tape
    records it. ``batch`` is the leading batch of a vectorised sweep, kept as it is."""
    want = batch + shape if batch else shape
    if g.shape == want:
        return g
    nb = len(batch)
    lead = g.ndim - len(want)
    axes = tuple(range(nb, nb + lead)) + tuple(
        nb + lead + i for i, n in enumerate(shape) if n == 1 and g.shape[nb + lead + i] != 1
    )
    if axes:
        g = F.sum(g, axis=list(axes))
    return g if g.shape == want else F.reshape(g, shape=list(want))
