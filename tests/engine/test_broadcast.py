"""``unbroadcast`` undoes numpy broadcasting on a cotangent: it is the adjoint of
broadcasting, and being written in engine ops, a tape can differentiate it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import BroadcastableShapes, mutually_broadcastable_shapes

from engine import GradientTape, Tensor, Variable
from engine.tape.unbroadcast import unbroadcast

SHAPES = mutually_broadcastable_shapes(num_shapes=3, max_dims=4, max_side=3)
SEEDS = st.integers(0, 2**32 - 1)


def _reference(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lead = g.ndim - len(shape)
    summed = g.sum(axis=tuple(range(lead)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1)
    return summed.sum(axis=ones, keepdims=True).reshape(shape)


@settings(deadline=None)
@given(shapes=SHAPES, seed=SEEDS)
def test_unbroadcast_sums_over_broadcast_axes(shapes: BroadcastableShapes, seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(shapes.result_shape)
    for shape in shapes.input_shapes:
        out = unbroadcast(Tensor(g), shape)
        assert out.shape == shape
        np.testing.assert_allclose(out.numpy(), _reference(g, shape), rtol=1e-12, atol=1e-12)
        if shape == ():
            assert type(out.value) is np.float64


@settings(deadline=None)
@given(shapes=SHAPES, seed=SEEDS)
def test_unbroadcast_is_the_adjoint_of_broadcasting(
    shapes: BroadcastableShapes, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(shapes.result_shape)
    for shape in shapes.input_shapes:
        v = rng.standard_normal(shape)
        lhs = np.sum(unbroadcast(Tensor(g), shape).numpy() * v)
        rhs = np.sum(g * np.broadcast_to(v, g.shape))
        np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@settings(deadline=None, max_examples=50)
@given(shapes=SHAPES, seed=SEEDS)
def test_unbroadcast_is_recorded_by_a_tape(shapes: BroadcastableShapes, seed: int) -> None:
    # its derivative, weighted by v, is v broadcast back: what second derivatives need
    rng = np.random.default_rng(seed)
    g = Variable(rng.standard_normal(shapes.result_shape))
    for shape in shapes.input_shapes:
        v = rng.standard_normal(shape)
        with GradientTape() as tape:
            tape.watch(g)  # unbroadcast may return g itself, with no op reading it
            out = unbroadcast(g, shape)
        grad = tape.gradient(out, g, output_gradients=v)
        np.testing.assert_allclose(grad.numpy(), np.broadcast_to(v, g.shape))
