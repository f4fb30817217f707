"""The op table's callables by name, looked up when called: a name TensorFlow users
type works as soon as its op is registered, and says which op is missing before."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.tensor import OPS_FN, Tensor


def op(name: str, *inputs: Any, **attrs: Any) -> Tensor:
    """Call the registered op ``name``, dropping attrs left at None (the op's default)."""
    fn = OPS_FN.get(name)
    if fn is None:
        raise NotImplementedError(f"the engine has no op {name!r} yet")
    return fn(*inputs, **{k: v for k, v in attrs.items() if v is not None})


def axes(axis: Any) -> Any:
    """TF's ``axis`` argument as the op table's attr: an int, a list of ints, or None."""
    if isinstance(axis, Tensor):
        axis = axis.numpy().astype(int).tolist()
    if isinstance(axis, tuple):
        axis = list(axis)
    return axis


def numpy_of(value: Any) -> np.ndarray:
    """A TF argument that holds numbers (a list, an ndarray or a Tensor) as an ndarray."""
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def axis_in(axis: Any, rank: int) -> int:
    """``axis`` of a rank-``rank`` tensor counted from 0, or TF's ValueError past the rank
    (where a modulus would silently take another axis)."""
    ax = int(numpy_of(axis))
    if not -rank <= ax < rank:
        raise ValueError(f"axis = {ax} not in [{-rank}, {rank})")
    return ax % rank
