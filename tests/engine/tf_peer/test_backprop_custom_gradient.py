"""TensorFlow's ``BackpropTest`` (tensorflow/python/eager/backprop_test.py), continued:
``custom_gradient`` and arguments passed twice."""

from __future__ import annotations

import engine as tf
from tests.engine.tf_peer.tf_test import TestCase, backprop

custom_gradient = tf


class BackpropTest(TestCase):
    def testSameObjectForMultipleArguments(self):
        def f(x, y):
            return tf.multiply(x, y)

        g = backprop.gradients_function(f)

        def np_g(x, y):
            dx, dy = g(x, y)
            return [dx.numpy(), dy.numpy()]

        x = tf.constant(1.0)
        self.assertAllEqual([1.0, 1.0], np_g(x, x))
        x = 1.0
        self.assertAllEqual([1.0, 1.0], np_g(x, x))
        x = tf.constant([[1.0]])
        self.assertAllEqual([[[1.0]], [[1.0]]], np_g(x, x))
        x = [[1.0]]
        self.assertAllEqual([[[1.0]], [[1.0]]], np_g(x, x))

        v = tf.Variable(initial_value=1.0, name="testSameObjectForMultipleArguments.Variable")
        self.assertAllEqual([1.0, 1.0], np_g(v, v))

    def testImplicitGradientsCustomGradientAndCachedVariableValue(self):
        @custom_gradient.custom_gradient
        def my_square(x):
            result = tf.square(x)

            def grad(dr):
                return 2 * dr * x + 1

            return result, grad

        x = tf.Variable(initial_value=3.0, name="X." + self.id())

        def f():
            return my_square(x)

        g = backprop.implicit_grad(f)

        grads_and_vars = g()
        self.assertEqual(1, len(grads_and_vars))
        grad, var = grads_and_vars[0]
        self.assertAllEqual(7, grad)
        self.assertAllEqual(x, var)

    def testCustomGradient(self):
        @custom_gradient.custom_gradient
        def my_mul(x, y):
            result = x * y

            def grad(dr):
                return [dr * y, dr * x]

            return result, grad

        lr = 0.25
        x = tf.Variable(2.0, name="x")

        def loss(x):
            return my_mul(2.0, x.read_value())

        loss_grads_fn = backprop.implicit_val_and_grad(loss)

        losses = []
        for _ in range(5):
            loss, grads_and_vars = loss_grads_fn(x)
            losses.append(loss.numpy())
            for grad, var in grads_and_vars:
                var.assign_sub(lr * grad)
        self.assertAllEqual(losses, [4.0, 3.0, 2.0, 1.0, 0.0])

    def testCustomGradientIdentity(self):
        @custom_gradient.custom_gradient
        def my_identity(x):
            def grad(dresult):
                return [2 * dresult]

            return x, grad

        self.assertAllEqual(backprop.gradients_function(my_identity)(1.0)[0], 2.0)

    def testDifferentiatingFunctionThatReturnsNone(self):
        def fn(x, y):
            result = x * y  # noqa: F841 - TF's test

        x = tf.constant(1)
        y = tf.constant(2)

        loss_grads_fn = backprop.implicit_val_and_grad(fn)
        with self.assertRaisesRegex(
            ValueError,
            "Cannot differentiate a function that returns None; "
            "did you forget to return a value from fn?",
        ):
            loss_grads_fn(x, y)

        val_and_grads_fn = backprop.val_and_grad_function(fn)
        with self.assertRaisesRegex(
            ValueError,
            "Cannot differentiate a function that returns None; "
            "did you forget to return a value from fn?",
        ):
            val_and_grads_fn(x, y)

    def testCustomGradientInEagerAndGraph(self):
        @custom_gradient.custom_gradient
        def f(x):
            y = x * x

            def grad(dy):
                return [4 * dy]

            return y, grad

        with tf.GradientTape() as t:
            c = tf.constant(1.0)
            t.watch(c)
            g = f(c)
        self.assertAllEqual(self.evaluate(t.gradient(g, c)), 4.0)

    def testOverrideSecondOrderWithCustomGradient(self):
        @custom_gradient.custom_gradient
        def f(x):
            def first_order_grad(dz):
                @custom_gradient.custom_gradient
                def first_order_custom(unused_x):
                    def h(ddz):
                        return -2.1 * ddz

                    return -1.1, h

                return dz * first_order_custom(x)

            return x + 10.0, first_order_grad

        c = tf.constant(1.0)
        with tf.GradientTape() as outer:
            outer.watch(c)
            with tf.GradientTape() as inner:
                inner.watch(c)
                d = f(c) ** 4.0
            dd = inner.gradient(d, c)
            self.assertAllClose(4.0 * f(c) ** 3.0 * -1.1, dd)
        self.assertAllClose(
            3.0 * 4.0 * f(c) ** 2.0 * -1.1 * -1.1 + 4.0 * f(c) ** 3.0 * -2.1, outer.gradient(dd, c)
        )

    def testCustomGradientForwardprop(self):
        @custom_gradient.custom_gradient
        def f(x):
            z = 2.0 * x.numpy()

            def g(dz):
                @custom_gradient.custom_gradient
                def first_order(unused_x, unused_dz):
                    def second_order_and_transpose(unused_ddz):
                        return 2.2, 3.1

                    return 2.1, second_order_and_transpose

                return first_order(x, dz)

            return z, g

        with tf.GradientTape(persistent=True) as t:
            with tf.GradientTape() as tt:
                c = tf.constant(1.0)
                t.watch(c)
                tt.watch(c)
                output_grad = tf.ones([])
                t.watch(output_grad)
                output = f(c)
                self.assertAllClose(2.0, output)
            gc = tt.gradient(output, c, output_gradients=output_grad)
            self.assertAllClose(2.1, gc)
        ggc = t.gradient(gc, c)
        self.assertAllClose(2.2, ggc)
        # Note that executed eagerly this kind of transpose is not efficient. But
        # from a tf.function we could prune out the first-order gradient
        # computation.
        transpose = t.gradient(gc, output_grad)
        self.assertAllClose(3.1, transpose)
