"""Jacobians and Hessians come from one vectorised reverse sweep (a batch of one-hot
seeds); they equal the row-by-row answers of one ``tape.gradient`` per output element."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

import engine as tf
from bench import rosenbrock
from engine.derive.hessian import hessian
from engine.ops.registry import F
from engine.tape import backprop

Graph = Callable[[list[tf.Tensor]], tf.Tensor]
RNG = np.random.default_rng(7)
W = RNG.standard_normal((4, 3))


def _softmax_graph(xs: list[tf.Tensor]) -> tf.Tensor:
    x, m = xs
    h = F.matmul(m, x)  # (2, 3) @ (3,) -> (2,)
    return F.softmax(F.concat(h, F.slice(x, begin=[1]), axis=0)) * F.sum(F.exp(x))


def _matrix_graph(xs: list[tf.Tensor]) -> tf.Tensor:
    x, m = xs
    y = F.matmul(F.tanh(m), F.reshape(x, shape=[3, 1])) + x  # broadcast (2, 1) + (3,)
    return F.transpose(F.logsumexp(F.stack(y, y * y, axis=0), axis=0)) * F.max(m, axis=1)


def _scalar_graph(xs: list[tf.Tensor]) -> tf.Tensor:
    x, m = xs
    first_row = F.slice(F.prod(m, axis=1), begin=[0], end=[1])
    return F.sum(F.cumprod(x, axis=0) * first_row) + F.det(m @ F.transpose(m) + 3.0)


def _rosenbrock(xs: list[tf.Tensor]) -> tf.Tensor:
    return rosenbrock.in_engine_ops(xs[0])


def _attention(xs: list[tf.Tensor]) -> tf.Tensor:
    x, m = xs
    scores = F.softmax(F.matmul(m, F.reshape(x, shape=[3, 1])) * F.slice(x, begin=[1]), axis=0)
    return F.sum(F.matmul(tf.Tensor(W), F.reshape(scores, shape=[3, -1])) ** 2.0)


GRAPHS = {"softmax": _softmax_graph, "matrix": _matrix_graph, "scalar": _scalar_graph}
HESSIANS = {"rosenbrock": _rosenbrock, "attention": _attention, "scalar": _scalar_graph}


def _inputs(name: str) -> list[tf.Variable]:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "rosenbrock":
        return [tf.Variable(np.linspace(-1.2, 1.2, 7))]
    m = rng.uniform(-1, 1, (2, 3) if name != "scalar" else (3, 3))
    if name == "attention":
        m = rng.uniform(-1, 1, (3, 3))
    return [tf.Variable(rng.uniform(0.2, 1.0, 3)), tf.Variable(m)]


def _row_by_row(fn: Graph, xs: list[tf.Variable]) -> list[np.ndarray]:
    """One tape.gradient per output element, seeded with a one-hot output_gradients."""
    with tf.GradientTape(persistent=True) as tape:
        y = fn(xs)
    rows: list[list[np.ndarray]] = [[] for _ in xs]
    for i in range(y.size):
        onehot = np.zeros(y.size)
        onehot[i] = 1.0
        grads = tape.gradient(y, xs, output_gradients=onehot.reshape(y.shape),
                              unconnected_gradients="zero")
        for j, g in enumerate(grads):
            rows[j].append(g.numpy())
    return [np.stack(r).reshape(y.shape + x.shape) for r, x in zip(rows, xs, strict=True)]


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_vectorised_jacobian_equals_row_by_row(name: str, chunk: int | None, monkeypatch) -> None:
    if chunk is not None:  # chunk x widest tensor <= budget: a budget of 1 sweeps row by row
        monkeypatch.setattr(backprop, "CHUNK_ELEMENTS", chunk)
    xs = _inputs(name)
    with tf.GradientTape(persistent=True) as tape:
        y = GRAPHS[name](xs)
    got = tape.jacobian(y, xs)
    for g, want, x in zip(got, _row_by_row(GRAPHS[name], xs), xs, strict=True):
        assert g.shape == y.shape + x.shape
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-12, atol=1e-12)


def test_vectorised_jacobian_keeps_none_for_an_unconnected_source() -> None:
    x, z = tf.Variable(np.array([0.3, 0.5])), tf.Variable(np.array([1.0]))
    with tf.GradientTape(persistent=True) as tape:
        y = F.sin(x) * 2.0
        _ = z * 1.0
    jx, jz = tape.jacobian(y, [x, z])
    assert jz is None
    np.testing.assert_allclose(jx.numpy(), np.diag(2.0 * np.cos([0.3, 0.5])))
    zeros = tape.jacobian(y, [x, z], unconnected_gradients="zero")[1]
    assert zeros.shape == (2, 1) and not zeros.numpy().any()


def _nested_rows(fn: Graph, xs: list[tf.Variable]) -> np.ndarray:
    """The Hessian row by row: the outer tape differentiates one gradient element at a time."""
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            y = fn(xs)
        grads = inner.gradient(y, xs)
    n = sum(x.size for x in xs)
    rows = []
    for g in grads:
        for i in range(g.size):
            onehot = np.zeros(g.size)
            onehot[i] = 1.0
            parts = outer.gradient(g, xs, output_gradients=onehot.reshape(g.shape),
                                   unconnected_gradients="zero")
            rows.append(np.concatenate([p.numpy().ravel() for p in parts]))
    return np.stack(rows).reshape(n, n)


@pytest.mark.parametrize("name", list(HESSIANS))
def test_vectorised_hessian_equals_row_by_row_nested_tapes(name: str) -> None:
    xs = _inputs(name)
    h = hessian(lambda: HESSIANS[name](xs), xs)
    np.testing.assert_allclose(h.matrix, _nested_rows(HESSIANS[name], xs), rtol=1e-11,
                               atol=1e-10)
    np.testing.assert_allclose(h.matrix, h.matrix.T, rtol=1e-10, atol=1e-10)


def test_third_order_through_nested_jacobians() -> None:
    """y = sin(Ax): J = cos(Ax)_i A_ij, then -sin(Ax)_i A_ij A_ik, -cos(Ax)_i A_ij A_ik A_il."""
    a = np.random.default_rng(3).standard_normal((2, 3))
    x = tf.Variable(np.array([0.2, -0.4, 0.9]))
    with tf.GradientTape() as t3:
        with tf.GradientTape() as t2:
            with tf.GradientTape() as t1:
                y = F.sin(F.matmul(tf.Tensor(a), x))
            j1 = t1.jacobian(y, x)
        j2 = t2.jacobian(j1, x)
    j3 = t3.jacobian(j2, x)
    ax = a @ x.numpy()
    np.testing.assert_allclose(j1.numpy(), np.cos(ax)[:, None] * a)
    np.testing.assert_allclose(j2.numpy(), -np.einsum("i,ij,ik->ijk", np.sin(ax), a, a))
    np.testing.assert_allclose(j3.numpy(), -np.einsum("i,ij,ik,il->ijkl", np.cos(ax), a, a, a))


@pytest.mark.parametrize("mode", ["none", "zero"])
def test_one_sweep_hessian_keeps_no_path_blocks_as_block_by_block(mode: str) -> None:
    """Blocks through stop_gradient or with no path at all are None (zeros with "zero"),
    exactly as one outer.jacobian per gradient block gives them."""
    x, y = tf.Variable(np.array([0.3, -0.7])), tf.Variable(np.array(1.5))
    z, w = tf.Variable(np.array([2.0])), tf.Variable(np.array(0.5))
    xs = [x, y, z, w]

    def f() -> tf.Tensor:
        return F.sum(x * x * y) + F.sum(F.stop_gradient(x)) * F.sin(w) + F.sum(z * 0.0 + 1.0)

    h = hessian(f, xs, unconnected_gradients=mode)
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            out = f()
        grads = inner.gradient(out, xs, unconnected_gradients=mode)
    for i, g in enumerate(grads):
        ref = outer.jacobian(g, xs, unconnected_gradients=mode) if outer.is_watched(g) else None
        for j, s in enumerate(xs):
            want = None if ref is None or ref[j] is None else ref[j].numpy()
            if want is None and mode == "zero":
                want = np.zeros(xs[i].shape + s.shape)
            got = h.blocks[i][j]
            assert (got is None) == (want is None), (i, j)
            if want is not None:
                np.testing.assert_allclose(got, want, atol=1e-15)
    assert h.blocks[3][0] is None if mode == "none" else not h.blocks[3][0].any()
