"""The value codec: JSON numbers, arrays and non-finite strings <-> float64."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.wire.values import decode, encode, jsonable

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=4, max_side=4), elements=floats)
)
def test_encode_then_decode_round_trips_through_strict_json(a):
    text = json.dumps(encode(a), allow_nan=False)
    back = decode(json.loads(text))
    assert np.shape(back) == a.shape
    np.testing.assert_array_equal(back, a)  # NaN == NaN here


def test_non_finite_strings_decode():
    assert math.isnan(decode("NaN"))
    assert decode("Infinity") == math.inf and decode("-Infinity") == -math.inf
    np.testing.assert_array_equal(decode([1, "NaN", "-Infinity"]), [1.0, np.nan, -np.inf])


def test_scalars_decode_to_numpy_float64():
    assert type(decode(3)) is np.float64 and decode(3) == 3.0
    assert type(decode(2.5)) is np.float64


def test_empty_arrays_keep_their_shape():
    assert decode([]).shape == (0,)
    assert decode([[], []]).shape == (2, 0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (True, "boolean"),
        (None, "null"),
        ("nan", "string"),
        ([[1, 2], [3]], "ragged array at [1]"),
        ([[1, 2], 3], "ragged array at [1]"),
        ([1, [2]], "ragged array at [1]"),
        ([[1], [True]], "at [1][0]"),
        ({"a": 1}, "object"),
        (10**400, "float64 range"),
    ],
)
def test_invalid_values_name_the_location(raw, message):
    with pytest.raises(ValueError, match=None) as info:
        decode(raw)
    assert message in str(info.value)


def test_encode_emits_strings_for_non_finite():
    assert encode(np.array([1.0, np.nan, np.inf, -np.inf])) == [1.0, "NaN", "Infinity", "-Infinity"]
    assert encode(np.float64("nan")) == "NaN"
    assert encode(None) is None


def test_jsonable_never_leaves_a_bare_nan():
    data = {"a": float("nan"), "b": (1, np.float64("inf")), "c": np.array([[np.nan]]), "d": {1}}
    json.dumps(jsonable(data), allow_nan=False)
