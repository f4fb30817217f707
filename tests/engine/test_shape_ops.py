"""Shape ops beyond the table-driven tests: shape rules, errors, slicing semantics."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from engine import OPS
from engine.errors import AttrError, GraphError, ShapeError
from engine.ops.registry import F  # the op table's own slice (begin, end, step)
from engine.ops.slicing import slices
from tests.engine.op_cases import assert_shape_rule_matches_forward
from tests.gradcheck import check_grads

SHAPE_OPS = ["reshape", "broadcast_to", "transpose", "expand_dims", "squeeze", "concat",
             "stack", "slice", "pad_slice"]


@pytest.mark.parametrize(
    ("name", "case"), [(n, c) for n in SHAPE_OPS for c in OPS[n].cases],
    ids=lambda v: v if isinstance(v, str) else str(v.shapes),
)
def test_infer_shape_agrees_with_the_forward(name, case):
    assert_shape_rule_matches_forward(OPS[name], case)


@pytest.mark.parametrize(
    ("name", "shapes", "attrs"),
    [
        ("reshape", [(3, 4)], {"shape": [5, -1]}),
        ("reshape", [(3, 4)], {"shape": [-1, -1]}),
        ("broadcast_to", [(3,)], {"shape": [4]}),
        ("transpose", [(2, 3)], {"perm": [0, 0]}),
        ("transpose", [(2, 3)], {"perm": [0]}),
        ("transpose", [(2, 3)], {"perm": [0, 2]}),
        ("expand_dims", [(2, 3)], {"axis": 3}),
        ("expand_dims", [(2, 3)], {"axis": -4}),
        ("squeeze", [(1, 3)], {"axis": 1}),
        ("squeeze", [(1, 3)], {"axis": 2}),
        ("concat", [(2, 3), (3, 3)], {"axis": 1}),
        ("concat", [(2, 3), (2,)], {}),
        ("concat", [(), ()], {}),
        ("concat", [(2,), (2,)], {"axis": 1}),
        ("stack", [(2,), (3,)], {}),
        ("stack", [(2,), (2,)], {"axis": 2}),
        ("slice", [(3, 4)], {"begin": [0, 0, 0]}),
        ("slice", [(3, 4)], {"begin": [0], "step": [0]}),
        ("pad_slice", [(2,)], {"shape": [5], "begin": [1]}),
    ],
)
def test_bad_shapes_or_axes_raise_shape_error(name, shapes, attrs):
    op = OPS[name]
    with pytest.raises(ShapeError):
        op.infer_shape(*shapes, **op.normalize_attrs(attrs))


def test_slice_needs_begin():
    with pytest.raises(AttrError):
        OPS["slice"].normalize_attrs({"end": [2]})


def test_concat_and_stack_take_any_number_of_inputs_but_not_zero():
    for name in ("concat", "stack"):
        assert OPS[name].arity is None
        with pytest.raises(GraphError):
            OPS[name].check_arity(0)
    parts = [np.arange(2.0), np.arange(3.0), np.arange(1.0)]
    assert tf.concat(*parts).numpy().tolist() == [0, 1, 0, 1, 2, 0]


@pytest.mark.parametrize(
    ("begin", "end", "step"),
    [
        ([1, -3], [3, None], None),
        ([-1], None, [-1]),
        ([0, 10], [100, 20], None),  # out of range bounds clamp, as Python
        ([2, -1], [0, 0], [-1, -2]),
        ([0, 1], None, [2, 2]),
    ],
)
def test_slice_follows_python_slicing(begin, end, step):
    x = np.arange(20.0).reshape(4, 5)
    cuts = tuple(
        slice(b, None if end is None else end[i], None if step is None else step[i])
        for i, b in enumerate(begin)
    )
    end_attr = None if end is None else [len_or(e, x.shape[i]) for i, e in enumerate(end)]
    got = F.slice(x, begin=begin, end=end_attr, step=step).numpy()
    np.testing.assert_array_equal(got, x[cuts])


def len_or(e: int | None, n: int) -> int:
    """A null end entry in the test table: the full axis (the attr takes ints only)."""
    return n if e is None else e


def test_slice_of_a_slice_has_exact_second_derivatives():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (4, 5))

    def f(t):
        s = F.slice(t, begin=[3, 1], end=[0, 5], step=[-2, 2])
        return s * s * s

    check_grads(f, [x], order=2, rng=rng)


def test_slice_gradient_scatters_into_zeros():
    x = tf.Variable(np.arange(6.0).reshape(2, 3))
    with tf.GradientTape() as tape:
        y = F.slice(x, begin=[0, 1])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[0, 1, 1], [0, 1, 1]])


def test_transpose_with_null_perm_reverses_axes_and_its_gradient_transposes_back():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert tf.transpose(x).shape == (4, 3, 2)
    check_grads(lambda t: tf.transpose(t, perm=[2, 0, 1]), [x])


def test_squeeze_null_drops_every_size_one_axis():
    assert tf.squeeze(np.zeros((1, 3, 1, 2))).shape == (3, 2)
    assert tf.squeeze(np.zeros((1, 1))).shape == ()


def test_expand_dims_negative_axis_counts_from_the_end_of_the_output():
    assert tf.expand_dims(np.zeros((2, 3)), axis=-1).shape == (2, 3, 1)
    assert tf.expand_dims(np.zeros((2, 3)), axis=-3).shape == (1, 2, 3)


def test_concat_gradients_split_the_cotangent_back():
    a, b = tf.Variable(np.ones((2, 2))), tf.Variable(np.ones((2, 1)))
    w = np.arange(6.0).reshape(2, 3)
    with tf.GradientTape() as tape:
        y = tf.concat(a, b, axis=1)
    ga, gb = tape.gradient(y, [a, b], output_gradients=w)
    np.testing.assert_array_equal(ga.numpy(), w[:, :2])
    np.testing.assert_array_equal(gb.numpy(), w[:, 2:])


def test_concat_and_stack_second_order_through_slices():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (2, 3))
    check_grads(lambda x, y: tf.concat(x * y, y, axis=0), [a, b], order=2, rng=rng)
    check_grads(lambda x, y: tf.stack(x * x, y * x, axis=1), [a, b], order=2, rng=rng)


def test_slices_are_python_s_and_refusals_name_the_attr():
    assert slices((4, 5), (1, -1), None, (1, 2)) == (slice(1, None, 1), slice(-1, None, 2))
    assert slices((4, 5), [1], [3]) == (slice(1, 3, None), slice(None, None, None))
    assert slices((), ()) == ()
    with pytest.raises(ShapeError, match=r"^begin \[0, 1\] has more entries than shape \[4\] "
                                         r"has axes$"):
        slices((4,), (0, 1))
    with pytest.raises(ShapeError, match=r"^step \[0\] has a zero entry$"):
        slices((4,), (0,), None, (0,))
    huge = 10**4000  # JSON's integers may have thousands of digits: they clamp, as Python's
    assert slices((5,), (-huge,), (huge,)) == (slice(-huge, huge, None),)
    assert F.slice(np.arange(5.0), begin=[-huge], end=[huge]).shape == (5,)
    x = np.arange(20.0).reshape(4, 5)
    assert F.slice(x, begin=[1]).shape == (3, 5)
    assert F.slice(x[0], begin=[1]).shape == (4,)
