"""The top-level names TensorFlow users type that map onto the engine's ops: reductions,
arithmetic, constructors, ``gather``/``split``/``tile``/``where``/``norm``, and
``UnconnectedGradients``. Each follows TF's signature and calls one recorded op (or a
few), so tapes differentiate it like any op."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from engine.tape.structure import flatten
from engine.tensor import Tensor
from engine.tensor import constant as _constant
from engine.tf_names._ops import axes, axis_in, numpy_of, op

float64 = np.float64
float32 = np.float32  # accepted where TF takes a dtype; the engine computes in float64
float16 = np.float16


class UnconnectedGradients(enum.Enum):
    """What ``gradient``/``jacobian`` give for a source the target does not depend on."""

    NONE = "none"
    ZERO = "zero"


def _check_dtype(dtype: Any) -> None:
    if dtype is None:
        return
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = None
    if kind != "f":
        raise TypeError(
            f"dtype {dtype!r} is not supported: the engine computes in float64 (float "
            "dtypes are accepted and computed as float64)"
        )


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str | None = None) -> Tensor:
    """``tf.constant``: a tensor no tape watches unless asked; ``shape`` reshapes a value
    of as many elements, or fills the shape with a single value, as TF does."""
    _check_dtype(dtype)
    if shape is None:
        return _constant(value, name)
    arr = np.asarray(value.value if isinstance(value, Tensor) else value, dtype=np.float64)
    shape = tuple(int(n) for n in flatten(list(shape)))
    if arr.size == 1:
        arr = np.full(shape, arr.reshape(()))
    elif arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    else:
        raise TypeError(
            f"Eager execution of tf.constant with unsupported shape. Tensor {arr.tolist()} "
            f"(converted from {value!r}) has {arr.size} elements, but got `shape` {shape} "
            f"with {int(np.prod(shape))} elements)."
        )
    return _constant(arr, name)


def zeros(shape: Any, dtype: Any = None, name: str | None = None) -> Tensor:
    return constant(0.0, dtype, shape, name)


def ones(shape: Any, dtype: Any = None, name: str | None = None) -> Tensor:
    return constant(1.0, dtype, shape, name)


def zeros_like(input: Any, dtype: Any = None, name: str | None = None) -> Tensor:  # noqa: A002
    return zeros(np.shape(input), dtype, name)


def ones_like(input: Any, dtype: Any = None, name: str | None = None) -> Tensor:  # noqa: A002
    return ones(np.shape(input), dtype, name)


def convert_to_tensor(
    value: Any, dtype: Any = None, dtype_hint: Any = None, name: str | None = None
) -> Tensor:
    """A tensor as it is (its identity kept, so a tape still watches it); anything else as
    a constant."""
    _check_dtype(dtype)
    return value if isinstance(value, Tensor) else _constant(value, name)


def cast(x: Any, dtype: Any, name: str | None = None) -> Tensor:
    """``tf.cast`` to a float dtype: a recorded identity, so the gradient flows as in TF;
    an integer dtype is refused (the engine computes in float64; TF's gradient through an
    integer cast is None)."""
    _check_dtype(dtype)
    return op("identity", x)


def range(  # noqa: A001
    start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None, name: str | None = "range"
) -> Tensor:
    """``tf.range``: ``[start, limit)`` by ``delta`` (``range(n)`` is 0 .. n-1), a constant."""
    _check_dtype(dtype)
    if limit is None:
        start, limit = 0, start
    if float(delta) == 0:
        raise ValueError("range needs delta != 0")
    return _constant(np.arange(float(start), float(limit), float(delta)))


def linspace(start: Any, stop: Any, num: Any, name: str | None = None, axis: int = 0) -> Tensor:
    return _constant(np.linspace(float(start), float(stop), int(num)))


def eye(
    num_rows: int, num_columns: int | None = None, batch_shape: Any = None, dtype: Any = None,
    name: str | None = None,
) -> Tensor:
    _check_dtype(dtype)
    m = np.eye(int(num_rows), None if num_columns is None else int(num_columns))
    return _constant(np.broadcast_to(m, (*map(int, batch_shape or ()), *m.shape)).copy())


def one_hot(
    indices: Any, depth: int, on_value: Any = 1.0, off_value: Any = 0.0, axis: int = -1,
    dtype: Any = None, name: str | None = None,
) -> Tensor:
    """``tf.one_hot``: a constant; an index outside ``[0, depth)`` gives a row of
    ``off_value``, as TF's."""
    _check_dtype(dtype)
    idx = numpy_of(indices)
    hot = idx[..., None] == np.arange(int(depth))
    out = np.where(hot, float(on_value), float(off_value))
    return _constant(np.moveaxis(out, -1, axis) if axis != -1 else out)


def clip_by_value(
    t: Any, clip_value_min: Any, clip_value_max: Any, name: str | None = None
) -> Tensor:
    """``tf.clip_by_value``: ``maximum(minimum(t, max), min)``, in TF's order (``min`` wins
    when it is over ``max``); at a bound the gradient goes to ``t``, as TF's (its maximum
    and minimum give ties to their first input)."""
    return op("maximum", op("minimum", t, clip_value_max), clip_value_min)


def shape(input: Any) -> Tensor:  # noqa: A002
    """The shape as a tensor of its dims (float64, as every engine tensor)."""
    return _constant(np.array(np.shape(input), dtype=np.float64))


def _reduce(name: str) -> Any:
    def reduce(
        input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
    ) -> Tensor:
        return op(op_name, input_tensor, axis=axes(axis), keepdims=keepdims)

    op_name = name
    reduce.__name__ = f"reduce_{'logsumexp' if name == 'logsumexp' else name}"
    reduce.__doc__ = f"``tf.{reduce.__name__}``: the ``{name}`` op over ``axis`` (all: None)."
    return reduce


reduce_sum = _reduce("sum")
reduce_mean = _reduce("mean")
reduce_max = _reduce("max")
reduce_min = _reduce("min")
reduce_prod = _reduce("prod")
reduce_logsumexp = _reduce("logsumexp")


def add(x: Any, y: Any, name: str | None = None) -> Tensor:
    return op("add", x, y)


def multiply(x: Any, y: Any, name: str | None = None) -> Tensor:
    return op("mul", x, y)


def subtract(x: Any, y: Any, name: str | None = None) -> Tensor:
    return op("sub", x, y)


def divide(x: Any, y: Any, name: str | None = None) -> Tensor:
    return op("div", x, y)


def negative(x: Any, name: str | None = None) -> Tensor:
    return op("neg", x)


def add_n(inputs: Any, name: str | None = None) -> Tensor:
    return op("add_n", *flatten(inputs))


def gather(
    params: Any,
    indices: Any,
    validate_indices: Any = None,
    axis: Any = None,
    batch_dims: int = 0,
    name: str | None = None,
) -> Tensor:
    """``tf.gather``: slices of ``params`` along ``axis`` (0) at ``indices``."""
    if batch_dims:
        raise NotImplementedError("gather with batch_dims is not supported")
    if isinstance(indices, Tensor):
        indices = indices.numpy().astype(np.int64).tolist()
    return op("gather", params, indices=np.asarray(indices).tolist(), axis=axes(axis))


def tile(input: Any, multiples: Any, name: str | None = None) -> Tensor:  # noqa: A002
    return op("tile", input, multiples=[int(m) for m in np.asarray(multiples).ravel()])


def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Tensor:
    """``tf.where(condition, x, y)``: ``x`` where the condition holds, else ``y``."""
    if x is None or y is None:
        raise ValueError("where needs x and y: the engine has no index form of where")
    return op("where", condition, x, y)


def norm(
    tensor: Any,
    ord: Any = "euclidean",
    axis: Any = None,
    keepdims: Any = None,
    name: str | None = None,
) -> Tensor:  # noqa: A002
    return op("norm", tensor, ord=ord, axis=axes(axis), keepdims=bool(keepdims))


def split(
    value: Any, num_or_size_splits: Any, axis: int = 0, num: Any = None, name: str | None = None
) -> list[Tensor]:
    """``tf.split``: ``num_or_size_splits`` equal parts, or parts of the given sizes (one
    may be -1: the rest), each a recorded slice of ``value``."""
    rank = np.ndim(value)
    ax = axis_in(axis, rank)
    size = np.shape(value)[ax]
    if np.ndim(num_or_size_splits) == 0:
        count = int(num_or_size_splits)
        if count < 1 or size % count:
            raise ValueError(f"Dimension {axis} of size {size} cannot be split in {count}")
        sizes = [size // count] * count
    else:
        sizes = [int(n) for n in np.asarray(num_or_size_splits).ravel()]
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = size - (sum(sizes) + 1)
        if any(n < 0 for n in sizes) or sum(sizes) != size:
            raise ValueError(f"sizes {sizes} do not add up to dimension {axis} of size {size}")
    parts, start = [], 0
    for n in sizes:
        begin = [0] * rank
        end = list(np.shape(value))
        begin[ax], end[ax] = start, start + n
        parts.append(op("slice", value, begin=begin, end=end))
        start += n
    return parts
