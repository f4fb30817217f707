"""TensorFlow's ``BackpropTest`` (tensorflow/python/eager/backprop_test.py), continued:
structures, nesting, persistence, unconnected gradients, watched variables."""

from __future__ import annotations

import numpy as np

import engine as tf
from tests.engine.tf_peer.tf_test import TestCase


class BackpropTest(TestCase):
    def testGradientTapeStructure(self):
        with tf.GradientTape(persistent=True) as g:
            # Using different constant values because constant tensors are
            # cached, leading to a different gradient then what one might expect.
            x1 = tf.constant(3.0)
            x2 = tf.constant(3.1)
            x3 = tf.constant(3.2)
            g.watch(x1)
            g.watch(x2)
            g.watch(x3)
            y = x1 + 2 * x2 + 3 * x3
        self.assertEqual(self.evaluate(g.gradient(y, x1)), [1.0])
        self.assertEqual(self.evaluate(g.gradient(y, (x1,))), (1.0,))
        self.assertEqual(self.evaluate(g.gradient(y, (x1, x2))), (1.0, 2.0))
        self.assertEqual(
            self.evaluate(g.gradient(y, [(x1, x2), (x2, x3)])), [(1.0, 2.0), (2.0, 3.0)]
        )
        self.assertEqual(self.evaluate(g.gradient(y, (x1, x2, [x1, x3]))), (1.0, 2.0, [1.0, 3.0]))
        self.assertEqual(
            self.evaluate(g.gradient(y, [x1, {"x2": x2, "x3": x3}])),
            [1.0, {"x2": 2.0, "x3": 3.0}],
        )

    def testGradientTape(self):
        with tf.GradientTape() as g:
            x = tf.constant(3.0)
            g.watch(x)
            y = x * x
            with tf.GradientTape() as gg:
                gg.watch(y)
                z = 2 * y
            inner_grad = gg.gradient(z, [y])[0]
            self.assertEqual(self.evaluate(inner_grad), 2.0)
            y += inner_grad
        grad = g.gradient(y, [x])[0]
        self.assertEqual(self.evaluate(grad), 6.0)

    def testGadientTapeCalledOnConstantTarget(self):
        with tf.GradientTape() as g:
            x = tf.Variable([3.0])
            y = tf.Variable([2.0])
        grad = g.gradient(x, y)
        self.assertAllEqual(grad, None)

    def testGradientTapeGradientCalledMultipleTimes(self):
        with tf.GradientTape() as g:
            x = tf.constant(3.0)
            g.watch(x)
            y = x * x
            z = y * y
        g.gradient(z, [x])
        with self.assertRaisesRegex(
            RuntimeError,
            "A non-persistent GradientTape can only be used to compute one set of gradients",
        ):
            g.gradient(y, [x])

    def testPersistentTape(self):
        with tf.GradientTape(persistent=True) as g:
            x = tf.constant(3.0)
            g.watch(x)
            y = x * x
            z = y * y
        dz_dx = g.gradient(z, [x])[0]
        self.assertEqual(self.evaluate(dz_dx), 4 * 3 * 3 * 3)
        dy_dx = g.gradient(y, [x])[0]
        self.assertEqual(self.evaluate(dy_dx), 2 * 3)
        del g

    def testHigherOrderGradient(self):
        with tf.GradientTape(persistent=True) as g:
            x = tf.constant(3.0)
            g.watch(x)
            y = x**3  # y       := x^3
            dy_dx = g.gradient(y, x)  # dy/dx   := 3x^2
            d2y_dx2 = g.gradient(dy_dx, x)  # d2y/dx2 := 6x
        d3y_dx3 = g.gradient(d2y_dx2, x)  # d3y/dx3 := 6
        x = 3
        self.assertEqual(self.evaluate(y), x**3)
        self.assertEqual(self.evaluate(dy_dx), 3 * x**2)
        self.assertEqual(self.evaluate(d2y_dx2), 6 * x)
        self.assertEqual(self.evaluate(d3y_dx3), 6)
        del g

    def testPersistentNestedTape(self):
        with tf.GradientTape(persistent=True) as g:
            x = tf.constant(3.0)
            g.watch(x)
            y = x * x
            with tf.GradientTape(persistent=True) as gg:
                gg.watch(y)
                z = 2 * y
            for _ in range(2):
                inner_grad = gg.gradient(z, [y])[0]
                self.assertEqual(self.evaluate(inner_grad), 2.0)
            y += inner_grad
            del gg
        grad = g.gradient(y, [x])[0]
        self.assertEqual(self.evaluate(grad), 6.0)
        grad = g.gradient(z, [x])[0]
        self.assertEqual(self.evaluate(grad), 12.0)
        del g

    def testGradientTapeVariable(self):
        v = tf.Variable(1.0, name="v")
        with tf.GradientTape() as g:
            y = v * v
        grad = g.gradient(y, [v])[0]
        self.assertAllEqual(self.evaluate(grad), 2.0)

    def testNestedGradients(self):
        x = tf.constant(3.0)
        with tf.GradientTape() as g:
            g.watch(x)
            y = x * x
            z = y * y
        dz_dx, dz_dy = g.gradient(z, [x, y])
        self.assertEqual(self.evaluate(dz_dx), 108.0)
        self.assertEqual(self.evaluate(dz_dy), 18.0)

    def testUnconnectedGradientsDefault(self):
        x = tf.constant(1.0)
        y = tf.constant(3.0)
        with tf.GradientTape() as g:
            g.watch([x, y])
            z = y * 2
        dz_dx = g.gradient(z, x)
        self.assertEqual(dz_dx, None)

    def testUnconnectedGradientsZeros(self):
        x = tf.constant(1.0, shape=[2, 2])
        y = tf.constant(3.0)
        with tf.GradientTape() as g:
            g.watch([x, y])
            z = y * 2
        dz_dx = g.gradient(z, x, unconnected_gradients="zero")
        self.assertAllEqual([[0.0, 0.0], [0.0, 0.0]], self.evaluate(dz_dx))

    def testUnconnectedGradientsVariablesZeros(self):
        x = tf.Variable(tf.constant(1.0, shape=[2, 2]))
        y = tf.Variable(tf.constant(3.0))
        with tf.GradientTape() as g:
            g.watch([x, y])
            z = y * 2
        dz_dx = g.gradient(z, x, unconnected_gradients="zero")
        self.assertAllEqual([[0.0, 0.0], [0.0, 0.0]], self.evaluate(dz_dx))

    def testUnknownUnconnectedGradientsValueGiven(self):
        x = tf.constant(1.0)
        y = tf.constant(1.0)
        with tf.GradientTape() as g:
            g.watch([x, y])
            z = y * 2
        with self.assertRaisesRegex(
            ValueError, "Unknown value for unconnected_gradients: 'nonsense'"
        ):
            g.gradient(z, x, unconnected_gradients="nonsense")

    def testSelectivelyWatchVariables(self):
        x1 = tf.Variable(1.0)
        x2 = tf.Variable(1.0)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x2)
            y = x1**2
            z = x2**3
        self.assertTupleEqual(tape.watched_variables(), (x2,))
        dy, dz = tape.gradient([y, z], [x1, x2])
        self.assertIsNone(dy)
        self.assertEqual(self.evaluate(dz), 3.0)

    def testDifferentiatingScalarCache(self):
        # In the following test, if x2 = x1 (i.e the objects are the exact same),
        # then y is essentially, 2*x1, and dy/dx1 = 2.
        # When we had a pure scalar cache in eager, this would be the case. This
        # test prevents us from going back to that case.
        with tf.GradientTape(persistent=False) as g:
            x1 = tf.constant(3.0)
            x2 = tf.constant(3.0)
            g.watch(x1)
            g.watch(x2)
            y = x1 + x2
        grad = g.gradient(target=y, sources=[x1])
        self.assertEqual(self.evaluate(grad), [1.0])

    def testVariablesAndConstantsProduceTheSameGradients(self):
        # In the following test, differentiating [y, z] against [a, b] gives:
        # (dy/da + dz/da, dy/db + dz/db).
        # If a and b are the same constant, dz/da will not be 0 (which it should
        # be).
        def get_grads(a, b):
            with tf.GradientTape() as tape:
                tape.watch([a, b])
                y = a**3
                z = b**2
            return tape.gradient([y, z], [a, b])

        gradients_constants = get_grads(tf.constant(2.0), tf.constant(2.0))
        gradients_variables = get_grads(tf.Variable(2.0), tf.Variable(2.0))
        self.assertAllEqual(gradients_constants, gradients_variables)

    def testWatchBadThing(self):
        g = tf.GradientTape()
        with self.assertRaisesRegex(ValueError, "ndarray"):
            g.watch(np.array(1.0))

    def testWatchedVariablesAfterNonPersistentGradientCall(self):
        with tf.GradientTape(persistent=False) as tape:
            x = tf.Variable(1.0)
            tape.watch(x)
        tape.gradient(x, x)
        self.assertEqual((x,), tape.watched_variables())

    def testWatchedVariablesOnlyHasVariablesFromLastTape(self):
        with tf.GradientTape(persistent=False) as tape:
            x = tf.Variable(1.0)
            tape.watch(x)
        with tf.GradientTape(persistent=False) as tape:
            z = tf.Variable(2.0)
            tape.watch(z)
        tape.gradient(z, z)
        self.assertEqual((z,), tape.watched_variables())

    def testWatchedVariablesRespectReset(self):
        with tf.GradientTape(persistent=False) as tape:
            x = tf.Variable(1.0)
            tape.watch(x)
            self.assertEqual((x,), tape.watched_variables())
            tape.reset()
            z = tf.Variable(2.0)
            tape.watch(z)
            self.assertEqual((z,), tape.watched_variables())
        tape.gradient(z, z)
        self.assertEqual((z,), tape.watched_variables())
