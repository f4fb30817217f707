"""The names TensorFlow users type, on the engine: each gives numpy's value and is
recorded (a gradient flows through it), with TF's signatures and errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from tests.gradcheck import check_grads

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


@pytest.mark.parametrize(
    ("name", "numpy_fn"),
    [
        ("reduce_sum", np.sum),
        ("reduce_mean", np.mean),
        ("reduce_max", np.max),
        ("reduce_min", np.min),
        ("reduce_prod", np.prod),
        ("reduce_logsumexp", lambda a, axis=None: np.log(np.sum(np.exp(a), axis=axis))),
    ],
)
@pytest.mark.parametrize("axis", [None, 0, 1, [0, 1]])
def test_reductions_match_numpy_and_are_recorded(name, numpy_fn, axis):
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = getattr(tf, name)(x, axis=axis)
        assert getattr(tf.math, name) is getattr(tf, name)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    np.testing.assert_allclose(y.numpy(), numpy_fn(X, axis=np_axis))
    assert tape.gradient(y, x).shape == X.shape


def test_reduce_keepdims():
    assert tf.reduce_sum(tf.constant(X), axis=1, keepdims=True).shape == (2, 1)


def test_arithmetic_names():
    a, b = tf.constant(6.0), tf.constant(4.0)
    values = [tf.multiply(a, b), tf.subtract(a, b), tf.divide(a, b), tf.math.negative(a)]
    assert [float(v) for v in values] == [24.0, 2.0, 1.5, -6.0]


def test_constant_with_shape_fills_or_reshapes_and_refuses_a_mismatch():
    np.testing.assert_array_equal(tf.constant(2.0, shape=[2, 2]).numpy(), np.full((2, 2), 2.0))
    np.testing.assert_array_equal(tf.constant([1, 2, 3, 4], shape=(2, 2)).numpy(), [[1, 2], [3, 4]])
    with pytest.raises(TypeError, match="3 elements"):
        tf.constant([1.0, 2.0, 3.0], shape=[2, 2])


def test_constant_dtype_float_is_taken_integer_refused():
    assert tf.constant(1.0, dtype=tf.float32).dtype == np.float64
    with pytest.raises(TypeError, match="float64"):
        tf.constant(1, dtype=np.int32)


def test_ones_zeros_and_likes():
    x = tf.constant(X)
    np.testing.assert_array_equal(tf.ones_like(x).numpy(), np.ones_like(X))
    np.testing.assert_array_equal(tf.zeros_like(x).numpy(), np.zeros_like(X))
    assert tf.ones([2, 3]).shape == (2, 3) and tf.zeros([]).shape == ()


def test_gather_split_tile_where_norm_follow_tf_signatures():
    x = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        g = tf.gather(x, [1, 1, 0])
        parts = tf.split(x, [1, -1], axis=1)
        t = tf.tile(x, [2, 1])
        w = tf.where(x > 0, x, x * x)
        n = tf.norm(x)
    np.testing.assert_array_equal(g.numpy(), X[[1, 1, 0]])
    assert [p.shape for p in parts] == [(2, 1), (2, 2)]
    np.testing.assert_array_equal(t.numpy(), np.tile(X, (2, 1)))
    np.testing.assert_array_equal(w.numpy(), np.where(X > 0, X, X * X))
    assert float(n) == pytest.approx(np.linalg.norm(X))
    np.testing.assert_array_equal(tape.gradient(g, x).numpy(), [[1, 1, 1], [2, 2, 2]])
    np.testing.assert_array_equal(tape.gradient(parts[1], x).numpy(), [[0, 1, 1], [0, 1, 1]])


def test_split_into_equal_parts_and_its_errors():
    x = tf.constant(np.arange(6.0))
    assert [p.numpy().tolist() for p in tf.split(x, 3)] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="cannot be split"):
        tf.split(x, 4)
    with pytest.raises(ValueError, match="do not add up"):
        tf.split(x, [2, 2])


def test_math_linalg_nn_namespaces():
    a = tf.constant([[2.0, 1.0], [1.0, 3.0]])
    assert float(tf.linalg.det(a)) == pytest.approx(5.0)
    np.testing.assert_allclose(tf.linalg.inv(a).numpy(), np.linalg.inv(a.numpy()))
    np.testing.assert_allclose(
        tf.linalg.matmul(a, a, transpose_b=True).numpy(), a.numpy() @ a.numpy().T
    )
    np.testing.assert_array_equal(tf.linalg.diag(tf.constant([1.0, 2.0])).numpy(), np.diag([1, 2]))
    assert float(tf.math.xlogy(0.0, 0.0)) == 0.0
    assert float(tf.math.divide_no_nan(1.0, 0.0)) == 0.0
    logits = tf.constant([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        tf.nn.log_softmax(logits).numpy(), np.log(tf.nn.softmax(logits).numpy())
    )
    assert float(tf.nn.relu(tf.constant(-1.0))) == 0.0


def test_softmax_cross_entropy_gradient_is_softmax_minus_labels():
    logits = tf.constant([[0.2, -0.4, 1.0]])
    labels = tf.constant([[0.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum()
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), p - labels.numpy())


@pytest.mark.parametrize(
    ("call", "numpy_fn"),
    [
        (lambda x: tf.reshape(x, [3, 2]), lambda a: a.reshape(3, 2)),
        (lambda x: tf.reshape(x, tf.constant([-1])), lambda a: a.reshape(-1)),
        (lambda x: tf.transpose(x, [1, 0]), lambda a: a.T),
        (lambda x: tf.transpose(x), lambda a: a.T),
        (lambda x: tf.expand_dims(x, 1), lambda a: a[:, None, :]),
        (lambda x: tf.squeeze(tf.expand_dims(x, 0), 0), lambda a: a),
        (lambda x: tf.squeeze(tf.reshape(x, (1, 2, 1, 3))), lambda a: a),
        (lambda x: tf.broadcast_to(x, (4, 2, 3)), lambda a: np.broadcast_to(a, (4, 2, 3))),
        (lambda x: tf.slice(x, [0, 1], [2, -1]), lambda a: a[0:2, 1:]),
        (lambda x: tf.slice(x, [1, 0], [1, 2]), lambda a: a[1:2, 0:2]),
        (lambda x: tf.slice(x, [0, 0], [0, 3]), lambda a: a[0:0, 0:3]),
        (lambda x: tf.matmul(x, x, transpose_b=True), None),
    ],
)
def test_shape_functions_take_tf_s_positional_arguments_and_are_recorded(call, numpy_fn):
    """Each against numpy, its gradient against the transposed Jacobian built from numpy
    on the basis vectors (matmul, not linear: against a @ a.T's own rule)."""
    x = tf.constant(X)
    weights = np.random.default_rng(7).normal(size=call(x).shape)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = call(x)
        loss = tf.reduce_sum(y * weights)
    grad = tape.gradient(loss, x).numpy()
    if numpy_fn is None:
        np.testing.assert_allclose(y.numpy(), X @ X.T)
        np.testing.assert_allclose(grad, (weights + weights.T) @ X)
        return
    np.testing.assert_array_equal(y.numpy(), numpy_fn(X))
    basis = np.eye(X.size).reshape(X.size, *X.shape)
    jacobian = np.stack([np.ravel(numpy_fn(e)) for e in basis], axis=1)
    np.testing.assert_allclose(grad, (jacobian.T @ weights.ravel()).reshape(X.shape))


@pytest.mark.parametrize(
    ("begin", "size"), [([0], [1]), ([0, 0], [1]), ([-1, 0], [1, 1]), ([1, 0], [2, 1]),
                        ([0, 2], [1, 2]), ([0, 0], [1, -2]), ([3, 0], [-1, 1])],
)
def test_slice_refuses_a_window_outside_the_tensor(begin, size):
    with pytest.raises(ValueError, match="slice"):
        tf.slice(tf.constant(X), begin, size)


def _np_scan(a, scan, axis, exclusive, reverse, empty):
    """numpy's reference for TF's cumsum/cumprod flags, written the long way round."""
    a = np.flip(a, axis) if reverse else a
    out = scan(a, axis=axis)
    if exclusive:
        out = np.concatenate([np.full_like(np.take(a, [0], axis), empty),
                              np.delete(out, -1, axis)], axis=axis)
    return np.flip(out, axis) if reverse else out


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_scans_take_tf_s_arguments_match_numpy_and_their_gradients(name, axis, exclusive,
                                                                    reverse):
    scan, empty = {"cumsum": (np.cumsum, 0.0), "cumprod": (np.cumprod, 1.0)}[name]
    fn = getattr(tf.math, name)
    if name == "cumsum":
        assert tf.cumsum is tf.math.cumsum
    np.testing.assert_allclose(fn(tf.constant(X), axis, exclusive, reverse).numpy(),
                               _np_scan(X, scan, axis, exclusive, reverse, empty))
    check_grads(lambda t: fn(t, axis, exclusive=exclusive, reverse=reverse), [X], order=2,
                rng=np.random.default_rng(3))


def test_pad_unstack_fill_size_rank_match_numpy_and_are_recorded():
    x = tf.constant(X)
    np.testing.assert_array_equal(tf.pad(x, [[1, 0], [2, 1]]).numpy(),
                                  np.pad(X, [[1, 0], [2, 1]]))
    np.testing.assert_array_equal(tf.pad(x, [[0, 1], [1, 1]], constant_values=-3.0).numpy(),
                                  np.pad(X, [[0, 1], [1, 1]], constant_values=-3.0))
    assert [u.numpy().tolist() for u in tf.unstack(x, axis=1)] == X.T.tolist()
    assert [u.shape for u in tf.unstack(x)] == [(3,), (3,)]
    np.testing.assert_array_equal(tf.fill([2, 3], 1.5).numpy(), np.full((2, 3), 1.5))
    assert float(tf.size(x)) == 6.0 and float(tf.rank(x)) == 2.0
    check_grads(lambda t: tf.pad(t, [[1, 2], [0, 1]], constant_values=2.0), [X])
    check_grads(lambda t: tf.unstack(t, axis=1)[2] * tf.unstack(t)[0][1], [X])
    check_grads(lambda c: tf.fill([2, 2], c), [np.float64(0.3)])
    with pytest.raises(ValueError, match="paddings"):
        tf.pad(x, [[1, 0]])
    with pytest.raises(ValueError, match="paddings"):
        tf.pad(x, [[1, 0], [-1, 0]])
    with pytest.raises(NotImplementedError, match="CONSTANT"):
        tf.pad(x, [[1, 0], [0, 0]], mode="REFLECT")
    with pytest.raises(ValueError, match="num 3"):
        tf.unstack(x, num=3)
    assert tf.unstack(tf.constant(np.zeros((0, 3)))) == []


def test_pad_with_an_infinite_border_keeps_the_inside_and_gives_no_gradient_to_it():
    # -inf pads for max-pooling; 0 * inf must not reach the inside; TF's PadGrad gives
    # constant_values None
    x, c = tf.Variable(X), tf.Variable(-np.inf)
    with tf.GradientTape(persistent=True) as tape:
        y = tf.pad(x, [[1, 0], [0, 1]], constant_values=c)
        s = tf.reduce_max(y, axis=0)
    np.testing.assert_array_equal(y.numpy(), np.pad(X, [[1, 0], [0, 1]],
                                                    constant_values=-np.inf))
    np.testing.assert_array_equal(tape.gradient(s, x).numpy(), X == X.max(axis=0))
    assert tape.gradient(s, c) is None
    with pytest.raises(ValueError, match="paddings"):
        tf.pad(x, [[1.5, 0], [0, 0]])
    np.testing.assert_array_equal(tf.pad(x, tf.constant([[0, 1], [0, 0]])).numpy(),
                                  np.pad(X, [[0, 1], [0, 0]]))


@pytest.mark.parametrize("axis", [2, -3])
def test_an_axis_past_the_rank_is_tf_s_error_not_another_axis(axis):
    with pytest.raises(ValueError, match=rf"axis = {axis} not in \[-2, 2\)"):
        tf.unstack(tf.constant(X), axis=axis)
    with pytest.raises(ValueError, match=rf"axis = {axis} not in \[-2, 2\)"):
        tf.split(tf.constant(X), 1, axis=axis)


def test_constructors_and_casts_follow_tf():
    v = tf.Variable(X)
    assert tf.convert_to_tensor(v) is v
    np.testing.assert_array_equal(tf.convert_to_tensor([[1, 2]]).numpy(), [[1.0, 2.0]])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(tf.cast(v, tf.float32) ** 2)
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), 2 * X)  # through the cast
    with pytest.raises(TypeError, match="float64"):
        tf.cast(v, np.int32)
    np.testing.assert_array_equal(tf.range(5).numpy(), np.arange(5.0))
    np.testing.assert_array_equal(tf.range(1, 2, 0.25).numpy(), np.arange(1, 2, 0.25))
    np.testing.assert_array_equal(tf.linspace(0.0, 1.0, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(tf.eye(2, 3).numpy(), np.eye(2, 3))
    assert tf.eye(2, batch_shape=[4]).shape == (4, 2, 2)
    np.testing.assert_array_equal(tf.one_hot([0, 2, 5, -1], 3).numpy(),
                                  [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(tf.one_hot([[0, 1]], 3, axis=0).numpy(),
                                  np.moveaxis(np.eye(3)[[[0, 1]]], -1, 0))


def test_clip_by_value_clips_and_passes_the_gradient_at_its_bounds_as_tf():
    x = tf.Variable([-1.0, 0.0, 0.5, 1.0, 2.0])
    with tf.GradientTape() as tape:
        y = tf.clip_by_value(x, 0.0, 1.0)
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0, 0.5, 1.0, 1.0])
    # TF's ClipByValueGrad: x's gradient where min <= x <= max, the bounds included
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [0.0, 1.0, 1.0, 1.0, 0.0])
    assert float(tf.clip_by_value(0.5, 1.0, 0.0)) == 1.0  # TF's order: min over max wins


@pytest.mark.parametrize("axis", [None, 0, 1, [0, 1]])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduce_variance_and_std_match_numpy(axis, keepdims):
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    np.testing.assert_allclose(tf.math.reduce_variance(X, axis, keepdims).numpy(),
                               np.var(X, axis=np_axis, keepdims=keepdims))
    np.testing.assert_allclose(tf.math.reduce_std(X, axis, keepdims).numpy(),
                               np.std(X, axis=np_axis, keepdims=keepdims))
    check_grads(lambda t: tf.math.reduce_std(t, axis, keepdims), [X], order=2,
                rng=np.random.default_rng(5))


def test_scalar_tensors_give_axes_and_counts_and_range_refuses_a_zero_step():
    x = tf.constant(X)
    np.testing.assert_array_equal(tf.cumsum(x, tf.constant(1)).numpy(), np.cumsum(X, 1))
    assert int(tf.constant(3.0)) == 3
    np.testing.assert_array_equal(tf.linspace(0.0, 1.0, tf.constant(3)).numpy(), [0, 0.5, 1])
    np.testing.assert_array_equal(tf.one_hot([1], tf.constant(3)).numpy(), [[0, 1, 0]])
    with pytest.raises(ValueError, match="delta != 0"):
        tf.range(0, 1, 0)
