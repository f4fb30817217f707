"""TF GradientTape semantics, one behaviour per test, named for it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine as tf
from engine.tape.gradient_tape import NON_PERSISTENT_REUSE


def test_trainable_variable_is_watched_when_accessed():
    x = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = x * x
    assert tape.watched_variables() == (x,)
    assert float(tape.gradient(y, x)) == pytest.approx(2 * 2.0)


def test_constant_is_not_watched_and_gives_none_with_a_not_watched_note():
    c = tf.constant(3.0, name="c")
    with tf.GradientTape() as tape:
        y = c * c
    assert tape.gradient(y, c) is None
    assert [n.reason for n in tape.notes] == ["not_watched"]


def test_watch_makes_a_constant_differentiable():
    c = tf.constant(3.0)
    with tf.GradientTape() as tape:
        tape.watch(c)
        y = c * c
    assert float(tape.gradient(y, c)) == pytest.approx(6.0)


def test_non_trainable_variable_is_not_watched():
    v = tf.Variable(1.5, trainable=False)
    with tf.GradientTape() as tape:
        y = tf.exp(v)
    assert tape.gradient(y, v) is None
    assert tape.watched_variables() == ()


def test_watch_accessed_variables_false_watches_only_what_is_asked():
    x, y = tf.Variable(1.0), tf.Variable(2.0)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        z = x * y
    gx, gy = tape.gradient(z, [x, y])
    assert float(gx) == pytest.approx(2.0)
    assert gy is None
    assert tape.notes[0].reason == "not_watched"


def test_second_gradient_call_on_non_persistent_tape_raises():
    x = tf.Variable(3.0)
    with tf.GradientTape() as tape:
        y = x * x
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="non-persistent GradientTape") as err:
        tape.gradient(y, x)
    assert str(err.value) == NON_PERSISTENT_REUSE


def test_persistent_tape_allows_many_gradient_calls():
    x = tf.Variable(3.0)
    with tf.GradientTape(persistent=True) as tape:
        y = x * x
        z = y * y
    assert float(tape.gradient(y, x)) == pytest.approx(6.0)
    assert float(tape.gradient(z, x)) == pytest.approx(4 * 27.0)


def test_stop_recording_pauses_the_tape():
    x = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = x * x
        with tape.stop_recording():
            z = y * 10.0
        w = y + z
    # z is a constant to the tape: dw/dx = dy/dx = 2x
    assert float(tape.gradient(w, x)) == pytest.approx(4.0)


def test_stop_recording_on_a_fresh_tape_raises_runtime_error_as_tf():
    tape = tf.GradientTape()
    with pytest.raises(RuntimeError, match="not recording"), tape.stop_recording():
        pass


def test_stop_recording_after_the_context_raises_value_error_as_tf():
    tape = tf.GradientTape()
    with tape:
        pass
    with pytest.raises(ValueError, match="Tape is not recording"), tape.stop_recording():
        pass


def test_reset_forgets_what_was_recorded():
    x = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = x * x
        tape.reset()
        z = x * 5.0
    assert tape.gradient(y, x) is None
    with tf.GradientTape() as tape2:
        tape2.reset()
        z = x * 5.0
    assert float(tape2.gradient(z, x)) == pytest.approx(5.0)


def test_nested_tapes_give_third_order_derivatives():
    x = tf.Variable(0.7)
    with tf.GradientTape() as t3:
        with tf.GradientTape() as t2:
            with tf.GradientTape() as t1:
                y = tf.sin(x) * x
            d1 = t1.gradient(y, x)
        d2 = t2.gradient(d1, x)
    d3 = t3.gradient(d2, x)
    v = 0.7
    assert float(d1) == pytest.approx(np.cos(v) * v + np.sin(v))
    assert float(d2) == pytest.approx(-np.sin(v) * v + 2 * np.cos(v))
    assert float(d3) == pytest.approx(-np.cos(v) * v - 3 * np.sin(v))


def test_unconnected_source_is_none_or_zero():
    x, y = tf.Variable(1.0), tf.Variable([1.0, 2.0])
    with tf.GradientTape(persistent=True) as tape:
        z = x * 3.0
        _ = y * 2.0
    assert tape.gradient(z, y) is None
    assert tape.notes[0].reason == "unconnected"
    zero = tape.gradient(z, y, unconnected_gradients="zero")
    np.testing.assert_array_equal(zero.numpy(), np.zeros(2))


def test_output_gradients_weight_the_target():
    x = tf.Variable([1.0, 2.0, 3.0])
    w = np.array([0.5, -1.0, 2.0])
    with tf.GradientTape() as tape:
        y = x * x
    g = tape.gradient(y, x, output_gradients=w)
    np.testing.assert_allclose(g.numpy(), w * 2 * x.numpy())


def test_non_scalar_target_is_summed():
    x = tf.Variable([1.0, 2.0])
    with tf.GradientTape() as tape:
        y = tf.exp(x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.exp(x.numpy()))


def test_list_of_targets_is_summed():
    x = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        a, b = x * x, x * 3.0
    assert float(tape.gradient([a, b], x)) == pytest.approx(2 * 2.0 + 3.0)


def test_list_and_dict_sources_keep_their_structure():
    x, y = tf.Variable(1.0), tf.Variable(2.0)
    with tf.GradientTape(persistent=True) as tape:
        z = x * y
    as_list = tape.gradient(z, [x, y])
    as_dict = tape.gradient(z, {"a": x, "b": (y,)})
    assert isinstance(as_list, list) and len(as_list) == 2
    assert set(as_dict) == {"a", "b"} and isinstance(as_dict["b"], tuple)
    assert float(as_dict["a"]) == pytest.approx(2.0)
    assert float(as_dict["b"][0]) == pytest.approx(1.0)


def test_gradient_shape_equals_source_shape_under_broadcasting():
    a = tf.Variable(np.ones((3, 1)))
    b = tf.Variable(np.arange(4.0))
    with tf.GradientTape() as tape:
        y = a * b
    ga, gb = tape.gradient(y, [a, b])
    assert ga.shape == (3, 1) and gb.shape == (4,)
    np.testing.assert_allclose(ga.numpy(), np.full((3, 1), np.arange(4.0).sum()))
    np.testing.assert_allclose(gb.numpy(), np.full(4, 3.0))


def test_jacobian_has_target_shape_plus_source_shape():
    x = tf.Variable(np.array([0.1, 0.2, 0.3]))
    with tf.GradientTape() as tape:
        y = tf.sin(x) * 2.0
    j = tape.jacobian(y, x)
    assert j.shape == (3, 3)
    np.testing.assert_allclose(j.numpy(), np.diag(2 * np.cos(x.numpy())))


def test_gradient_of_gradient_outside_the_tape_is_none_and_says_to_nest_tapes():
    # The seed article's second example, run as written: TF gives None here.
    x = tf.Variable(3.0)
    with tf.GradientTape(persistent=True) as tape:
        y = x**3
    dy_dx = tape.gradient(y, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d2 = tape.gradient(dy_dx, x)
    assert float(dy_dx) == pytest.approx(27.0)
    assert d2 is None
    assert tape.notes[0].reason == "gradient_not_recorded"
    assert any("GradientTape() as outer" in str(w.message) for w in caught)


def test_close_does_not_exist_and_explains_the_fix():
    tape = tf.GradientTape(persistent=True)
    with pytest.raises(AttributeError, match="nested|del tape"):
        tape.close()


def test_reentering_an_active_tape_raises():
    tape = tf.GradientTape()
    with tape, pytest.raises(ValueError, match="still recording"), tape:
        pass


def test_no_tape_means_nothing_is_recorded():
    x = tf.Variable(1.0)
    y = x * 2.0
    with tf.GradientTape() as tape:
        pass
    assert tape.entries == [] and tape.gradient(y, x) is None


def test_hessian_helper_gives_blocks_and_matrix():
    from engine.derive.hessian import hessian

    x = tf.Variable(np.array([1.0, 2.0]))
    y = tf.Variable(0.5)
    h = hessian(lambda: tf.sum(x * x * y), [x, y])
    # f = y * sum(x²): d²/dx² = 2y I, d²/dxdy = 2x, d²/dy² = 0
    np.testing.assert_allclose(h.blocks[0][0], 2 * 0.5 * np.eye(2))
    np.testing.assert_allclose(h.blocks[0][1], 2 * x.numpy())
    assert h.blocks[1][1] is None or np.allclose(h.blocks[1][1], 0.0)
    assert h.matrix.shape == (3, 3)
    np.testing.assert_allclose(h.matrix, h.matrix.T)
