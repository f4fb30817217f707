"""TensorFlow's ops and spellings beyond the table-driven tests: what TF documents for
gather, where, norm, xlogy, div_no_nan, tile and split, comparisons with no gradient,
indexing, and lists of tensors (which must become ops, never constants).

The table-driven tests (test_ops_numeric, test_ops_sympy) already hold every new op to
finite differences and SymPy; here each gradient is held to an independent numpy
reference or to TensorFlow's documented value at the points those tests avoid.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine.errors import ShapeError

RNG = np.random.default_rng(7)


def _grad(fn, *values, weights=None):
    """The tape's gradient of sum(weights * fn(*xs)) with respect to each x."""
    xs = [tf.Variable(v) for v in values]
    with tf.GradientTape() as tape:
        y = fn(*xs)
    w = None if weights is None else tf.Tensor(weights)
    return y, tape.gradient(y, xs, output_gradients=w)


# ------------------------------------------------------------ lists of tensors


def test_concat_of_a_list_records_the_op_with_gradients() -> None:
    x = tf.Variable([1.0, 2.0])
    with tf.GradientTape() as tape:
        y = tf.concat([x, x], axis=0)
    assert y.shape == (4,)
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0, 1.0, 2.0])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [2.0, 2.0])


def test_tf_signature_of_concat_and_stack_takes_axis_by_position_or_values_by_name() -> None:
    x = tf.Variable([[1.0, 2.0]])
    with tf.GradientTape(persistent=True) as tape:
        rows = tf.concat([x, x], 0)
        cols = tf.concat(values=(x, x), axis=1, name="joined")
        stacked = tf.stack([x, x], 1)
    assert (rows.shape, cols.shape, stacked.shape) == ((2, 2), (1, 4), (1, 2, 2))
    for y in (rows, cols, stacked):
        np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[2.0, 2.0]])
    with pytest.raises(TypeError, match="at most 1 more"):
        tf.concat([x, x], 0, 1)
    with pytest.raises(TypeError, match="multiple values"):
        tf.concat([x, x], 0, axis=1)


def test_stack_of_a_list_records_the_op_with_gradients() -> None:
    a, b = tf.Variable(1.0), tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = tf.stack([a, b])
        z = tf.sum(y * y)
    assert y.shape == (2,)
    assert [float(g) for g in tape.gradient(z, [a, b])] == [2.0, 4.0]


def test_add_n_of_a_list_sums_with_a_gradient_to_each() -> None:
    xs = [tf.Variable(RNG.standard_normal(3)) for _ in range(3)]
    with tf.GradientTape() as tape:
        y = tf.add_n(xs)
    np.testing.assert_allclose(y.numpy(), sum(x.numpy() for x in xs))
    for g in tape.gradient(y, xs):
        np.testing.assert_array_equal(g.numpy(), np.ones(3))


def test_a_list_holding_tensors_as_an_op_input_is_packed_not_a_constant() -> None:
    a, b = tf.Variable(3.0), tf.Variable(4.0)
    with tf.GradientTape() as tape:
        y = tf.sum([[a, 1.0], [b, a]])  # TF packs nested lists: a recorded stack
    assert float(y) == 11.0
    assert [float(g) for g in tape.gradient(y, [a, b])] == [2.0, 1.0]


def test_a_list_of_numbers_is_still_a_constant() -> None:
    np.testing.assert_array_equal(tf.concat([[1.0, 2.0], [3.0]]).numpy(), [1.0, 2.0, 3.0])
    assert float(tf.sum([1.0, 2.0])) == 3.0


# ------------------------------------------------------------ gather and scatter_add


def test_gather_gradient_scatter_adds_repeated_indices() -> None:
    params = RNG.standard_normal((3, 4))
    indices = [[3, 0], [3, 3]]
    w = RNG.standard_normal((3, 2, 2))
    y, (g,) = _grad(lambda x: tf.gather(x, indices=indices, axis=1), params, weights=w)
    np.testing.assert_array_equal(y.numpy(), np.take(params, indices, axis=1))
    expected = np.zeros((3, 4))
    for i in range(2):
        for j in range(2):
            expected[:, indices[i][j]] += w[:, i, j]  # every copy's cotangent comes home
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-15)


def test_gather_matches_tensorflows_documented_example() -> None:
    # tf.gather's docstring: params [[0,1,2,3],[4,5,6,7],[8,9,10,11]], indices [2, 0]
    params = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(
        tf.gather(params, indices=[2, 0]).numpy(), [[8, 9, 10, 11], [0, 1, 2, 3]]
    )
    np.testing.assert_array_equal(
        tf.gather(params, indices=[2, 0], axis=1).numpy(), [[2, 0], [6, 4], [10, 8]]
    )


@pytest.mark.parametrize("indices", [[0, 3], [-1], [[1], [7]]])
def test_gather_refuses_an_index_out_of_range_naming_it(indices: list) -> None:
    with pytest.raises(ShapeError, match=r"indices\[.*\] = -?\d+ is not in \[0, 3\)"):
        tf.gather(np.zeros(3), indices=indices)


def test_scatter_add_is_the_transpose_of_gather() -> None:
    x, u = RNG.standard_normal(5), RNG.standard_normal(4)
    indices = [1, 4, 1, 0]
    gx = tf.gather(x, indices=indices).numpy()
    su = tf.scatter_add(u, shape=[5], indices=indices).numpy()
    assert np.dot(gx, u) == pytest.approx(np.dot(x, su))  # <Gx, u> = <x, G^T u>


# ------------------------------------------------------------ where


def test_where_masks_the_gradient_and_gives_none_to_the_condition() -> None:
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    cond = tf.Variable([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    xv, yv = tf.Variable(x), tf.Variable(y)
    with tf.GradientTape() as tape:
        out = tf.where(cond, xv, yv)
    gc, gx, gy = tape.gradient(out, [cond, xv, yv])
    assert gc is None
    mask = cond.numpy() > 0
    np.testing.assert_array_equal(out.numpy(), np.where(mask, x, y))
    np.testing.assert_array_equal(gx.numpy(), mask * 1.0)
    np.testing.assert_array_equal(gy.numpy(), np.sum(~mask, axis=0))  # y broadcast over rows


def test_where_selects_the_cotangent_so_infinity_stays_on_its_branch() -> None:
    x, y = tf.Variable([1.0, 2.0]), tf.Variable([3.0, 4.0])
    with tf.GradientTape() as tape:
        out = tf.where(tf.constant([1.0, 0.0]), x, y)
    gx, gy = tape.gradient(out, [x, y], output_gradients=tf.Tensor([np.inf, np.nan]))
    np.testing.assert_array_equal(gx.numpy(), [np.inf, 0.0])
    np.testing.assert_array_equal(gy.numpy(), [0.0, np.nan])


def test_where_of_an_unsafe_branch_gives_nan_as_tensorflow_does() -> None:
    # TF's documented pitfall: where(x > 0, sqrt(x), 0) at x = 0 has gradient NaN
    # (the masked branch's 0 cotangent times sqrt's infinite derivative)
    x = tf.Variable(0.0)
    with tf.GradientTape() as tape:
        y = tf.where(x > 0.0, tf.sqrt(x), 0.0)
    assert float(y) == 0.0
    assert np.isnan(float(tape.gradient(y, x)))


# ------------------------------------------------------------ comparisons and logic


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("less", [1, 0, 0]),
        ("greater", [0, 0, 1]),
        ("less_equal", [1, 1, 0]),
        ("greater_equal", [0, 1, 1]),
        ("equal", [0, 1, 0]),
        ("not_equal", [1, 0, 1]),
    ],
)
def test_comparisons_give_truth_values_and_no_gradient(name: str, expected: list) -> None:
    a, b = tf.Variable([1.0, 2.0, 3.0]), tf.Variable(2.0)
    with tf.GradientTape(persistent=True) as tape:
        y = getattr(tf, name)(a, b)
    np.testing.assert_array_equal(y.numpy(), expected)
    assert tape.gradient(y, [a, b]) == [None, None]
    zeros = tape.gradient(y, [a, b], unconnected_gradients="zero")
    np.testing.assert_array_equal(zeros[0].numpy(), [0.0, 0.0, 0.0])
    assert float(zeros[1]) == 0.0


def test_logical_ops_read_positive_as_true() -> None:
    a, b = tf.constant([1.0, 1.0, 0.0, 0.0]), tf.constant([1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(tf.logical_and(a, b).numpy(), [1, 0, 0, 0])
    np.testing.assert_array_equal(tf.logical_or(a, b).numpy(), [1, 1, 1, 0])
    np.testing.assert_array_equal(tf.logical_not(a).numpy(), [0, 0, 1, 1])


def test_python_comparisons_max_and_if_work_as_in_tf_eager() -> None:
    a, b = tf.constant(1.0), tf.constant(2.0)
    assert max(a, b) is b and min(a, b) is a
    assert bool(a < b) and not bool(a > b) and bool(a <= 1.0) and bool(2.0 >= a)
    loss, k = tf.Variable(3.0), 2.0
    taken = False
    if loss > k:
        taken = True
    assert taken


def test_truth_of_many_elements_is_ambiguous() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tf.constant([1.0, 0.0]) > 0.5)


def test_equality_stays_identity_so_tensors_key_sets_and_dicts() -> None:
    a, b = tf.constant(1.0), tf.constant(1.0)
    assert a == a and a != b  # identity, like TF Variables' hashing by id
    assert len({a, b}) == 2 and {a: 1, b: 2}[b] == 2
    np.testing.assert_array_equal(tf.equal(a, b).numpy(), 1.0)  # elementwise: the op


# ------------------------------------------------------------ indexing

KEYS = [
    0,
    -1,
    slice(1, 3),
    slice(None, None, -2),
    (Ellipsis, None, 0),
    None,
    (1, slice(None, None, 2)),
    (slice(None), -2),
    (Ellipsis,),
]


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_indexing_records_a_strided_slice_with_its_gradient(key) -> None:
    value = RNG.standard_normal((3, 4))
    x = tf.Variable(value)
    with tf.GradientTape() as tape:
        y = x[key]
    expected = value[key]
    np.testing.assert_array_equal(y.numpy(), expected)
    w = RNG.standard_normal(np.shape(expected))
    g = tape.gradient(y, x, output_gradients=tf.Tensor(w)).numpy()
    reference = np.zeros_like(value)
    reference[key] = w  # basic indexing never repeats an element
    np.testing.assert_array_equal(g, reference)


def test_a_scalar_tensor_indexes_as_its_integer() -> None:
    x = tf.constant([1.0, 2.0, 3.0])
    assert float(x[tf.constant(2.0)]) == 3.0
    with pytest.raises(TypeError, match="index a tensor"):
        x[tf.constant(0.5)]


def test_indexing_out_of_range_is_an_index_error_so_iteration_stops() -> None:
    x = tf.constant([1.0, 2.0, 3.0])
    with pytest.raises(IndexError):
        x[3]
    assert [float(v) for v in x] == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError):
        iter(tf.constant(1.0))
    with pytest.raises(TypeError, match="index a tensor"):
        x[[0, 1]]  # advanced indexing: TF has gather for it


def test_second_derivative_through_indexing() -> None:
    x = tf.Variable([1.0, 2.0, 3.0])
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = x[1] ** 3
        g = inner.gradient(y, x)
    h = outer.gradient(g, x)
    np.testing.assert_array_equal(g.numpy(), [0.0, 12.0, 0.0])
    np.testing.assert_array_equal(h.numpy(), [0.0, 12.0, 0.0])


# ------------------------------------------------------------ tile and split


def test_tile_gradient_sums_the_copies() -> None:
    value = RNG.standard_normal((2, 3))
    w = RNG.standard_normal((4, 9))
    y, (g,) = _grad(lambda x: tf.tile(x, multiples=[2, 3]), value, weights=w)
    np.testing.assert_array_equal(y.numpy(), np.tile(value, (2, 3)))
    np.testing.assert_allclose(g.numpy(), w.reshape(2, 2, 3, 3).sum(axis=(0, 2)))


def test_split_returns_recorded_pieces() -> None:
    x = tf.Variable(np.arange(6.0))
    with tf.GradientTape() as tape:
        a, b, c = tf.split(x, [1, -1, 2])
        y = tf.sum(a) + 2.0 * tf.sum(b) + 3.0 * tf.sum(c)
    assert [p.shape for p in (a, b, c)] == [(1,), (3,), (2,)]
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [1, 2, 2, 2, 3, 3])
    assert [p.shape for p in tf.split(np.zeros((2, 6)), 3, axis=1)] == [(2, 2)] * 3
    with pytest.raises(ValueError):
        tf.split(x, 4)


# ------------------------------------------------------------ norm, xlogy, div_no_nan


@pytest.mark.parametrize(
    ("ord_", "numpy_ord"), [("euclidean", 2), (1, 1), (2, 2), (np.inf, np.inf), (3, 3)]
)
def test_norm_matches_numpy_and_its_gradient_the_closed_form(ord_, numpy_ord) -> None:
    value = RNG.standard_normal((3, 4))
    y, (g,) = _grad(lambda x: tf.norm(x, ord=ord_, axis=1), value)
    norms = np.linalg.norm(value, ord=numpy_ord, axis=1)
    np.testing.assert_allclose(y.numpy(), norms)
    p = float(numpy_ord)
    if p == np.inf:
        expected = np.sign(value) * (np.abs(value) == norms[:, None])
    else:
        expected = np.sign(value) * np.abs(value) ** (p - 1) / norms[:, None] ** (p - 1)
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-12)


def test_norm_at_zero_follows_tensorflow() -> None:
    _, (g,) = _grad(lambda x: tf.norm(x), np.zeros(3))
    assert np.isnan(g.numpy()).all()  # sqrt(sum(x²)) at 0: 0.5/0 times 0, as TF's
    _, (g1,) = _grad(lambda x: tf.norm(x, ord=1), np.array([0.0, -2.0]))
    np.testing.assert_array_equal(g1.numpy(), [0.0, -1.0])
    _, (gi,) = _grad(lambda x: tf.norm(x, ord="inf"), np.array([2.0, -2.0, 1.0]))
    np.testing.assert_array_equal(gi.numpy(), [0.5, -0.5, 0.0])  # a tie splits, as reduce_max


def test_matrix_norms_over_two_axes_match_numpy() -> None:
    value = RNG.standard_normal((2, 3, 4))
    for ord_, numpy_ord in (("fro", "fro"), ("euclidean", "fro"), (1, 1), (np.inf, np.inf)):
        got = tf.norm(value, ord=ord_, axis=[1, 2]).numpy()
        want = [np.linalg.norm(m, ord=numpy_ord) for m in value]
        np.testing.assert_allclose(got, want, rtol=1e-14)
    # [columns, rows]: the transposed matrices' norms
    np.testing.assert_allclose(
        tf.norm(value, ord=1, axis=[2, 1]).numpy(),
        [np.linalg.norm(m.T, ord=1) for m in value],
        rtol=1e-14,
    )
    with pytest.raises(Exception, match="matrix norm"):
        tf.norm(value, ord=2, axis=[1, 2])  # the spectral norm: not supported


def test_matrix_norm_gradient_splits_between_tied_columns_as_reduce_max() -> None:
    m = np.array([[1.0, -2.0, 0.5], [-2.0, 1.0, 0.5]])  # column sums 3, 3, 1: a tie
    _, (g,) = _grad(lambda x: tf.norm(x, ord=1, axis=[0, 1]), m)
    np.testing.assert_array_equal(g.numpy(), np.sign(m) * [[0.5, 0.5, 0.0]])
    _, (g,) = _grad(lambda x: tf.norm(x, ord="inf", axis=[0, 1]), m)  # row sums 3.5, 3.5
    np.testing.assert_array_equal(g.numpy(), np.sign(m) * 0.5)


def test_xlogy_and_div_no_nan_at_zero_follow_tensorflow() -> None:
    y, (gx, gy) = _grad(tf.xlogy, np.array([0.0, 0.0, 2.0]), np.array([0.0, 3.0, 3.0]))
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0, 2.0 * np.log(3.0)])
    np.testing.assert_array_equal(gx.numpy(), [0.0, 0.0, np.log(3.0)])
    np.testing.assert_allclose(gy.numpy(), [0.0, 0.0, 2.0 / 3.0])
    y, (gx, gy) = _grad(tf.div_no_nan, np.array([1.0, np.inf, 3.0]), np.array([0.0, 0.0, 2.0]))
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0, 1.5])
    np.testing.assert_array_equal(gx.numpy(), [0.0, 0.0, 0.5])
    np.testing.assert_array_equal(gy.numpy(), [0.0, 0.0, -0.75])
