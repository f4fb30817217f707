"""custom_gradient: the user's gradient replaces the forward's, reaches variables through
``variables=``, is differentiated again by nested tapes, works in vectorised Jacobians,
and wrong answers from ``grad_fn`` are TF's errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf


@tf.custom_gradient
def log1pexp(x):
    """TF's documented example: a numerically stable gradient for log(1 + e^x)."""
    e = tf.exp(x)

    def grad(upstream):
        return upstream * (1 - 1 / (1 + e))

    return tf.log(1 + e), grad


def test_the_user_gradient_replaces_the_forward_one():
    x = tf.constant(100.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = log1pexp(x)
    assert float(tape.gradient(y, x)) == 1.0  # the forward's own gradient would be NaN


def test_the_forward_ops_are_not_recorded_only_one_entry_per_output():
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = log1pexp(x)
    assert [e.op.name for e in tape.entries] == ["log1pexp"]
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 1 / (1 + np.exp(-x.numpy())))


def test_variables_read_inside_get_their_gradient_through_variables():
    w = tf.Variable(3.0)

    @tf.custom_gradient
    def scale(x):
        def grad(dy, variables=None):
            return dy * w, [dy * x * 10.0 for _ in variables]  # 10x: visibly the user's

        return x * w, grad

    x = tf.constant(2.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = scale(x)
    gx, gw = tape.gradient(y, [x, w])
    assert (float(gx), float(gw)) == (3.0, 20.0)


def test_a_grad_fn_without_variables_when_variables_are_read_is_a_type_error():
    w = tf.Variable(3.0)

    @tf.custom_gradient
    def scale(x):
        return x * w, lambda dy: dy * w

    with pytest.raises(TypeError, match="must accept keyword argument 'variables'"):
        scale(tf.constant(1.0))


def test_wrong_number_of_gradients_is_tf_value_error():
    @tf.custom_gradient
    def f(x, y):
        return x * y, lambda dz: [dz]

    a, b = tf.Variable(1.0), tf.Variable(2.0)
    with tf.GradientTape() as tape:
        z = f(a, b)
    with pytest.raises(ValueError, match="expected to return 2 gradients, but returned 1"):
        tape.gradient(z, [a, b])


def test_a_gradient_of_the_wrong_shape_names_both_shapes():
    @tf.custom_gradient
    def f(x):
        return x * 1.0, lambda dy: tf.ones([3])

    x = tf.Variable([1.0, 2.0])
    with tf.GradientTape() as tape:
        y = f(x)
    with pytest.raises(ValueError, match=r"\[3\].*\[2\]"):
        tape.gradient(y, x)


def test_a_number_as_gradient_is_broadcast_to_the_input():
    @tf.custom_gradient
    def f(x):
        return x * 2.0, lambda dy: 5.0

    x = tf.Variable([1.0, 2.0, 3.0])
    with tf.GradientTape() as tape:
        y = f(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [5.0, 5.0, 5.0])


def test_jacobian_through_a_custom_gradient_calls_grad_fn_per_row():
    calls = []

    @tf.custom_gradient
    def cube(x):
        def grad(dy):
            calls.append(dy.shape)
            return dy * 3.0 * x * x

        return x**3, grad

    x = tf.constant([[1.0], [2.0], [3.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = cube(x)
    np.testing.assert_allclose(
        tape.jacobian(y, x).numpy().reshape(3, 3), np.diag(3 * x.numpy().ravel() ** 2)
    )
    assert calls == [(3, 1)] * 3  # one call per row, each with the output's shape
    np.testing.assert_allclose(tape.batch_jacobian(y, x).numpy(), 3 * x.numpy()[:, :, None] ** 2)


def test_second_order_through_a_grad_fn_written_in_engine_ops():
    @tf.custom_gradient
    def f(x):
        return tf.sin(x), lambda dy: dy * tf.cos(x)

    x = tf.constant(0.7)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = f(x)
        dy = inner.gradient(y, x)
    assert float(outer.gradient(dy, x)) == pytest.approx(-np.sin(0.7))


def test_several_outputs_each_get_their_upstream():
    @tf.custom_gradient
    def pair(x):
        def grad(da, db):
            return da * 2.0 + db * 3.0

        return (x * 2.0, x * 3.0), grad

    x = tf.Variable(1.0)
    with tf.GradientTape(persistent=True) as tape:
        a, b = pair(x)
    assert float(tape.gradient(a, x)) == 2.0
    assert float(tape.gradient(b, x)) == 3.0
    assert float(tape.gradient([a, b], x)) == 5.0


def test_keyword_arguments_reach_the_forward_and_get_no_gradient():
    @tf.custom_gradient
    def scaled(x, scale=1.0):
        return x * scale, lambda dy: dy * scale

    x = tf.Variable(2.0)
    k = tf.Variable(5.0)
    with tf.GradientTape() as tape:
        y = scaled(x, scale=k)
    gx, gk = tape.gradient(y, [x, k])
    assert float(y) == 10.0 and float(gx) == 5.0 and gk is None
