"""The examples in the docstrings of TensorFlow's tensorflow/python/eager/backprop.py
(``GradientTape`` and its methods, ``gradients_function``,
``val_and_grad_function``, ``make_vjp``), as tests: TF's values, the engine's spellings.
Placeholders in an example (``loss_fn``, ``k``) are given small concrete values."""

from __future__ import annotations

import engine as tf
from tests.engine.tf_peer.tf_test import TestCase, backprop


class GradientTapeDocstringTest(TestCase):
    def test_class_watch_a_constant(self):
        x = tf.constant(3.0)
        with tf.GradientTape() as g:
            g.watch(x)
            y = x * x
        dy_dx = g.gradient(y, x)
        self.assertAllEqual(dy_dx, 6.0)

    def test_class_nested_tapes(self):
        x = tf.constant(5.0)
        with tf.GradientTape() as g:
            g.watch(x)
            with tf.GradientTape() as gg:
                gg.watch(x)
                y = x * x
            dy_dx = gg.gradient(y, x)  # dy_dx = 2 * x
        d2y_dx2 = g.gradient(dy_dx, x)  # d2y_dx2 = 2
        self.assertAllEqual(dy_dx, 10.0)
        self.assertAllEqual(d2y_dx2, 2.0)

    def test_class_persistent(self):
        x = tf.constant(3.0)
        with tf.GradientTape(persistent=True) as g:
            g.watch(x)
            y = x * x
            z = y * y
        dz_dx = g.gradient(z, x)  # (4*x^3 at x = 3)
        self.assertAllEqual(dz_dx, 108.0)
        dy_dx = g.gradient(y, x)
        self.assertAllEqual(dy_dx, 6.0)

    def test_class_watch_accessed_variables_false(self):
        x = tf.Variable(2.0)
        w = tf.Variable(5.0)
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as tape:
            tape.watch(x)
            y = x**2  # Gradients will be available for `x`.
            z = w**3  # No gradients will be available as `w` isn't being watched.
        dy_dx = tape.gradient(y, x)
        self.assertAllEqual(dy_dx, 4.0)
        # No gradients will be available as `w` isn't being watched.
        dz_dy = tape.gradient(z, w)
        self.assertIsNone(dz_dy)

    def test_stop_recording(self):
        x = tf.constant(4.0)
        with tf.GradientTape() as tape:
            with tape.stop_recording():
                y = x**2
        dy_dx = tape.gradient(y, x)
        self.assertIsNone(dy_dx)

    def test_reset_equals_a_new_tape(self):
        v = tf.Variable(3.0)

        def loss_fn():
            return v * v

        def other_loss_fn():
            return 5.0 * v

        with tf.GradientTape() as t:
            loss = loss_fn()
        with tf.GradientTape() as t:
            loss += other_loss_fn()
        first = t.gradient(loss, v)  # Only differentiates other_loss_fn, not loss_fn

        # The following is equivalent to the above
        with tf.GradientTape() as t:
            loss = loss_fn()
            t.reset()
            loss += other_loss_fn()
        second = t.gradient(loss, v)  # Only differentiates other_loss_fn, not loss_fn
        self.assertAllEqual(first, 5.0)
        self.assertAllEqual(second, 5.0)

    def test_reset_inside_control_flow(self):
        v = tf.Variable(3.0)
        k = 4.0
        with tf.GradientTape() as t:
            loss = v * v
            if loss > k:
                t.reset()
            loss = loss + 2.0 * v
        self.assertAllEqual(t.gradient(loss, v), 2.0)

    def test_jacobian(self):
        with tf.GradientTape() as g:
            x = tf.constant([1.0, 2.0])
            g.watch(x)
            y = x * x
        jacobian = g.jacobian(y, x)
        self.assertAllEqual(jacobian, [[2.0, 0.0], [0.0, 4.0]])

    def test_batch_jacobian(self):
        with tf.GradientTape() as g:
            x = tf.constant([[1.0, 2.0], [3.0, 4.0]], dtype=tf.float32)
            g.watch(x)
            y = x * x
        batch_jacobian = g.batch_jacobian(y, x)
        self.assertAllEqual(batch_jacobian, [[[2, 0], [0, 4]], [[6, 0], [0, 8]]])


class FunctionsDocstringTest(TestCase):
    @staticmethod
    def f(x, y):
        return x * x * x * y - x * y * y

    def test_gradients_function(self):
        grad_fn = backprop.gradients_function(self.f)
        x = 2.0
        y = 3.0
        x_grad, y_grad = grad_fn(x, y)
        assert x_grad.numpy() == 3 * (2**2) * 3 - 3**2
        assert y_grad.numpy() == (2**3) - 2 * 2 * 3

        gradgrad_fn = backprop.gradients_function(lambda x, y: grad_fn(x, y)[0])
        x_gradgrad = gradgrad_fn(x, y)[0]
        assert x_gradgrad.numpy() == 6 * 2 * 3

        ygrad_fn = backprop.gradients_function(self.f, params=[1])
        (y_grad,) = ygrad_fn(x, y)
        assert y_grad.numpy() == (2**3) - 2 * 2 * 3

    def test_val_and_grad_function(self):
        val_grads_fn = backprop.val_and_grad_function(self.f)
        x = 2.0
        y = 3.0
        f_val, (x_grad, y_grad) = val_grads_fn(x, y)
        assert f_val.numpy() == (2**3) * 3 - 2 * (3**2)
        assert x_grad.numpy() == 3 * (2**2) * 3 - 3**2
        assert y_grad.numpy() == (2**3) - 2 * 2 * 3

        val_ygrad_fn = backprop.val_and_grad_function(self.f, params=[1])
        f_val, (y_grad,) = val_ygrad_fn(x, y)
        assert f_val.numpy() == (2**3) * 3 - 2 * (3**2)
        assert y_grad.numpy() == (2**3) - 2 * 2 * 3

    def test_make_vjp(self):
        def f(x):
            return x * x

        wrapped_fn = backprop.make_vjp(f)
        result, vjp = wrapped_fn(tf.constant(3.0))
        self.assertAllEqual(result, 9.0)  # result is 9.0
        self.assertAllEqual(vjp()[0], 6.0)  # the vjp function returns 6.0
