"""Tall Jacobians by the transposed sweep (one seed per source element) equal the direct
sweep (one seed per target element) for every op, and tapes further out record them."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine.ops.registry import F
from engine.tape import backprop, transposed
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs


def _both(tape: tf.GradientTape, target: tf.Tensor, sources: list[tf.Tensor]) -> tuple:
    args = (tape.raw_entries, target, sources, tape.watched, tape.watched_leaves)
    return backprop.jacobian_rows(*args), transposed.jacobian_columns(*args)


@pytest.mark.parametrize(("op", "case"), op_cases(differentiable=True))
def test_every_op_transposed_equals_direct(op, case):
    rng = rng_for(op, case, "tall")
    values = sample_inputs(op, case, rng)
    xs = [tf.Variable(v, name=f"x{i}") for i, v in enumerate(values)]
    weights = tf.constant(rng.uniform(0.5, 1.5, (3,)))
    with tf.GradientTape(persistent=True) as tape:
        out = tf.OPS_FN[op.name](*xs, **op.normalize_attrs(case.attrs))
        # a nonlinear tail with a new leading axis: every target element mixes the op's
        target = F.sin(F.expand_dims(out, axis=0) * F.reshape(weights, shape=[3] + [1] * out.ndim))
    direct, columns = _both(tape, target, xs)
    for d, c in zip(direct, columns, strict=True):
        assert (d is None) == (c is None)
        if d is not None:
            assert c.shape == d.shape
            np.testing.assert_allclose(c.numpy(), d.numpy(), rtol=1e-12, atol=1e-12)


def test_tape_jacobian_takes_the_transposed_route_when_the_target_is_tall(monkeypatch):
    used: list[str] = []
    real = transposed.jacobian_columns

    def spy(*args, **kwargs):
        used.append("columns")
        return real(*args, **kwargs)

    monkeypatch.setattr(transposed, "jacobian_columns", spy)
    x = tf.Variable([0.3, -0.7])
    grid = tf.constant(np.linspace(-1, 1, 40).reshape(40, 1))
    with tf.GradientTape() as tape:
        y = F.tanh(grid * x)  # (40, 2) from 2 sources: tall
    jac = tape.jacobian(y, x)
    assert used == ["columns"]
    want = np.zeros((40, 2, 2))
    for k in range(2):
        want[:, k, k] = grid.numpy()[:, 0] / np.cosh(grid.numpy()[:, 0] * x.numpy()[k]) ** 2
    np.testing.assert_allclose(jac.numpy(), want, rtol=1e-12, atol=1e-14)


def test_an_outer_tape_differentiates_a_tall_jacobian():
    x = tf.Variable([0.4, -0.2, 0.9])
    grid = tf.constant(np.linspace(-2, 2, 30).reshape(30, 1))

    def squared_jacobian_norm(xv: np.ndarray) -> float:
        v = tf.Variable(xv)
        with tf.GradientTape() as t:
            y = F.sin(grid * v) * F.sum(v * v)
        return float(np.sum(t.jacobian(y, v).numpy() ** 2))

    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = F.sin(grid * x) * F.sum(x * x)
        jac = inner.jacobian(y, x)
        norm = F.sum(jac * jac)
    got = outer.gradient(norm, x).numpy()
    h = 1e-6
    want = np.array([
        (squared_jacobian_norm(x.numpy() + h * e) - squared_jacobian_norm(x.numpy() - h * e))
        / (2 * h)
        for e in np.eye(3)
    ])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_unconnected_sources_stay_none_or_zero():
    x, unused = tf.Variable([1.0, 2.0]), tf.Variable(3.0)
    grid = tf.constant(np.ones((10, 1)))
    with tf.GradientTape(persistent=True) as tape:
        y = grid * F.stop_gradient(x) + grid * unused * 0.0 + F.sign(x)
    direct, columns = _both(tape, y, [x, unused])
    for d, c in zip(direct, columns, strict=True):
        assert (d is None) == (c is None)
        if d is not None:
            np.testing.assert_array_equal(c.numpy(), d.numpy())
