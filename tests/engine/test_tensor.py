"""Tensors as users see them: op outputs are Tensors (of the EagerTensor class, as in TF),
named or not, printable, copyable and picklable like the leaves."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import engine as tf
from engine.tensor import EagerTensor


def test_an_op_output_is_a_tensor_with_no_name_until_given_one():
    y = tf.sin(tf.constant(0.5)) * 2.0
    assert isinstance(y, tf.Tensor) and type(y) is EagerTensor
    assert y.name is None
    y.name = "y"
    assert y.name == "y"


def test_reprs_say_tensor_and_variable():
    assert repr(tf.constant([1.0, 2.0]) + 1.0) == "Tensor([2. 3.])"
    assert repr(tf.Variable(1.5, name="w")) == "Variable(1.5, name='w')"


def test_op_outputs_copy_and_pickle_with_their_value_and_name():
    y = tf.exp(tf.constant([0.0, 1.0]))
    named = tf.exp(tf.constant(2.0))
    named.name = "e2"
    for t in (y, named):
        for clone in (copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
            assert type(clone) is EagerTensor and clone.name == t.name
            np.testing.assert_array_equal(clone.numpy(), t.numpy())


def test_format_is_the_numpy_value_s_as_in_tf():
    assert f"{tf.constant(6.0)}" == "6.0"
    assert f"{tf.Variable(2.5):.3f}" == "2.500"
    assert f"{tf.constant([1.0, 2.0])}" == str(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="format"):
        f"{tf.constant([1.0, 2.0]):.2f}"  # numpy's (and TF's) refusal for an array
