"""TensorFlow's ``JacobianTest`` and ``BatchJacobianTest``
(tensorflow/python/eager/backprop_test.py), ported: TF's names and assertion values,
the engine's spellings; the ``tf.function`` variants are left out (README.md)."""

from __future__ import annotations

import pytest

import engine as tf
from tests.engine.tf_peer.tf_test import TestCase


class JacobianTest(TestCase):
    def _jacobian(self, experimental_use_pfor):
        persistent = not experimental_use_pfor  # eager: executing_eagerly is truthy
        with tf.GradientTape(persistent=persistent) as g:
            x = tf.constant([1.0, 2.0])
            y = tf.constant([3.0, 4.0])
            g.watch(x)
            g.watch(y)
            z = x * x * y
        jacobian = g.jacobian(z, [x, y], experimental_use_pfor=experimental_use_pfor)
        answer = [tf.linalg.diag(2 * x * y), tf.linalg.diag(x * x)]
        return jacobian, answer

    def testPfor(self):
        jacobian, answer = self._jacobian(experimental_use_pfor=True)
        for j, a in zip(jacobian, answer, strict=True):
            self.assertAllEqual(a, j)

    def testWhileLoop(self):
        jacobian, answer = self._jacobian(experimental_use_pfor=False)
        for j, a in zip(jacobian, answer, strict=True):
            self.assertAllEqual(a, j)

    def testPersistentTape(self):
        with tf.GradientTape() as g:
            x = tf.constant([1.0, 2.0])
            g.watch(x)
            y = x * x
        with self.assertRaisesRegex(RuntimeError, "persistent"):
            g.jacobian(y, x, experimental_use_pfor=False)

    def test_parallel_iterations(self):
        with tf.GradientTape(persistent=True) as g:
            x = tf.constant([[1.0, 2], [3, 4]])
            g.watch(x)
            y = tf.matmul(x, x)
        self.assertAllClose(
            g.jacobian(y, x, parallel_iterations=2), g.jacobian(y, x, parallel_iterations=3)
        )

    def test_nested_jacobian(self):
        # TF skips this one under eager execution (b/128842926) and runs it in graph mode.
        x = tf.ones((10, 2))
        with tf.GradientTape(persistent=False) as g:
            g.watch(x)
            with tf.GradientTape(persistent=False) as gg:
                gg.watch(x)
                y = tf.reduce_sum(tf.square(x))
            dy_x = gg.jacobian(y, x)
        dy_xx = g.batch_jacobian(dy_x, x)
        dy_xx_answer = [[[2.0, 0], [0, 2.0]]] * 10
        self.assertAllClose(dy_xx_answer, self.evaluate(dy_xx))

    def test_indexed_slices(self):
        with tf.GradientTape(persistent=True) as g:
            inp = tf.random.uniform([3, 2])
            g.watch(inp)
            output = tf.nn.embedding_lookup(inp, [0, 2])
        self.assertAllClose(
            g.jacobian(output, inp, experimental_use_pfor=True),
            g.jacobian(output, inp, experimental_use_pfor=False),
        )


class BatchJacobianTest(TestCase):
    def _batch_jacobian(self, experimental_use_pfor):
        persistent = not experimental_use_pfor  # eager: executing_eagerly is truthy
        with tf.GradientTape(persistent=persistent) as g:
            x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
            y = tf.constant([[3.0, 4.0], [5.0, 6.0]])
            g.watch(x)
            z = x * x * y
        batch_jacobian = g.batch_jacobian(z, x, experimental_use_pfor=experimental_use_pfor)
        answer = tf.stack([tf.linalg.diag(2 * x[0] * y[0]), tf.linalg.diag(2 * x[1] * y[1])])
        return batch_jacobian, answer

    def testPfor(self):
        batch_jacobian, answer = self._batch_jacobian(experimental_use_pfor=True)
        self.assertAllEqual(answer, batch_jacobian)

    def testWhileLoop(self):
        batch_jacobian, answer = self._batch_jacobian(experimental_use_pfor=False)
        self.assertAllEqual(answer, batch_jacobian)

    def testPersistentTape(self):
        with tf.GradientTape() as g:
            x = tf.constant([[1.0, 2.0]])
            g.watch(x)
            y = x * x
        with self.assertRaisesRegex(RuntimeError, "persistent"):
            g.batch_jacobian(y, x, experimental_use_pfor=False)

    def testBadShape(self):
        x = tf.random.uniform([2, 3])
        with tf.GradientTape() as g:
            y = tf.concat([x, x], axis=0)
        with self.assertRaisesRegex(ValueError, "Need first dimension"):
            g.batch_jacobian(y, x)

    def testBadInputRank(self):
        x = tf.random.uniform([2])
        with tf.GradientTape() as g:
            y = tf.random.uniform([2, 2])
        with self.assertRaisesRegex(ValueError, "must have rank at least 2"):
            g.batch_jacobian(y, x)

    def testBadOutputRank(self):
        x = tf.random.uniform([2, 2])
        with tf.GradientTape() as g:
            y = tf.random.uniform([2])
        with self.assertRaisesRegex(ValueError, "must have rank at least 2"):
            g.batch_jacobian(y, x)

    def test_parallel_iterations(self):
        with tf.GradientTape(persistent=True) as g:
            x = tf.constant([[1.0, 2], [3, 4]])
            g.watch(x)
            w = tf.constant([[1.0, 2, 3, 4], [5, 6, 7, 8]])
            y = tf.matmul(x, w)
        self.assertAllClose(
            g.batch_jacobian(y, x, parallel_iterations=2),
            g.batch_jacobian(y, x, parallel_iterations=3),
        )


# TF's ``parameterized.parameters((True, True), (True, False), (False, True), (False,
# False))`` over (use_function, use_pfor): the use_function=True half needs tf.function.
@pytest.mark.parametrize("use_pfor", [True, False])
def test_degenerate_shape(use_pfor):
    def f(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x**2
        return tape.batch_jacobian(y, x, experimental_use_pfor=use_pfor)

    TestCase().assertAllEqual([1, 0, 0], tf.shape(f(tf.zeros([1, 0]))))
