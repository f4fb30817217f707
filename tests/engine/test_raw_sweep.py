"""With no tape recording, the reverse sweep runs the same rules on raw numpy values
(no Tensor per op); with one recording, on Tensors, so that tape records the backward
pass. Both must give the same cotangents, batched or not, for every rule."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import engine as tf
from engine import Tensor
from engine.ops.registry import Case, OpDef
from engine.tape.collector import collector_paused
from engine.tape.recording import TAPE_STACK
from engine.tape.unbroadcast import unbroadcast
from engine.tensor import as_value
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs


def _cotangents(op: OpDef, xs: list, attrs: dict, ans, g, batch: tuple, raw: bool) -> list:
    """The rule's cotangent per input, unbroadcast as the sweep does, in raw or Tensor form."""
    if raw:
        xs, ans = [x.value for x in xs], ans.value
    TAPE_STACK.raw = raw
    try:
        back = op.vjp(ans, *xs, **attrs)  # type: ignore[misc]
        grads = back(g if raw else Tensor(g))
        out = []
        for x, gx in zip(xs, grads, strict=True):
            if gx is not None:
                assert isinstance(gx, Tensor) is not raw, f"{op.name}: a {type(gx).__name__}"
                gx = unbroadcast(gx, np.shape(x), batch)
                assert isinstance(gx, Tensor) is not raw
                gx = np.asarray(gx)
            out.append(gx)
        return out
    finally:
        TAPE_STACK.raw = False


@pytest.mark.parametrize("batch", [(), (2,)])
@pytest.mark.parametrize(("op", "case"), op_cases(differentiable=True))
def test_every_rule_gives_the_same_cotangents_on_raw_values_as_on_tensors(
    op: OpDef, case: Case, batch: tuple
) -> None:
    rng = rng_for(op, case, "raw")
    attrs = op.normalize_attrs(case.attrs)
    xs = [Tensor(a) for a in sample_inputs(op, case, rng)]
    ans = Tensor(op.forward(*[x.value for x in xs], **attrs))
    g = as_value(rng.standard_normal(batch + ans.shape))
    on_tensors = _cotangents(op, xs, attrs, ans, g, batch, raw=False)
    on_values = _cotangents(op, xs, attrs, ans, g, batch, raw=True)
    for i, (t, v) in enumerate(zip(on_tensors, on_values, strict=True)):
        assert (t is None) == (v is None), f"{op.name} input {i}"
        if t is not None:
            np.testing.assert_array_equal(v, t, err_msg=f"{op.name} input {i}")


def test_ops_on_numbers_give_tensors_outside_a_raw_sweep() -> None:
    assert isinstance(tf.sin(0.5), Tensor)
    assert isinstance(tf.add(np.float64(1.0), 2.0), Tensor)
    assert isinstance(tf.concat(np.ones(2), np.ones(3)), Tensor)


def test_first_order_gradient_is_a_tensor_and_second_order_is_recorded() -> None:
    x = tf.Variable(0.7)
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = tf.sin(x) * x
        dy = inner.gradient(y, x)  # outer records: the sweep runs on Tensors
    d2y = outer.gradient(dy, x)
    assert isinstance(dy, Tensor) and isinstance(d2y, Tensor)
    np.testing.assert_allclose(float(dy), np.cos(0.7) * 0.7 + np.sin(0.7))
    np.testing.assert_allclose(float(d2y), -np.sin(0.7) * 0.7 + 2 * np.cos(0.7))
    assert not TAPE_STACK.raw


def test_a_rule_that_raises_leaves_the_raw_flag_unset() -> None:
    x = tf.Variable(np.ones(3))
    with tf.GradientTape() as tape:
        y = tf.sum(x * 2.0)
    entries = tape.raw_entries  # as stored, rewritten in place here to corrupt an entry
    entries[0] = (entries[0][0], entries[0][1], {"bogus": 1}, *entries[0][3:])  # rule raises
    with pytest.raises(TypeError):
        tape.gradient(y, x)
    assert not TAPE_STACK.raw


@pytest.mark.parametrize("c", [0.0, -0.0, float("nan"), float("inf"), 0.9])
def test_a_float_constant_keeps_its_exact_value(c: float) -> None:
    x = tf.Variable(1.0)
    for _ in range(2):  # the second time from the constant cache, if cached
        with tf.GradientTape() as tape:
            y = x * c
        np.testing.assert_array_equal(np.copysign(1.0, y.value), np.copysign(1.0, c))
        np.testing.assert_array_equal(y.value, c)
        np.testing.assert_array_equal(tape.gradient(y, x).value, c)


def test_a_long_tape_is_not_scanned_by_a_collection_when_it_stops() -> None:
    collections: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    was = gc.isenabled()
    gc.enable()
    try:
        x = tf.Variable(0.5)
        with tf.GradientTape() as tape:
            y = x
            for _ in range(collector_paused.PROMOTE_BACKLOG):
                y = tf.sin(y)
            gc.callbacks.append(seen)
        assert gc.isenabled()
        _ = [[i] for i in range(100)]  # allocations that would start the collection
        gc.callbacks.remove(seen)
        assert collections == []
        assert float(tape.gradient(y, x)) != 0.0
    finally:
        if seen in gc.callbacks:
            gc.callbacks.remove(seen)
        (gc.enable if was else gc.disable)()
