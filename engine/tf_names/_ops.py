"""The op table's callables by name, looked up when called: a name TensorFlow users
type works as soon as its op is registered, and says which op is missing before."""

from __future__ import annotations

from typing import Any

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
