"""Undo numpy broadcasting on a cotangent, once, for every edge of the reverse sweep."""

from __future__ import annotations

from engine.ops.registry import F
from engine.tensor import Tensor


def unbroadcast(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``g`` down to ``shape``: over leading axes broadcasting added, and over axes
    where ``shape`` has size 1. Written in engine ops so an outer tape records it."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = F.sum(g, axis=list(axes))
    return g if g.shape == shape else F.reshape(g, shape=list(shape))
