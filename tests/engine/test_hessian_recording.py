"""What a Hessian's outer tape records, entry by entry: each entry is swept again, once per
seed, so an entry less is work less (the n = 100 Rosenbrock Hessian records 3 squares)."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine.derive.hessian import hessian, record_gradient
from engine.ops.registry import OPS


def _recorded_ops(fn, x):
    rec = record_gradient(fn, [x])
    return [entry[0].name for entry in rec.outer.raw_entries], rec


def test_square_records_its_gradient_as_one_product_and_one_sum():
    x = tf.Variable(np.array([1.0, -2.0, 3.0]))
    ops, rec = _recorded_ops(lambda: tf.reduce_sum(tf.square(x)), x)
    assert ops == ["square", "sum", "mul", "add"]
    np.testing.assert_array_equal(rec.flat.numpy(), 2 * x.numpy())


@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e300, 1e308])
def test_square_s_rule_gives_mul_s_numbers_at_x_x_bit_for_bit(scale):
    """``g * x + g * x`` as mul's rule at (x, x) summed them: the same bits, overflow,
    NaN and broadcasting included."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4)) * scale
    x[0, 0], x[0, 1], x[0, 2] = np.nan, np.inf, -0.0
    g = rng.normal(size=(2, 3, 4))  # a batch of cotangents in front
    (got,) = OPS["square"].rule(g, (True,), x * x, x)
    gx, gy = OPS["mul"].rule(g, (True, True), x * x, x, x)
    np.testing.assert_array_equal(got, gx + gy)
    assert np.array_equal(np.signbit(got), np.signbit(gx + gy))


def test_a_flat_gradient_is_not_reshaped_and_a_matrix_one_is():
    v = tf.Variable(np.array([0.5, 1.5]))
    ops, _ = _recorded_ops(lambda: tf.reduce_sum(v * v * v), v)
    assert "reshape" not in ops
    m = tf.Variable(np.array([[0.5, 1.5], [2.0, -1.0]]))
    ops, rec = _recorded_ops(lambda: tf.reduce_sum(m * m * m), m)
    assert ops[-1] == "reshape"
    np.testing.assert_array_equal(rec.flat.numpy(), 3 * m.numpy().ravel() ** 2)
    for source in (v, m):
        got = hessian(lambda s=source: tf.reduce_sum(s * s * s), [source]).matrix
        np.testing.assert_allclose(got, np.diag(6 * source.numpy().ravel()), rtol=1e-15)
