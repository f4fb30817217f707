"""The seed article's three examples give its numbers (6; 27 and 18; 4 and 27), and its
prints give its output lines."""

from __future__ import annotations

import pytest

import engine as tf


def example_1() -> tf.Tensor:
    x = tf.Variable(3.0)
    with tf.GradientTape() as tape:
        y = x**2
    return tape.gradient(y, x)


def example_2() -> tuple[tf.Tensor, tf.Tensor]:
    # TF's real semantics: the inner gradient must be computed while the outer tape records.
    x = tf.Variable(3.0)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = x**3
        dy_dx = inner.gradient(y, x)
    return dy_dx, outer.gradient(dy_dx, x)


def example_3() -> list[tf.Tensor]:
    x, y = tf.Variable(2.0), tf.Variable(3.0)
    with tf.GradientTape() as tape:
        z = x**2 + y**3
    return tape.gradient(z, [x, y])


def test_example_1_simple_gradient():
    assert float(example_1()) == 6.0


def test_example_2_second_derivative_with_nested_tapes():
    dy_dx, d2y_dx2 = example_2()
    assert float(dy_dx) == pytest.approx(27.0)
    assert float(d2y_dx2) == pytest.approx(18.0)


def test_example_2_as_written_in_a_persistent_tape_context():
    # Calling gradient inside a persistent tape's context records it (as TF does).
    x = tf.Variable(3.0)
    with tf.GradientTape(persistent=True) as tape:
        y = x**3
        dy_dx = tape.gradient(y, x)
    assert float(tape.gradient(dy_dx, x)) == pytest.approx(18.0)


def test_example_3_two_variables():
    dz_dx, dz_dy = example_3()
    assert float(dz_dx) == pytest.approx(4.0)
    assert float(dz_dy) == pytest.approx(27.0)


def test_the_article_s_prints_give_its_output_lines():
    # Its f-strings format the gradients as TF does, as their numpy values.
    dy_dx = example_1()
    lines = [f"dy/dx: {dy_dx}"]
    dy_dx, d2y_dx2 = example_2()
    lines += [f"dy/dx: {dy_dx}", f"d²y/dx²: {d2y_dx2}"]
    dz_dx, dz_dy = example_3()
    lines += [f"dz/dx: {dz_dx}", f"dz/dy: {dz_dy}"]
    assert lines == ["dy/dx: 6.0", "dy/dx: 27.0", "d²y/dx²: 18.0", "dz/dx: 4.0", "dz/dy: 27.0"]
