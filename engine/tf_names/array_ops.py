"""TF's shape functions with TF's positional signatures (``tf.reshape(x, [2, 1])``,
``tf.slice(x, begin, size)``; the op table takes their arguments as keyword attrs, so
without these, code written against TF fails on its first positional shape), and TF's
``pad``, ``unstack`` and ``fill`` as recorded slices, pads and broadcasts."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001, A002

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from engine.tensor import Tensor, constant
from engine.tf_names._ops import axes, axis_in, numpy_of, op
from engine.tf_names.core import split


def _ints(value: Any) -> list[int]:
    """A shape, perm or offsets argument (list, tuple, ndarray or Tensor) as Python ints."""
    return [int(n) for n in numpy_of(value).ravel()]


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


def pad(
    tensor: Any, paddings: Any, mode: str = "CONSTANT", constant_values: Any = 0,
    name: str | None = None,
) -> Tensor:
    """``tf.pad``, constant mode: ``paddings[i] = [before, after]`` on dim i, as the
    engine's ``pad_slice`` (x into zeros), with ``constant_values`` on the border: chosen
    there by ``where`` (an infinite one must not make 0·inf of the inside), and, as in TF,
    no gradient to it."""
    if str(mode).upper() != "CONSTANT":
        raise NotImplementedError(f"pad mode {mode!r} is not supported: only CONSTANT")
    dims = np.shape(tensor)
    widths = numpy_of(paddings)  # a Tensor's are float64: whole numbers pass
    if (widths.shape != (len(dims), 2) or widths.dtype.kind not in "iuf"
            or (widths < 0).any() or (widths != np.trunc(widths)).any()):
        raise ValueError(
            f"paddings must be [rank, 2] = [{len(dims)}, 2] of non-negative ints, "
            f"got {widths.tolist()}"
        )
    before = [int(b) for b in widths[:, 0]]
    shape = [d + int(b) + int(a) for d, (b, a) in zip(dims, widths.tolist(), strict=True)]
    end = [b + d for b, d in zip(before, dims, strict=True)]
    inside = op("pad_slice", tensor, shape=shape, begin=before, end=end)
    if isinstance(constant_values, Tensor) or constant_values != 0:
        border = np.ones(shape, dtype=bool)
        border[tuple(map(builtins.slice, before, end))] = False  # this module's slice is TF's
        return op("where", border, op("stop_gradient", constant_values), inside)
    return inside


def unstack(value: Any, num: Any = None, axis: int = 0, name: str | None = None) -> list[Tensor]:
    """``tf.unstack``: the slices along ``axis``, each without that dim (``split`` into
    pieces of one, squeezed)."""
    dims = np.shape(value)
    if not dims:
        raise ValueError("Input shape axis 0 must be at least 1-D: unstack of a scalar")
    ax = axis_in(axis, len(dims))
    if num is not None and int(num) != dims[ax]:
        raise ValueError(f"num {num} does not match dim {axis} of size {dims[ax]}")
    if not dims[ax]:
        return []
    return [op("squeeze", part, axis=ax) for part in split(value, dims[ax], ax)]


def fill(dims: Any, value: Any, name: str | None = None) -> Tensor:
    """``tf.fill``: ``value`` broadcast to ``dims`` (recorded: its gradient is the sum)."""
    return op("broadcast_to", value, shape=_ints(dims))


def size(input: Any, out_type: Any = None, name: str | None = None) -> Tensor:
    """The element count as a constant (float64, as every engine tensor)."""
    return constant(float(np.size(input)))


def rank(input: Any, name: str | None = None) -> Tensor:
    return constant(float(np.ndim(input)))


__all__ = [
    "broadcast_to", "expand_dims", "fill", "pad", "rank", "reshape", "size", "slice",
    "squeeze", "transpose", "unstack",
]
