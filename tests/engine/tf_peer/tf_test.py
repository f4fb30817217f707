"""What the ported TensorFlow tests lean on besides ``import engine as tf``.

``TestCase``: the assertions of TF's ``test.TestCase`` they use (``assertAllEqual``,
``assertAllClose``, ``evaluate``), on numpy. ``backprop``: TF's thin function wrappers
around the tape that its tests call (``gradients_function``, ``implicit_grad``,
``val_and_grad_function``, ``make_vjp``), each a few lines over ``engine.GradientTape``
with the behaviour TF's ``tensorflow/python/eager/backprop.py`` documents.
"""

from __future__ import annotations

import inspect
import types
import unittest
from typing import Any

import numpy as np

import engine as tf


def _numpy(x: Any) -> Any:
    if isinstance(x, tf.Tensor):
        return x.numpy()
    if isinstance(x, list | tuple):
        return type(x)(_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: _numpy(v) for k, v in x.items()}
    return x


class TestCase(unittest.TestCase):
    """TF's ``test.TestCase`` assertions, on the engine's eager tensors."""

    def evaluate(self, x: Any) -> Any:
        return _numpy(x)

    def assertAllEqual(self, a: Any, b: Any, msg: Any = None) -> None:  # noqa: N802 - TF's name
        np.testing.assert_array_equal(
            np.asarray(_numpy(a), dtype=object if _has_none(a) else None),
            np.asarray(_numpy(b), dtype=object if _has_none(b) else None),
            err_msg=msg or "",
        )

    def assertAllClose(
        self,
        a: Any,
        b: Any,
        rtol: float = 1e-6,
        atol: float = 1e-6,  # noqa: N802
        msg: Any = None,
    ) -> None:
        np.testing.assert_allclose(
            np.asarray(_numpy(a), dtype=np.float64),
            np.asarray(_numpy(b), dtype=np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=msg or "",
        )


def _has_none(x: Any) -> bool:
    if x is None:
        return True
    return isinstance(x, list | tuple) and any(_has_none(v) for v in x)


def _params(f: Any, params: Any, args: tuple) -> list[int]:
    """The positions of ``f``'s arguments to differentiate, as TF's ``_get_arg_spec``."""
    if params is not None and all(isinstance(p, int) for p in params):
        return list(params)
    try:
        names = [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        names = []
    if params is None:
        return list(range(len(args)))
    return [names.index(p) for p in params]


def _targets(value: Any) -> list[Any]:
    """What TF differentiates when ``f`` returns several values: each, summed."""
    return list(value) if isinstance(value, list | tuple) else [value]


def val_and_grad_function(f: Any, params: Any = None) -> Any:
    def decorated(*args: Any, dy: Any = None, **kwds: Any) -> Any:
        positions = _params(f, params, args)
        args = list(args)
        seen: set[int] = set()
        for i in positions:  # one tensor object per parameter, as TF's
            t = args[i] if isinstance(args[i], tf.Tensor) else tf.constant(args[i])
            if id(t) in seen:
                t = tf.identity(t)
            seen.add(id(t))
            args[i] = t
        with tf.GradientTape() as tape:
            tape.watch([args[i] for i in positions])
            value = f(*args, **kwds)
        if value is None:
            raise ValueError(
                "Cannot differentiate a function that returns None; "
                f"did you forget to return a value from {f.__name__}?"
            )
        targets = _targets(value)
        grads = tape.gradient(
            targets,
            [args[i] for i in positions],
            output_gradients=None if dy is None else [dy] * len(targets),
        )
        return value, grads

    return decorated


def gradients_function(f: Any, params: Any = None) -> Any:
    def decorated(*args: Any, **kwds: Any) -> Any:
        return val_and_grad_function(f, params)(*args, **kwds)[1]

    return decorated


def implicit_val_and_grad(f: Any) -> Any:
    def grad_fn(*args: Any, **kwds: Any) -> Any:
        with tf.GradientTape() as tape:
            end_node = f(*args, **kwds)
            if end_node is None:
                raise ValueError(
                    "Cannot differentiate a function that returns None; "
                    f"did you forget to return a value from {f.__name__}?"
                )
        variables = tape.watched_variables()
        if not variables:
            raise ValueError(
                "No trainable variables were accessed while the function was being computed."
            )
        grads = tape.gradient(_targets(end_node), list(variables))
        return end_node, list(zip(grads, variables, strict=True))

    return grad_fn


def implicit_grad(f: Any) -> Any:
    def grad_fn(*args: Any, **kwds: Any) -> Any:
        return implicit_val_and_grad(f)(*args, **kwds)[1]

    return grad_fn


def make_vjp(f: Any, params: Any = None, persistent: bool = True) -> Any:
    def decorated(*args: Any, **kwds: Any) -> Any:
        positions = _params(f, params, args)
        args = [a if isinstance(a, tf.Tensor) else tf.constant(a) for a in args]
        tape = tf.GradientTape(persistent=persistent)
        with tape:
            tape.watch([args[i] for i in positions])
            result = f(*args, **kwds)

        def vjp(dy: Any = None) -> Any:
            return tape.gradient(
                result, [args[i] for i in positions], output_gradients=None if dy is None else [dy]
            )

        return result, vjp

    return decorated


backprop = types.SimpleNamespace(
    GradientTape=tf.GradientTape,
    gradients_function=gradients_function,
    val_and_grad_function=val_and_grad_function,
    implicit_grad=implicit_grad,
    implicit_val_and_grad=implicit_val_and_grad,
    make_vjp=make_vjp,
)
