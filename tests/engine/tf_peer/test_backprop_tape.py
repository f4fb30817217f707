"""TensorFlow's ``BackpropTest`` (tensorflow/python/eager/backprop_test.py), the tests of
``GradientTape`` itself, ported: TF's names and assertion values, the engine's spellings
(see README.md for what was left out and why)."""

from __future__ import annotations

import engine as tf
from tests.engine.tf_peer.tf_test import TestCase


class BackpropTest(TestCase):
    def testNoOpBehaviorConsistent(self):  # the 'NoFunction' parameterisation
        def f(x):
            # Test all different types of no-ops
            x1 = tf.identity(x)
            x2 = tf.add(x, 0)
            x3 = tf.subtract(x, 0)
            x4 = tf.multiply(x, 1)
            with tf.GradientTape() as t:
                t.watch(x)
                t.watch(x1)
                t.watch(x2)
                t.watch(x3)
                t.watch(x4)
                y1 = x * 2.0
                y2 = x1 * 3.0
                y3 = x2 * 3.0
                y4 = x3 * 3.0
                y5 = x4 * 3.0
                loss = y1 + y2 + y3 + y4 + y5
            return t.gradient(loss, [x, x1, x2, x3, x4])

        self.assertAllClose([2.0, 3.0, 3.0, 3.0, 3.0], f(tf.constant(10.0)))

    def testTwoTargets(self):
        with tf.GradientTape() as t:
            x = tf.constant(3.0)
            y = tf.constant(2.0)
            t.watch([x, y])
            xx = 2 * x
            yy = 3 * y
        dx, dy = t.gradient([xx, yy], [x, y])
        self.assertAllEqual(dx, 2.0)
        self.assertAllEqual(dy, 3.0)

    def testOutputGradUsedInComputation(self):
        with tf.GradientTape() as t:
            x = tf.constant(3.0)
            y = tf.constant(2.0)
            t.watch([x, y])
            loss = x * y
        (dx,) = t.gradient([loss, x], [x], output_gradients=[1.0, 2.0])
        self.assertAllEqual(dx, 4.0)

    def testTapeNoOpGradient(self):
        x = tf.constant(3.0)
        with tf.GradientTape() as t:
            t.watch(x)
            y = x
        self.assertEqual(t.gradient(y, x).numpy(), 1.0)

    def testTapeIdentityGradientIsIdentity(self):
        x = tf.constant(3.0)
        with tf.GradientTape() as t:
            t.watch(x)
            y = tf.identity(x)
        self.assertEqual(t.gradient(y, x).numpy(), 1.0)

    def testTapeGradientMultiTargetOneIsSource(self):
        x = tf.constant(2.0)
        with tf.GradientTape() as t:
            t.watch(x)
            y = x * x
        self.assertEqual(t.gradient([x, y], x).numpy(), 5.0)

    def testTapeNoOpGradientWithMultiTargetAllSource(self):
        x = tf.constant(3.0)
        with tf.GradientTape() as t:
            t.watch(x)
            y = x
        self.assertEqual(t.gradient([y, y], x).numpy(), 2.0)

    def testTapeNoOpGradientWithMultiTargetMultiSource(self):
        x = tf.constant(3.0)
        y = tf.constant(5.0)
        with tf.GradientTape() as t:
            t.watch(x)
            t.watch(y)
            z = y * y
        self.assertAllEqual(t.gradient([x, y, z], [x, y]), [1.0, 11.0])

    def testTapeNoOpOnVariableIsIdentity(self):
        v0 = tf.Variable(1.0)
        with tf.GradientTape() as t:
            y = v0.read_value()
        self.assertEqual(t.gradient(y, v0).numpy(), 1.0)

    def testTapeNoOpGradient2By2(self):
        a_2_by_2 = tf.constant(2.0, shape=[2, 2])
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(a_2_by_2)
        dy_dy = tape.gradient(a_2_by_2, [a_2_by_2])[0]
        self.assertAllEqual(dy_dy.numpy(), tf.constant(1.0, shape=[2, 2]).numpy())

    def testTapeNoOpGradientMultiTarget2By2(self):
        a_2_by_2 = tf.constant(2.0, shape=[2, 2])
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(a_2_by_2)
        dy_dy = tape.gradient([a_2_by_2, a_2_by_2], [a_2_by_2])[0]
        self.assertAllEqual(dy_dy.numpy(), tf.constant(2.0, shape=[2, 2]).numpy())

    def testTapeStopRecording(self):
        with tf.GradientTape() as t:
            x = tf.Variable(1.0)
            with t.stop_recording():
                y = x * x
        self.assertEqual(t.gradient(y, x), None)

    def testTapeStopStartRecording(self):
        with tf.GradientTape(persistent=True) as t:
            x = tf.Variable(1.0)
            x2 = x * 2  # This should be differentiated through.
            with t.stop_recording():
                y = x2 * x2
            z = x2 * x2
        self.assertEqual(t.gradient(y, x2), None)

        # If the x*2 was not differentiated through, this would be 2.0, not 4.0
        self.assertEqual(t.gradient(z, x2).numpy(), 4.0)

    def testTapeReset(self):
        with tf.GradientTape() as t:
            v = tf.Variable(1.0)
            loss = v * v
            t.reset()
            loss += v * v
        self.assertAllEqual(t.gradient(loss, v), 2.0)

    def testPythonMax(self):
        x = [tf.Variable(2.0), tf.Variable(3.0), tf.Variable(5.0)]
        with tf.GradientTape() as t:
            f = max(x)
        grad = t.gradient(f, x)
        self.assertAllEqual(self.evaluate(f), 5.0)
        self.assertAllEqual(self.evaluate(grad), [None, None, 1.0])

    def testAutomaticWatchedVariables(self):
        with tf.GradientTape() as t:
            self.assertEqual(0, len(t.watched_variables()))
            v = tf.Variable(1.0)
            loss = v * v
            self.assertAllEqual([v], t.watched_variables())

            t.reset()
            self.assertEqual(0, len(t.watched_variables()))
            loss += v * v
            self.assertAllEqual([v], t.watched_variables())

    def testExplicitWatchedVariables(self):
        with tf.GradientTape() as t:
            self.assertEqual(0, len(t.watched_variables()))
            v = tf.Variable(1.0)
            t.watch(v)
            self.assertAllEqual([v], t.watched_variables())

            t.reset()
            self.assertEqual(0, len(t.watched_variables()))
            t.watch(v)
            self.assertAllEqual([v], t.watched_variables())

    def testGradientWithinTapeBlock(self):
        v1 = tf.Variable(1.0)
        with tf.GradientTape() as t:
            loss = 2 * v1
            grad = t.gradient(loss, v1)
        self.assertAllEqual(self.evaluate(grad), 2.0)

        with tf.GradientTape(persistent=True) as t:
            loss = 2 * v1
            grad = t.gradient(loss, v1)
        self.assertAllEqual(self.evaluate(grad), 2.0)

    def testNestedSelfContexts(self):
        tf.Variable(1.0)
        with tf.GradientTape() as t:
            with self.assertRaises(ValueError):
                with t:
                    pass

    def testWatchingIsTapeLocal(self):
        x1 = tf.Variable(2.0, trainable=False)
        x2 = tf.Variable(2.0, trainable=False)

        with tf.GradientTape() as tape1:
            with tf.GradientTape() as tape2:
                tape1.watch(x1)
                tape2.watch([x1, x2])
                y = x1**3
                z = x2**2
                dy, dz = tape2.gradient([y, z], [x1, x2])
            d2y, d2z = tape1.gradient([dy, dz], [x1, x2])

        self.assertEqual(self.evaluate(d2y), 12.0)
        self.assertIsNone(d2z)

    def testGradientTapeReEnterContext(self):
        g = tf.GradientTape()
        with g:
            x = tf.constant(3.0)
            g.watch(x)
            y = 2 * x
        with g:
            z = 2 * y
        grad = g.gradient(target=z, sources=[x])
        self.assertEqual(self.evaluate(grad), [4.0])

    def testGradientTapeRepeatedSource(self):
        with tf.GradientTape(persistent=False) as g:
            x = tf.constant(3.0)
            g.watch(x)
            y = 2 * x
        grad = g.gradient(target=y, sources=[x, x])
        self.assertEqual(self.evaluate(grad), [2.0, 2.0])

    def testPersistentGradientTapeRepeatedSource(self):
        with tf.GradientTape(persistent=True) as g:
            x = tf.constant(3.0)
            y = tf.constant(5.0)
            g.watch(x)
            g.watch(y)
            z = x * x + x * y
        grad = g.gradient(target=z, sources=[x, x])
        self.assertEqual(self.evaluate(grad), [11.0, 11.0])
        grad = g.gradient(target=z, sources=[y, x])
        self.assertEqual(self.evaluate(grad), [3.0, 11.0])
