"""GradientTape.batch_jacobian: per-example Jacobians equal the diagonal blocks of the
full Jacobian, in bounded chunks of seeds, recorded by an outer tape, zeros when
unconnected (as TF), and TF's errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine.tape import backprop


def _full_blocks(tape, y, x):
    """The per-example blocks cut out of the full Jacobian: what batch_jacobian must equal."""
    full = tape.jacobian(y, x).numpy()  # (b, *ys, b, *xs)
    b = y.shape[0]
    return np.stack([full[i][(Ellipsis, i) + (slice(None),) * (x.ndim - 1)] for i in range(b)])


def _model(x):
    w = tf.constant(np.arange(12.0).reshape(3, 4) / 10.0)
    return tf.tanh(tf.matmul(x, w)) * tf.reduce_sum(x * x, axis=1, keepdims=True)


def test_batch_jacobian_equals_the_blocks_of_the_full_jacobian():
    x = tf.constant(np.linspace(-1.0, 1.0, 15).reshape(5, 3))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = _model(x)
    got = tape.batch_jacobian(y, x)
    assert got.shape == (5, 4, 3)
    np.testing.assert_allclose(got.numpy(), _full_blocks(tape, y, x), rtol=1e-12, atol=1e-12)


def test_chunks_of_seeds_give_the_same_answer(monkeypatch):
    x = tf.constant(np.linspace(-1.0, 1.0, 15).reshape(5, 3))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = _model(x)
    whole = tape.batch_jacobian(y, x).numpy()
    sweeps = []
    real = backprop.jacobian_rows
    monkeypatch.setattr(backprop, "CHUNK_ELEMENTS", 20)  # one row of seeds per sweep
    monkeypatch.setattr(
        backprop, "jacobian_rows", lambda *a, **k: sweeps.append(k["seeds"].shape) or real(*a, **k)
    )
    np.testing.assert_allclose(tape.batch_jacobian(y, x).numpy(), whole, rtol=1e-12)
    assert sweeps == [(1, 5, 4)] * 4  # seeds held at once: 20 elements, never 4 x 20


def test_without_pfor_rows_go_one_at_a_time_and_agree():
    x = tf.constant(np.linspace(-1.0, 1.0, 6).reshape(2, 3))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = _model(x)
    np.testing.assert_allclose(
        tape.batch_jacobian(y, x, experimental_use_pfor=False).numpy(),
        tape.batch_jacobian(y, x, parallel_iterations=3).numpy(),
        rtol=1e-12,
    )


def test_an_outer_tape_differentiates_a_batch_jacobian():
    x = tf.constant([[0.5, -1.0], [2.0, 0.25]])
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = x**3
        bj = inner.batch_jacobian(y, x)  # diag(3 x^2) per example
        total = tf.reduce_sum(bj)
    np.testing.assert_allclose(outer.gradient(total, x).numpy(), 6 * x.numpy())


def test_an_unconnected_source_gives_zeros_as_tf():
    x = tf.constant([[1.0, 2.0]])
    c = tf.constant([[3.0, 4.0, 5.0]])
    with tf.GradientTape() as tape:
        tape.watch([x, c])
        y = c * 2.0
    got = tape.batch_jacobian(y, x)
    np.testing.assert_array_equal(got.numpy(), np.zeros((1, 3, 2)))


def test_higher_rank_target_and_source_keep_their_shapes():
    x = tf.constant(np.arange(24.0).reshape(2, 3, 4) / 10.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = tf.reshape(tf.sin(x), shape=[2, 4, 3]) * 2.0
    got = tape.batch_jacobian(y, x)
    assert got.shape == (2, 4, 3, 3, 4)
    np.testing.assert_allclose(got.numpy(), _full_blocks(tape, y, x), atol=1e-12)


def test_a_non_persistent_tape_gives_one_batch_jacobian():
    x = tf.constant([[1.0, 2.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.batch_jacobian(y, x)
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.batch_jacobian(y, x)


def test_mismatched_batch_names_both_shapes():
    x = tf.constant(np.ones((2, 3)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.concat([x, x], axis=0)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(2, 3\)"):
        tape.batch_jacobian(y, x)
