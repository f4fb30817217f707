"""GradientTape behaviour TF's backprop.py documents beyond its own tests: one tape object
per training step, a non-persistent gradient() ending the recording, TF's error types and
messages, the warning for a persistent gradient() inside its context, zero-size
Jacobians, and variables assigned while a tape holds what it read."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine as tf
from engine.tape.gradient_tape import NON_PERSISTENT_REUSE, PERSISTENT_INSIDE_CONTEXT


def test_one_tape_object_reentered_each_step_starts_afresh_after_gradient():
    w = tf.Variable(1.0)
    tape = tf.GradientTape()
    seen = []
    for _ in range(3):
        with tape:
            loss = w * w
        (g,) = tape.gradient(loss, [w])
        seen.append(float(g))
        assert len(tape.entries) == 1  # this step's record only, not the steps before
        w.assign_sub(0.25 * g)
    assert seen == [2.0, 1.0, 0.5]


def test_a_non_persistent_gradient_inside_the_context_stops_recording():
    x = tf.Variable(3.0)
    with tf.GradientTape() as tape:
        y = x * x
        assert float(tape.gradient(y, x)) == 6.0
        assert not tape.recording
        z = y * x  # not recorded: the tape was dropped
    assert len(tape.entries) == 1
    with pytest.raises(RuntimeError, match=NON_PERSISTENT_REUSE.split("(")[0].strip()):
        tape.gradient(z, x)


def test_watched_variables_come_in_order_of_construction():
    a, b, c = tf.Variable(1.0), tf.Variable(2.0), tf.Variable(3.0)
    with tf.GradientTape() as tape:
        c * b
        a + c
    assert tape.watched_variables() == (a, b, c)


def test_gradient_of_none_is_a_type_error_as_tf():
    x = tf.constant(1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
    with pytest.raises(TypeError, match="received None"):
        tape.gradient(None, x)


def test_a_persistent_gradient_inside_its_context_warns_as_tf():
    x = tf.Variable(2.0)
    with tf.GradientTape(persistent=True) as tape:
        y = x**3
        with pytest.warns(UserWarning, match="significantly less efficient"):
            dy = tape.gradient(y, x)
        assert tape.recording  # a persistent tape goes on recording (higher orders)
    assert float(tape.gradient(dy, x)) == 12.0
    assert "higher order derivatives" in PERSISTENT_INSIDE_CONTEXT


def test_a_persistent_gradient_outside_its_context_does_not_warn():
    x = tf.Variable(2.0)
    with tf.GradientTape(persistent=True) as tape:
        y = x**3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(tape.gradient(y, x)) == 12.0


def test_jacobian_without_pfor_on_a_non_persistent_tape_raises_before_using_it():
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(RuntimeError, match="persistent=True"):
        tape.jacobian(y, x, experimental_use_pfor=False)
    np.testing.assert_array_equal(tape.jacobian(y, x).numpy(), [[2.0, 0.0], [0.0, 4.0]])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_parallel_iterations_must_be_a_positive_integer(bad):
    x = tf.constant([1.0, 2.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(ValueError, match="parallel_iterations"):
        tape.jacobian(y, x, parallel_iterations=bad)


def test_the_jacobian_of_a_zero_element_target_is_an_empty_array():
    x = tf.constant([1.0, 2.0])
    c = tf.constant(3.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, c])
        y = x[0:0] * 2.0
    jx, jc = tape.jacobian(y, [x, c])
    assert jx.shape == (0, 2) and jx.numpy().size == 0
    assert jc is None  # no path from c: None as for any target
    (zc,) = tape.jacobian(y, [c], unconnected_gradients=tf.UnconnectedGradients.ZERO)
    assert zc.shape == (0,)


def test_stop_recording_on_a_fresh_tape_is_tf_runtime_error():
    with pytest.raises(RuntimeError, match="Trying to stop recording a tape which is not"):
        with tf.GradientTape().stop_recording():
            pass


def test_assign_is_refused_while_a_tape_holds_what_it_read():
    v = tf.Variable([1.0, 2.0])
    with tf.GradientTape(persistent=True) as tape:
        y = tf.reduce_sum(v * v)
    with pytest.raises(RuntimeError, match="would use the new value"):
        v.assign([5.0, 5.0])
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), [2.0, 4.0])  # the old value


def test_assign_is_free_once_the_tape_let_go():
    v = tf.Variable([1.0, 2.0])
    with tf.GradientTape(persistent=True) as tape:
        tf.reduce_sum(v * v)
    del tape  # a persistent tape lets go when deleted
    v.assign([5.0, 5.0])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(v * v)
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), [10.0, 10.0])
    v.assign_add([1.0, -1.0])  # a non-persistent tape let go after its gradient
    np.testing.assert_array_equal(v.read_value().numpy(), [6.0, 4.0])


def test_a_tape_only_a_reference_cycle_keeps_alive_does_not_block_assign():
    v = tf.Variable(1.0)
    with tf.GradientTape(persistent=True) as tape:
        v * v
    cycle = {"tape": tape}
    cycle["self"] = cycle
    del tape, cycle
    v.assign(2.0)
    assert float(v) == 2.0


def test_assign_keeps_the_shape():
    v = tf.Variable([1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        v.assign([1.0, 2.0, 3.0])


def test_unconnected_gradients_enum_is_accepted():
    x, y = tf.constant(1.0), tf.constant(2.0)
    with tf.GradientTape() as tape:
        tape.watch([x, y])
        z = y * 2.0
    assert float(tape.gradient(z, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)) == 0.0
