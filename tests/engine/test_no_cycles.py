"""The engine's public API leaves nothing in reference cycles: reference counting frees it.

Tapes pause the cyclic collector while they record (engine.tape.collector), so a cycle made
under load lives on; see tests.cycles.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import engine as tf
from engine.derive import coloured_hessian, derivatives
from engine.errors import CostError
from engine.graphs.build import build_graph
from tests.cycles import ours_in_cycles
from tests.engine.test_coloured_hessian import limited, node, var


def _nested_sources() -> None:
    x, w = tf.Variable(np.linspace(0.1, 0.9, 6).reshape(2, 3)), tf.Variable([0.5, -1.0, 2.0])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(tf.sin(x) * w)
    tape.gradient(y, {"x": x, "parts": [w, (x, w)]})


def _persistent_twice_and_jacobian() -> None:
    x = tf.Variable([1.0, 2.0, 3.0])
    with tf.GradientTape(persistent=True) as tape:
        y = tf.exp(x) * x
        s = tf.reduce_sum(y)
    tape.gradient(s, x)
    tape.gradient([s, y], [x], output_gradients=[1.0, tf.constant([1.0, 2.0, 3.0])])
    tape.jacobian(y, x)


def _nested_tapes_hessian() -> None:
    x = tf.Variable([0.3, -0.7])
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = tf.reduce_sum(tf.tanh(x) ** 3)
        g = inner.gradient(y, x)
    outer.jacobian(g, x)


def _batch_jacobian() -> None:
    x = tf.Variable(np.arange(6.0).reshape(3, 2) / 7)
    with tf.GradientTape() as tape:
        y = tf.sin(x) * x
    tape.batch_jacobian(y, x)


def _custom_gradient() -> None:
    @tf.custom_gradient
    def clipped(x):
        return tf.identity(x), lambda dy: dy * 0.5

    x = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = clipped(x) * x
    tape.gradient(y, x)


def _sparse() -> None:
    x = tf.Variable(np.linspace(0.5, 1.5, 8))
    tf.sparse_hessian(lambda: tf.reduce_sum(tf.square(x[1:] - x[:-1] ** 2)), [x])
    tf.sparse_jacobian(lambda: tf.sin(x) * x, [x])


def _second_gradient_refused() -> None:
    x = tf.Variable(3.0)
    with tf.GradientTape() as tape:
        y = x * x
    tape.gradient(y, x)
    try:
        tape.gradient(y, x)
    except RuntimeError:
        pass


def _refused_by_the_coloured_sweep() -> None:
    """A dense Hessian over the cost limits, seen for the first time: refused from inside
    the sweep (engine.derive.coloured_hessian.columns_within)."""
    coloured_hessian._PLANS.clear()
    x = np.linspace(0.5, 1.5, 1000).tolist()
    nodes = [var("x", x), node("a", "sin", "x"), node("b", "mul", "a", "x"),
             node("c", "exp", "b"), node("d", "tanh", "c"), node("e", "mul", "d", "a"),
             node("s", "sum", "e"), node("f", "square", "s")]
    with pytest.raises(CostError):
        derivatives.hessian(limited(build_graph(nodes)))


@pytest.mark.parametrize("use", [
    _nested_sources, _persistent_twice_and_jacobian, _nested_tapes_hessian,
    _batch_jacobian, _custom_gradient, _sparse, _second_gradient_refused,
    _refused_by_the_coloured_sweep,
], ids=lambda f: f.__name__.strip("_"))
def test_nothing_is_left_in_a_cycle(use: Callable[[], None]):
    use()  # first sight: caches fill
    assert ours_in_cycles(use) == []


def test_the_check_finds_a_cycle():
    class Node:
        pass

    def cyclic() -> None:
        n = Node()
        n.self = n

    Node.__module__ = "engine.example"
    assert ours_in_cycles(cyclic) == ["test_the_check_finds_a_cycle.<locals>.Node"]
