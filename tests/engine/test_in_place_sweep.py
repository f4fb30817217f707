"""A vectorised raw sweep reuses the memory of large cotangents nothing else holds: sums go
into the cotangent they add to, and a rule with a ``rule_into`` writes into ``g``. The
numbers must be the very same as without, and nothing anyone else holds (seeds, forward
values, a cotangent shared by two inputs) may change."""

from __future__ import annotations

import numpy as np
import pytest

import engine as tf
from bench import rosenbrock
from engine.derive import hessian as hessian_mod
from engine.ops import OPS
from engine.ops.vjp import times_into
from engine.tape import backprop

INTO = sorted(name for name, op in OPS.items() if op.rule_into is not None)
NEEDS = {1: [(True,)], 2: [(True, True), (True, False), (False, True)]}
NEVER = 1 << 62


def test_the_ops_with_a_rule_into():
    """The ops the Hessian benchmark's sweeps spend their allocations in."""
    assert {"mul", "neg", "square", "sub"} <= set(INTO)


@pytest.mark.parametrize("name", INTO)
def test_rule_into_gives_the_rules_numbers_in_gs_memory(name):
    op = OPS[name]
    rng = np.random.default_rng(7)
    arity = op.arity or 1
    shapes = [(), (5,)] if arity == 2 else [(5,)]  # a scalar input broadcast, as 100 * d2
    for needs in NEEDS[arity]:
        xs = [rng.uniform(0.5, 2.0, size=s) for s in shapes]
        ans = op.forward(*xs)
        g = rng.normal(size=(3, *np.shape(ans)))  # three seed rows
        want = op.rule(g.copy(), needs, ans, *xs)
        given = g.copy()
        got = op.rule_into(given, needs, ans, *xs)
        reused = False
        for i, (w, x) in enumerate(zip(want, got, strict=True)):
            if not needs[i]:
                continue
            assert np.array_equal(np.asarray(w), np.asarray(x)), (name, needs, i)
            reused |= x is given
        assert reused, f"{name} {needs}: no cotangent was written into g"
        for x in xs:  # the inputs are the forward values: never written
            assert x.base is None and x.flags.writeable


def test_times_into_makes_a_new_array_when_the_product_is_larger():
    g, b = np.arange(4.0), np.ones((3, 4))
    out = times_into(g, b)
    assert out is not g and out.shape == (3, 4)
    assert np.array_equal(g, np.arange(4.0))  # untouched
    assert times_into(g, 2.0) is g and np.array_equal(g, 2 * np.arange(4.0))


def _fan(xs: list[tf.Tensor]) -> tf.Tensor:
    """Fan-out and fan-in: x feeds many ops, one add reads x twice (its rule hands the
    same cotangent to both inputs), and neg, sub from a constant and square all apply."""
    x, y = xs
    twice = x + x
    return tf.reduce_sum(tf.square(x) * y - (-x) * x + (1.0 - x) * twice + x * y * y)


def _rosenbrock(xs: list[tf.Tensor]) -> tf.Tensor:
    return rosenbrock.in_engine_ops(xs[0])


@pytest.mark.parametrize("f", [_fan, _rosenbrock])
def test_hessians_are_the_same_bits_with_memory_reused(monkeypatch, f):
    """Every array is eligible (the size floor at 1), against none (the floor past any)."""
    rng = np.random.default_rng(3)
    values = [rng.uniform(-1.5, 1.5, size=(6,)) for _ in range(2)]
    kept = [v.copy() for v in values]
    answers = {}
    for floor in (1, NEVER):
        monkeypatch.setattr(backprop, "IN_PLACE_MIN", floor)
        xs = [tf.Variable(v) for v in values]
        h = hessian_mod.hessian(lambda xs=xs: f(xs), xs)
        answers[floor] = (h.matrix.copy(), [np.asarray(g) for g in h.gradients])
        for x, v in zip(xs, kept, strict=True):
            assert np.array_equal(x.numpy(), v)  # the forward values are untouched
    (m1, g1), (m2, g2) = answers[1], answers[NEVER]
    assert np.array_equal(m1, m2)
    for a, b in zip(g1, g2, strict=True):
        assert np.array_equal(a, b)


def test_the_exact_rosenbrock_hessian_with_memory_reused(monkeypatch):
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", 1)
    x0 = np.linspace(-1.2, 1.2, 9)
    x = tf.Variable(x0)
    h = hessian_mod.hessian(lambda: rosenbrock.in_engine_ops(x), [x])
    np.testing.assert_allclose(h.matrix, rosenbrock.exact_hessian(x0), rtol=1e-13, atol=1e-12)


def test_a_seed_the_caller_holds_is_not_written(monkeypatch):
    """``output_gradients`` are the caller's arrays; the sweep's first cotangents are them,
    and a fan-in right after the target would add into them if it did not see the caller."""
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", 1)
    x = tf.Variable(np.arange(1.0, 7.0))
    seed = np.linspace(0.5, 3.0, 6)
    before = seed.copy()
    with tf.GradientTape() as tape:
        w = x * 2.0
        z = w + w
    (gx,) = tape.gradient(z, [x], output_gradients=seed)
    assert np.array_equal(seed, before)
    assert np.array_equal(np.asarray(gx), 4.0 * before)


def test_batched_rows_of_a_jacobian_with_a_shared_cotangent(monkeypatch):
    """``x + x``: add's rule gives one array to both of its inputs, which are one tensor; the
    second must be added to a new sum, or the first would double under it."""
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", 1)
    x = tf.Variable(np.arange(1.0, 5.0))
    with tf.GradientTape() as tape:
        y = (x + x) * x
    jac = np.asarray(tape.jacobian(y, x))
    assert np.array_equal(jac, np.diag(4.0 * np.arange(1.0, 5.0)))


@pytest.mark.parametrize("rows", [False, True], ids=["gradient", "jacobian rows"])
def test_a_cotangent_two_tensors_share_is_not_added_into(monkeypatch, rows):
    """``u = a + b`` hands one array to ``a`` and to ``b``; ``v = a * 1.5``, recorded
    before ``u``, is swept after it and adds to ``a``'s: that sum must be a new array, or
    ``b``'s cotangent (the same one) would change under it."""
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", 1)
    x = tf.Variable(np.arange(1.0, 5.0))
    with tf.GradientTape(persistent=True) as tape:
        a, b = x * 2.0, x * 3.0
        v = a * 1.5
        u = a + b
        z = u + v
    want = 2.0 + 3.0 + 2.0 * 1.5
    if rows:
        assert np.array_equal(np.asarray(tape.jacobian(z, x)), np.diag(np.full(4, want)))
    else:
        assert np.array_equal(np.asarray(tape.gradient(z, x)), np.full(4, want))


def test_one_source_hessian_matrix_is_its_block():
    """One source: the matrix is the block's own numbers, not a copy into zeros (the
    response then writes them once, app.rendering)."""
    x = tf.Variable(np.linspace(-1.0, 1.0, 5))
    h = hessian_mod.hessian(lambda: rosenbrock.in_engine_ops(x), [x])
    block = h.blocks[0][0]
    assert block is not None and np.shares_memory(block, h.matrix)
    assert block.shape == h.matrix.shape == (5, 5)
    np.testing.assert_allclose(
        h.matrix, rosenbrock.exact_hessian(np.linspace(-1.0, 1.0, 5)), rtol=1e-13, atol=1e-12
    )
