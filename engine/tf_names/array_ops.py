"""TF's shape functions with TF's positional signatures (``tf.reshape(x, [2, 1])``,
``tf.slice(x, begin, size)``): the op table takes their arguments as keyword attrs, so
without these, code written against TF fails on its first positional shape."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001, A002

from __future__ import annotations

from typing import Any

import numpy as np

from engine.tensor import Tensor
from engine.tf_names._ops import axes, op


def _ints(value: Any) -> list[int]:
    """A shape, perm or offsets argument (list, tuple, ndarray or Tensor) as Python ints."""
    if isinstance(value, Tensor):
        value = value.numpy()
    return [int(n) for n in np.asarray(value).ravel()]


def reshape(tensor: Any, shape: Any, name: str | None = None) -> Tensor:
    """``tf.reshape``: one dim of ``shape`` may be -1 (the rest)."""
    return op("reshape", tensor, shape=_ints(shape))


def transpose(a: Any, perm: Any = None, conjugate: bool = False, name: str | None = None) -> Tensor:
    """``tf.transpose``: without ``perm``, the dims reversed."""
    return op("transpose", a, perm=None if perm is None else _ints(perm))


def expand_dims(input: Any, axis: Any, name: str | None = None) -> Tensor:
    return op("expand_dims", input, axis=axes(axis))


def squeeze(input: Any, axis: Any = None, name: str | None = None) -> Tensor:
    """``tf.squeeze``: without ``axis``, every dim of size 1."""
    return op("squeeze", input, axis=axes(axis))


def broadcast_to(input: Any, shape: Any, name: str | None = None) -> Tensor:
    return op("broadcast_to", input, shape=_ints(shape))


def slice(input_: Any, begin: Any, size: Any, name: str | None = None) -> Tensor:  # noqa: A001
    """``tf.slice``: ``size[i]`` elements from ``begin[i]`` on each dim, -1 for the rest,
    as the engine's ``slice`` op from ``begin`` to ``begin + size``."""
    begin, size, dims = _ints(begin), _ints(size), np.shape(input_)
    if not len(begin) == len(size) == len(dims):
        raise ValueError(
            f"slice of a rank-{len(dims)} tensor needs begin and size of {len(dims)} entries, "
            f"got {len(begin)} and {len(size)}"
        )
    for b, s, d in zip(begin, size, dims, strict=True):
        if b < 0 or s < -1 or (s >= 0 and b + s > d) or b > d:
            raise ValueError(f"slice begin {begin} and size {size} do not fit shape {list(dims)}")
    end = [d if s == -1 else b + s for b, s, d in zip(begin, size, dims, strict=True)]
    return op("slice", input_, begin=begin, end=end)


__all__ = ["broadcast_to", "expand_dims", "reshape", "slice", "squeeze", "transpose"]
