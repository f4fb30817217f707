"""``tf.math``: the names TensorFlow has there that map onto the engine's ops."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001

from __future__ import annotations

from typing import Any

from engine.tensor import Tensor
from engine.tf_names._ops import axes, op
from engine.tf_names.core import (
    add,
    add_n,
    divide,
    multiply,
    negative,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
    subtract,
)

# one engine op each, with TF's name and one or two inputs
_UNARY = {
    "abs": "abs",
    "acos": "acos",
    "acosh": "acosh",
    "asin": "asin",
    "asinh": "asinh",
    "atan": "atan",
    "atanh": "atanh",
    "ceil": "ceil",
    "cos": "cos",
    "cosh": "cosh",
    "exp": "exp",
    "expm1": "expm1",
    "floor": "floor",
    "log": "log",
    "log1p": "log1p",
    "reciprocal": "reciprocal",
    "sigmoid": "sigmoid",
    "sign": "sign",
    "sin": "sin",
    "sinh": "sinh",
    "softplus": "softplus",
    "sqrt": "sqrt",
    "square": "square",
    "tan": "tan",
    "tanh": "tanh",
    "logical_not": "logical_not",
}
_BINARY = {
    "atan2": "atan2",
    "maximum": "maximum",
    "minimum": "minimum",
    "pow": "pow",
    "xlogy": "xlogy",
    "divide_no_nan": "div_no_nan",
    "equal": "equal",
    "not_equal": "not_equal",
    "less": "less",
    "less_equal": "less_equal",
    "greater": "greater",
    "greater_equal": "greater_equal",
    "logical_and": "logical_and",
    "logical_or": "logical_or",
    "truediv": "div",
}


def _unary(tf_name: str, op_name: str) -> Any:
    def fn(x: Any, name: str | None = None) -> Tensor:
        return op(op_name, x)

    fn.__name__ = fn.__qualname__ = tf_name
    fn.__doc__ = f"``tf.math.{tf_name}``: the engine's ``{op_name}`` op."
    return fn


def _binary(tf_name: str, op_name: str) -> Any:
    def fn(x: Any, y: Any, name: str | None = None) -> Tensor:
        return op(op_name, x, y)

    fn.__name__ = fn.__qualname__ = tf_name
    fn.__doc__ = f"``tf.math.{tf_name}``: the engine's ``{op_name}`` op."
    return fn


globals().update({n: _unary(n, o) for n, o in _UNARY.items()})
globals().update({n: _binary(n, o) for n, o in _BINARY.items()})


def _scan(op_name: str) -> Any:
    def scan(
        x: Any, axis: int = 0, exclusive: bool = False, reverse: bool = False,
        name: str | None = None,
    ) -> Tensor:
        return op(op_name, x, axis=axes(axis), exclusive=exclusive, reverse=reverse)

    scan.__name__ = scan.__qualname__ = op_name
    scan.__doc__ = f"``tf.math.{op_name}``: the engine's ``{op_name}`` op along ``axis``."
    return scan


cumprod = _scan("cumprod")
cumsum = _scan("cumsum")


def reduce_variance(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Tensor:
    """The mean squared deviation from the mean over ``axis`` (all: None), as TF's."""
    ax = axes(axis)
    centred = op("sub", input_tensor, op("mean", input_tensor, axis=ax, keepdims=True))
    return op("mean", op("square", centred), axis=ax, keepdims=keepdims)


def reduce_std(
    input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None
) -> Tensor:
    return op("sqrt", reduce_variance(input_tensor, axis, keepdims))


__all__ = [
    "add",
    "add_n",
    "cumprod",
    "cumsum",
    "divide",
    "multiply",
    "negative",
    "reduce_logsumexp",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_prod",
    "reduce_std",
    "reduce_sum",
    "reduce_variance",
    "subtract",
    *_UNARY,
    *_BINARY,
]
