"""Linear algebra beyond the table-driven tests: numpy semantics, shape errors, singular input."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine import OPS
from engine.errors import ShapeError
from engine.ops.linalg import well_conditioned
from tests.engine.op_cases import assert_shape_rule_matches_forward
from tests.gradcheck import check_grads

LINALG_OPS = ["matmul", "inv", "det", "solve"]
SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])
REGULAR = np.array([[2.0, 1.0], [1.0, 3.0]])


@pytest.mark.parametrize(
    ("name", "case"), [(n, c) for n in LINALG_OPS for c in OPS[n].cases],
    ids=lambda v: v if isinstance(v, str) else str(v.shapes),
)
def test_infer_shape_agrees_with_the_forward(name, case):
    assert_shape_rule_matches_forward(OPS[name], case)


@pytest.mark.parametrize(
    ("name", "shapes"),
    [
        ("matmul", [(), (3,)]),
        ("matmul", [(2, 3), (2, 3)]),
        ("matmul", [(3,), (4,)]),
        ("matmul", [(2, 2, 3), (3, 3, 1)]),
        ("inv", [(2, 3)]),
        ("inv", [(3,)]),
        ("det", [(2, 3, 4)]),
        ("det", [()]),
        ("solve", [(3, 3), (2,)]),
        ("solve", [(3, 3), ()]),
        ("solve", [(3, 3), (2, 3)]),
        ("solve", [(2, 3, 3), (4, 3, 1)]),
        ("solve", [(3, 2), (3,)]),
    ],
)
def test_bad_shapes_raise_shape_error(name, shapes):
    with pytest.raises(ShapeError):
        OPS[name].infer_shape(*shapes)


@pytest.mark.parametrize(
    ("a", "b"),
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((4, 2, 3), (3,)), ((3,), (4, 3, 2)),
     ((2, 1, 2, 3), (5, 3, 4))],
)
def test_matmul_follows_numpy_and_its_gradient_handles_vectors_and_batches(a, b):
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-1, 1, a), rng.uniform(-1, 1, b)
    np.testing.assert_allclose(tf.matmul(x, y).numpy(), np.matmul(x, y))
    assert (tf.constant(x) @ y).shape == np.matmul(x, y).shape
    check_grads(lambda p, q: tf.matmul(p, q) * tf.matmul(p, q), [x, y], order=2, rng=rng)


def test_solve_with_a_vector_broadcasts_against_batched_matrices_as_numpy():
    rng = np.random.default_rng(6)
    a, b = well_conditioned(rng, ((4, 3, 3), (3,)))
    np.testing.assert_allclose(tf.solve(a, b).numpy(), np.linalg.solve(a, b))
    check_grads(tf.solve, [a, b], order=2, rng=rng)


def test_solve_with_matrix_right_hand_sides_broadcasts_batches():
    rng = np.random.default_rng(7)
    a, b = well_conditioned(rng, ((2, 1, 3, 3), (4, 3, 2)))
    np.testing.assert_allclose(tf.solve(a, b).numpy(), np.linalg.solve(a, b))
    check_grads(tf.solve, [a, b], order=2, rng=rng)


def test_inv_and_det_second_order_on_a_batch():
    rng = np.random.default_rng(8)
    (a,) = well_conditioned(rng, ((2, 3, 3),))
    check_grads(tf.inv, [a], order=2, rng=rng)
    check_grads(tf.det, [a], order=2, rng=rng)


def test_det_gradient_is_det_times_inverse_transpose():
    a = tf.Variable(REGULAR)
    with tf.GradientTape() as tape:
        y = tf.det(a)
    np.testing.assert_allclose(tape.gradient(y, a).numpy(), [[3.0, -1.0], [-1.0, 2.0]])


def test_singular_inv_gives_nan_not_an_exception():
    out = tf.inv(np.stack([REGULAR, SINGULAR])).numpy()
    np.testing.assert_allclose(out[0], np.linalg.inv(REGULAR))
    assert np.isnan(out[1]).all()
    assert OPS["inv"].nonfinite == "singular matrix"


def test_singular_solve_gives_nan_not_an_exception():
    out = tf.solve(np.stack([SINGULAR, REGULAR]), np.array([1.0, 1.0])).numpy()
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[1], np.linalg.solve(REGULAR, [1.0, 1.0]))
    assert OPS["solve"].nonfinite == "singular matrix"


@pytest.mark.parametrize("rhs_shape", [(3,), (40, 3, 2), (3, 1)])
def test_a_stack_with_singular_matrices_answers_as_matrix_by_matrix(rhs_shape):
    """One vectorised call with the singular matrices swapped out, the same numbers as
    numpy matrix by matrix, NaN for the singular ones (all zeros, two equal rows, one
    zero column)."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(40, 3, 3))
    a[3], a[17, :, 1], a[29, 2] = 0.0, 0.0, a[29, 0]
    b = rng.normal(size=rhs_shape)
    inv, solved = tf.inv(a).numpy(), tf.solve(a, b).numpy()
    for k in range(40):
        try:
            want = np.linalg.inv(a[k])
        except np.linalg.LinAlgError:
            want = np.full((3, 3), np.nan)
        np.testing.assert_array_equal(inv[k], want)
        bk = b[k] if b.ndim == 3 else b
        try:
            x = np.linalg.solve(a[k], bk)
        except np.linalg.LinAlgError:
            x = np.full(bk.shape, np.nan)
        np.testing.assert_array_equal(solved[k], x)
    assert np.isnan(inv[3]).all() and np.isnan(inv[17]).all()


def test_gradient_through_a_singular_matrix_is_nan_not_an_exception():
    a = tf.Variable(SINGULAR)
    with tf.GradientTape(persistent=True) as tape:
        y = tf.sum(tf.inv(a))
        d = tf.det(a)
    assert float(d) == pytest.approx(0.0)
    assert np.isnan(tape.gradient(y, a).numpy()).all()
    assert np.isnan(tape.gradient(d, a).numpy()).all()  # TF's det gradient needs A⁻¹
