"""TensorFlow's ``BackpropTest`` (tensorflow/python/eager/backprop_test.py), continued:
the tests that call TF's function wrappers around the tape (``gradients_function``,
``implicit_grad``, ``make_vjp``; see tf_test.py) and ``custom_gradient``."""

from __future__ import annotations

import functools

import engine as tf
from tests.engine.tf_peer.tf_test import TestCase, backprop

custom_gradient = tf


class BackpropTest(TestCase):
    def testImplicitGradWithResourceVariable(self):
        x = tf.Variable(initial_value=tf.constant(1.0), name="x")

        def fn():
            b = tf.constant(2.0)
            c = tf.add(x.read_value(), b)
            return tf.add(c, tf.constant(3.0))

        grads_and_vars = backprop.implicit_grad(fn)()
        self.assertAllEqual(grads_and_vars[0][0], 1.0)
        self.assertAllEqual(id(grads_and_vars[0][1]), id(x))

    def testWhereGradient(self):
        # Note: where is special because only some of its arguments are of
        # differentiable dtypes.

        def f(x):
            return tf.where(x < 10, x, x * x)

        g = backprop.gradients_function(f)

        self.assertAllEqual(g(5.0)[0], 1.0)
        self.assertAllEqual(g(50.0)[0], 100.0)

    def testCustomGradientEmptyError(self):
        @custom_gradient.custom_gradient
        def identity(x):
            def grad(_):
                return []  # This return value is wrong!

            return x, grad

        x = tf.Variable(1.0)
        with tf.GradientTape() as t:
            y = identity(x)
        with self.assertRaises(ValueError):
            t.gradient(y, [x])

    def testDy(self):
        def f(x):
            return x

        grad_fn = backprop.gradients_function(f)
        self.assertAllEqual(2.0, grad_fn(1.0, dy=2.0)[0])

    def testErrors(self):
        @custom_gradient.custom_gradient
        def f(x):
            def grad(_):
                raise RuntimeError("x")

            return x, grad

        # TODO(apassos) raise the right error here
        with self.assertRaises(RuntimeError):
            backprop.gradients_function(f)(tf.constant(1.0))

    def testGradientsFunctionInCustomGradient(self):
        @custom_gradient.custom_gradient
        def f(x):
            (y,) = backprop.gradients_function(lambda x: x * x)(x)

            def grad(dy):
                return [2 * dy]

            return y, grad

        self.assertAllEqual(f(1.0), 2.0)

    def testImplicitGradOrdering(self):
        v0 = tf.Variable(1.0)
        v1 = tf.Variable(2.0)

        def f():
            x = v1 * v1
            y = v0 * v0
            return x + y

        grads = backprop.implicit_grad(f)()
        ordered_variables = [x[1] for x in grads]
        self.assertIs(ordered_variables[0], v0)
        self.assertIs(ordered_variables[1], v1)

    def testGradientNone(self):
        def loss(x, l):  # noqa: E741 - TF's name
            return tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(logits=x, labels=l), tf.constant([0])
            )

        logits = tf.constant([[0.0, 0.0]])
        labels = tf.constant([[1.0, 0.0]])
        # softmax_cross_entropy_with_logits returns two outputs and in this case the
        # gradient wrt the second is None.
        (g,) = backprop.gradients_function(loss, [0])(logits, labels)
        self.assertAllEqual(g.numpy(), [[-0.5, 0.5]])

    def testSecondGrad(self):
        def first(x):
            l = tf.constant([[0.0]])  # noqa: E741 - TF's name
            x = tf.nn.softmax_cross_entropy_with_logits(labels=l, logits=x)
            x = tf.reduce_sum(x, tf.constant([0]))
            return x

        def second(x):
            grad = backprop.gradients_function(first, [0])(x)[0]
            return tf.reduce_sum(grad, tf.constant([0]))

        f = tf.constant([[0.1]])
        grad = backprop.gradients_function(second, [0])(f)[0]
        self.assertAllEqual([[0.0]], grad)

    def testMakeVJP(self):
        def f(x):
            return x * x

        wrapped_fn = backprop.make_vjp(f, persistent=False)
        result, vjp = wrapped_fn(tf.constant(3.0))
        self.assertAllEqual(result, 9.0)
        self.assertAllEqual(vjp(2.0)[0], 12.0)

    def testPersistentMakeVJP(self):
        def f(x):
            return x * x

        wrapped_fn = backprop.make_vjp(f, persistent=True)
        _, vjp = wrapped_fn(tf.constant(3.0))
        vjp_result1 = vjp(2.0)[0]
        vjp_result2 = vjp(2.0)[0]
        self.assertAllEqual(vjp_result1, vjp_result2, 12.0)

    def testGradGrad(self):
        def sq(x):
            return x * x

        def grad(x):
            value = backprop.gradients_function(sq, [0])(x)[0]
            return value

        gradgrad = backprop.gradients_function(grad, [0])

        self.assertAllEqual(gradgrad(tf.constant(3.0))[0], 2.0)

    def testGradGradExp(self):
        def grad(x):
            value = backprop.gradients_function(tf.exp, [0])(x)[0]
            return value

        gradgrad = backprop.gradients_function(grad, [0])

        self.assertAllEqual(gradgrad(tf.constant(0.0))[0], 1.0)

    def testCPU(self):
        def fn(x):
            b = tf.constant(2.0)
            c = tf.add(x, b)
            return tf.add(c, tf.constant(3.0))

        grad = backprop.gradients_function(fn, [0])(tf.constant(1.0))[0]
        self.assertAllEqual(grad, 1.0)

    def testEmptyParams(self):
        def fn(a, b):
            return a * b

        x = tf.constant(1.0)
        y = tf.constant(2.0)
        dx, dy = backprop.gradients_function(fn)(x, y)
        self.assertAllEqual(dx, y.numpy())
        self.assertAllEqual(dy, x.numpy())

    def testUnconnectedNone(self):
        v = tf.Variable(1.0, name="testUnconnectedNone")

        def f():
            v.read_value()
            return tf.constant(1.0)

        self.assertEqual(backprop.implicit_grad(f)()[0][0], None)

    def testEmptyParamsForValueAndGradFunction(self):
        def fn(a, b):
            return a * b

        val_and_grads_fn = backprop.val_and_grad_function(fn)

        x = 2.0
        y = 3.0
        val, (dx, dy) = val_and_grads_fn(x, y)
        self.assertAllClose(val, x * y)
        self.assertAllEqual(dx, y)
        self.assertAllEqual(dy, x)

    def testNonEmptyParamsForValueAndGradFunction(self):
        def fn(a, b):
            return a * b

        val_and_grad_fn = backprop.val_and_grad_function(fn, params=[1])

        x = 2.0
        y = 3.0
        val, grads = val_and_grad_fn(x, y)
        self.assertAllClose(val, x * y)
        self.assertEqual(1, len(grads))
        self.assertAllEqual(grads[0], x)

    def testArgsGradientFunction(self):
        def f(*args):
            return args[0] * args[0]

        grad = backprop.gradients_function(f)
        self.assertAllEqual(grad(1.0)[0], 2.0)

    def testPartial(self):
        def f(x, y):
            return x * y

        part = functools.partial(f, tf.constant(2.0))
        self.assertAllEqual(backprop.gradients_function(part)(tf.constant(1.0))[0], 2.0)

    def testReturnSameThing(self):
        def f(x):
            return x, 2 * x

        self.assertAllEqual(backprop.gradients_function(f)(1.0)[0], 3.0)

    def testExceptionSafety(self):
        def f(unused_x):
            raise ValueError()

        try:
            backprop.gradients_function(f)(1.0)
        except ValueError:
            pass

        def real_f(x):
            return x * x

        self.assertAllEqual(backprop.gradients_function(real_f)(1.0)[0], 2.0)

    def testMultiValueConvertToTensor(self):
        x = tf.Variable(initial_value=tf.constant([1.0]), name="x")

        def fn():
            a = tf.add(x.read_value(), 1.0)
            # Make sure convert_to_tensor works correctly with list of TensorNodes.
            b = tf.stack([a, a], axis=0)
            return tf.reduce_mean(b)

        grad = backprop.implicit_grad(fn)()[0][0]
        self.assertAllEqual([1.0], grad)

    def testOutput(self):
        def multiout(x):
            return x + 2, x * x

        x = tf.constant([0.0, 1.0, 2.0])

        grad = backprop.gradients_function(multiout)(x)[0]
        self.assertAllEqual([1.0, 3.0, 5.0], grad)
