"""Axis arithmetic shared by the ops that work along axes (reductions, softmax) and by
their sparsity rules: the axes an ``axis`` attr names, the shape a reduction leaves,
a reduced cotangent made to broadcast back, and the group max a stable exp subtracts."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.ops.registry import F
from engine.tensor import Tensor


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; ShapeError when out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ShapeError(f"axis {a} is out of range for a tensor of rank {ndim}")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {list(axes)}")
    return tuple(sorted(out)) if ndim else ()


def reduced_shape(shape: tuple[int, ...], axis: Any = None, keepdims: bool = False) -> tuple:
    axes = normalize_axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def keep_reduced(g: Tensor, in_shape: tuple[int, ...], axis: Any, keepdims: bool) -> Tensor:
    """Reshape a reduced cotangent so it broadcasts against the input again; leading batch
    dims of ``g`` (beyond the reduced rank) stay in front."""
    if keepdims:
        return g
    axes = normalize_axes(axis, len(in_shape))
    kept = tuple(1 if i in axes else n for i, n in enumerate(in_shape))
    nb = g.ndim - (len(in_shape) - len(axes))
    return F.reshape(g, shape=[*g.shape[:nb], *kept] if nb else list(kept))


def stable_shift(x: Any, axes: tuple[int, ...]) -> Any:
    """The group max, or 0 where it is not finite (all -inf, or an inf): exp(x - m) <= 1."""
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(m), m, 0.0)
