"""Reductions and scans beyond the table-driven tests: zeros, ties, stability, shape rules."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine import OPS
from engine.errors import ShapeError
from tests.engine.op_cases import assert_shape_rule_matches_forward
from tests.gradcheck import call_with_attrs, check_grads

REDUCTION_OPS = ["sum", "mean", "prod", "max", "min", "logsumexp", "softmax", "cumprod",
                 "linrec"]


@pytest.mark.parametrize(
    ("name", "case"), [(n, c) for n in REDUCTION_OPS for c in OPS[n].cases],
    ids=lambda v: v if isinstance(v, str) else f"{v.shapes}-{dict(v.attrs)}",
)
def test_infer_shape_agrees_with_the_forward(name, case):
    assert_shape_rule_matches_forward(OPS[name], case)


@pytest.mark.parametrize(
    ("name", "shapes", "attrs"),
    [
        ("sum", [(2, 3)], {"axis": 2}),
        ("mean", [(2, 3)], {"axis": -3}),
        ("prod", [(2, 3)], {"axis": [0, 0]}),
        ("max", [()], {"axis": 1}),
        ("logsumexp", [(2, 3)], {"axis": [0, 5]}),
        ("softmax", [()], {}),
        ("softmax", [(2, 3)], {"axis": 2}),
        ("cumprod", [()], {}),
        ("cumprod", [(2, 3)], {"axis": 2}),
        ("linrec", [(2, 3), (3, 3)], {}),
    ],
)
def test_bad_axes_raise_shape_error(name, shapes, attrs):
    op = OPS[name]
    with pytest.raises(ShapeError):
        op.infer_shape(*shapes, **op.normalize_attrs(attrs))


# ---------------------------------------------------------------- prod at zeros


@pytest.mark.parametrize(
    ("x", "axis"),
    [
        ([0.0, 2.0, 3.0, 0.5], None),
        ([[1.5, 0.0, -2.0], [0.0, 0.0, 1.0]], 1),
        ([[1.5, 0.0, -2.0], [0.7, 0.0, 1.0]], 0),
        ([[[0.0, 1.2], [-0.8, 1.1]], [[0.9, 0.0], [0.0, 1.3]]], [0, 2]),
    ],
)
def test_prod_gradient_with_zeros_matches_finite_differences_to_second_order(x, axis):
    check_grads(lambda t: tf.prod(t, axis=axis), [np.array(x)], order=2)


def test_prod_gradient_at_a_single_zero_is_the_product_of_the_others():
    x = tf.Variable([0.0, 2.0, 3.0, 0.5])
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = tf.prod(x)
        g = inner.gradient(y, x)
    np.testing.assert_allclose(g.numpy(), [3.0, 0.0, 0.0, 0.0])
    hessian = outer.jacobian(g, x).numpy()
    expected = np.zeros((4, 4))
    expected[0, 1:] = expected[1:, 0] = [1.5, 1.0, 6.0]  # prod of all but x0 and xj
    np.testing.assert_allclose(hessian, expected)


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_gradient_with_zeros_matches_finite_differences_to_second_order(
    exclusive, reverse
):
    x = np.array([[0.5, 0.0, -1.2, 0.0, 0.8], [1.1, -0.9, 0.0, 1.3, 0.7]])
    check_grads(lambda t: tf.cumprod(t, axis=1, exclusive=exclusive, reverse=reverse), [x],
                order=2)


def test_linrec_third_order_is_exact():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-1, 1, (2, 4)), rng.uniform(-1, 1, (2, 4))
    check_grads(lambda p, q: tf.linrec(p, q, axis=1, reverse=True), [a, b], order=3, rng=rng)


# ------------------------------------------------------------------- max and min


def test_max_tie_splits_the_gradient_evenly():
    x = tf.Variable([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    with tf.GradientTape() as tape:
        y = tf.max(x, axis=1)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [[0, 0.5, 0.5], [1 / 3] * 3])


def test_min_tie_over_every_axis_with_keepdims():
    x = tf.Variable([[1.0, 3.0], [1.0, 2.0]])
    with tf.GradientTape() as tape:
        y = tf.min(x, keepdims=True)
    assert y.shape == (1, 1)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [[0.5, 0], [0.5, 0]])


def test_max_kink_mask_marks_only_ties_at_the_maximum():
    kink = OPS["max"].kink
    x = np.array([[1.0, 1.0, 3.0], [2.0, 5.0, 5.0]])
    attrs = OPS["max"].normalize_attrs({"axis": 1})
    mask = call_with_attrs(kink, [x], attrs)
    np.testing.assert_array_equal(mask, [[False, False, False], [False, True, True]])
    assert not np.any(kink(np.array([1.0, 2.0, 3.0])))


def test_max_over_an_empty_axis_is_minus_infinity_not_an_error():
    assert tf.max(np.zeros((0, 3)), axis=0).numpy().tolist() == [-np.inf] * 3
    assert tf.min(np.zeros((2, 0)), axis=1).numpy().tolist() == [np.inf] * 2


# ----------------------------------------------------------- stability, composition


def test_logsumexp_and_softmax_do_not_overflow():
    x = tf.Variable([1000.0, 1000.0])
    with tf.GradientTape() as tape:
        y = tf.logsumexp(x)
    assert float(y) == pytest.approx(1000.0 + np.log(2.0))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [0.5, 0.5])
    np.testing.assert_allclose(tf.softmax(np.array([1000.0, 0.0])).numpy(), [1.0, 0.0])
    assert float(tf.logsumexp(np.array([-np.inf, -np.inf]))) == -np.inf


def test_softmax_and_logsumexp_second_order():
    rng = np.random.default_rng(4)
    x = rng.uniform(-2, 2, (3, 4))
    check_grads(lambda t: tf.softmax(t, axis=0), [x], order=2, rng=rng)
    check_grads(lambda t: tf.logsumexp(t, axis=[0, 1], keepdims=True), [x], order=2, rng=rng)


def test_mean_is_sum_over_count():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(tf.mean(x, axis=[0, 2]).numpy(), x.mean(axis=(0, 2)))
    check_grads(lambda t: tf.mean(t, axis=1, keepdims=True) * t, [x / 10], order=2)
