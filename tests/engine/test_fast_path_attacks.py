"""The engine's fast paths, attacked: a reused graph's shared inline constants, its run plan
and its memos (shapes, point plans, kinks), and sweeps that sum or write into large
cotangents in place, must give what a graph never seen before gives, and must never
write into anything a caller, a constant or another tensor holds.

The reference is the same graph built afresh with the in-place sweep turned off
(``IN_PLACE_MIN`` past any size), and finite differences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import engine as tf
from engine.derive import hessian as hessian_mod
from engine.derive.kinds import KINDS
from engine.derive.query import Query
from engine.graphs.build import build_graph
from engine.graphs.reusable import ReusableGraph
from engine.tape import backprop

NEVER = 1 << 62
C_VECTOR = [0.5, -1.25, 2.0, 0.75]


def nodes(constant: Any = 2.5) -> list[dict[str, Any]]:
    """Every op with an in-place rule, each reading an inline constant, with fan-out."""
    return [
        {"id": "x", "op": "variable", "value": [0.3, -0.4, 0.9, 1.2]},
        {"id": "y", "op": "variable", "value": 0.7},
        {"id": "a", "op": "mul", "inputs": ["x", C_VECTOR]},
        {"id": "b", "op": "sub", "inputs": [constant, "a"]},
        {"id": "c", "op": "neg", "inputs": ["b"]},
        {"id": "d", "op": "square", "inputs": ["c"]},
        {"id": "e", "op": "mul", "inputs": [C_VECTOR, "d"]},
        {"id": "f", "op": "mul", "inputs": ["e", "y"]},
        {"id": "g", "op": "add", "inputs": ["f", "a"]},
        {"id": "h", "op": "sub", "inputs": ["g", "x"]},
        {"id": "k", "op": "mul", "inputs": ["h", "h"]},
        {"id": "t", "op": "sum", "inputs": ["k"]},
    ]


def f_numpy(x: np.ndarray, y: float, constant: float = 2.5) -> float:
    c = np.array(C_VECTOR)
    a = x * c
    d = (-(constant - a)) ** 2
    h = c * d * y + a - x
    return float(np.sum(h * h))


def compute(graph: Any, kind: str, **fields: Any) -> Any:
    return KINDS[kind].compute(Query(graph=graph, **fields))


def constants_of(graph: Any) -> list[np.ndarray]:
    """Copies of the inline constants the graph's run plan shares across runs."""
    graph.steps()
    out = []
    for step in graph._plan:
        for item in step[4:]:
            for t in item if isinstance(item, tuple) else (item,):
                if isinstance(t, tf.Tensor):
                    out.append(np.array(t.value, copy=True))
    return out


@pytest.mark.parametrize("floor", [1, 1 << 14])
def test_a_reused_graph_with_in_place_sweeps_answers_as_a_fresh_one(monkeypatch, floor):
    reused = ReusableGraph.of(build_graph(nodes()))
    shared = constants_of(reused)
    assert len(shared) == 3
    rng = np.random.default_rng(11)
    asks = [
        {"x": rng.uniform(-1, 1, 4), "y": 0.3},
        {"x": rng.uniform(-1, 1, 4), "y": np.array([0.2, 0.4, 0.6, 0.8])},
        {"x": rng.uniform(-1, 1, 4), "y": 0.3},
        {"x": rng.uniform(-1, 1, (2, 4)), "y": 1.5},
    ]
    for values in asks * 2:
        kept = {k: np.array(v, copy=True) for k, v in values.items()}
        monkeypatch.setattr(backprop, "IN_PLACE_MIN", floor)
        got = {k: compute(reused, k, values=values) for k in ("gradient", "jacobian", "hessian")}
        monkeypatch.setattr(backprop, "IN_PLACE_MIN", NEVER)
        fresh = build_graph(nodes())
        want = {k: compute(fresh, k, values=values) for k in ("gradient", "jacobian", "hessian")}
        for src in ("x", "y"):
            assert np.array_equal(got["gradient"].gradients[src], want["gradient"].gradients[src])
            assert np.array_equal(
                got["jacobian"].jacobian["t"][src], want["jacobian"].jacobian["t"][src]
            )
        assert np.array_equal(got["hessian"].matrix, want["hessian"].matrix)
        for k, v in values.items():  # the caller's arrays are untouched
            assert np.array_equal(v, kept[k])
        for before, now in zip(shared, constants_of(reused), strict=True):
            assert np.array_equal(before, now)  # the shared constants too


def test_the_hessian_of_a_reused_graph_agrees_with_finite_differences(monkeypatch):
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", 1)
    reused = ReusableGraph.of(build_graph(nodes()))
    x, y = np.array([0.3, -0.4, 0.9, 1.2]), 0.7
    for _ in range(2):
        h = compute(reused, "hessian", values={"x": x, "y": y}, sources=["x"]).matrix
        eps = 1e-4
        for i in range(4):
            for j in range(4):
                ei, ej = np.eye(4)[i] * eps, np.eye(4)[j] * eps
                fd = (
                    f_numpy(x + ei + ej, y)
                    - f_numpy(x + ei - ej, y)
                    - f_numpy(x - ei + ej, y)
                    + f_numpy(x - ei - ej, y)
                ) / (4 * eps * eps)
                assert h[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-5)


def test_a_constant_that_differs_builds_another_answer():
    values = {"x": np.array([0.3, -0.4, 0.9, 1.2]), "y": 0.7}
    one = compute(ReusableGraph.of(build_graph(nodes(2.5))), "evaluate", values=values)
    two = compute(ReusableGraph.of(build_graph(nodes(-2.5))), "evaluate", values=values)
    assert one.outputs["t"] == pytest.approx(f_numpy(values["x"], 0.7, 2.5), rel=1e-14)
    assert two.outputs["t"] == pytest.approx(f_numpy(values["x"], 0.7, -2.5), rel=1e-14)


def test_points_on_a_reused_graph_alternating_leaf_shapes_match_a_fresh_graph():
    """The point plan is remembered per leaf shapes and roots: alternate them."""
    reused = ReusableGraph.of(build_graph(nodes()))
    rng = np.random.default_rng(5)
    asks = [
        ({"y": 0.3}, {"x": rng.uniform(-1, 1, (3, 4))}),
        ({"x": rng.uniform(-1, 1, 4)}, {"y": rng.uniform(-1, 1, 5)}),
        ({"x": rng.uniform(-1, 1, (2, 4))}, {"y": rng.uniform(-1, 1, 3)}),
        ({}, {"x": rng.uniform(-1, 1, (2, 4)), "y": rng.uniform(-1, 1, 2)}),
        ({"y": rng.uniform(-1, 1, 4)}, {"x": rng.uniform(-1, 1, (3, 4))}),
    ]
    for kind in ("gradient", "hessian"):
        for values, points in asks * 2:
            got = KINDS[kind].over_points(Query(graph=reused, values=values), points)
            fresh = build_graph(nodes())
            want = KINDS[kind].over_points(Query(graph=fresh, values=values), points)
            for src, g in want.gradients.items():
                assert np.array_equal(got.gradients[src], g), (kind, points.keys())
            if kind == "hessian":
                assert np.array_equal(got.matrix, want.matrix)


def test_kink_notes_of_a_reused_graph_follow_its_values():
    """The kinked nodes are remembered per graph; whether each is at its kink is not."""
    chain = [{"id": "x", "op": "variable", "value": 1.0}]
    for i in range(68):
        chain.append({"id": f"s{i}", "op": "sin" if i % 2 else "abs", "inputs": [chain[-1]["id"]]})
    reused = ReusableGraph.of(build_graph(chain))
    assert reused.kinked == tuple(f"s{i}" for i in range(0, 68, 2))  # the abs nodes
    for x, kinked in ((1.0, False), (0.0, True), (1.0, False), (0.0, True)):
        notes = compute(reused, "gradient", values={"x": x}).notes
        assert any(n.reason == "kink" for n in notes) is kinked, x
    nan = compute(reused, "gradient", values={"x": float("nan")}).notes
    assert any(n.reason == "non_finite" for n in nan)


def test_nested_and_persistent_tapes_leave_what_callers_hold_alone(monkeypatch):
    """Jacobians and Hessians by hand, a persistent tape asked three times, and a custom
    gradient that keeps the upstream array it was given."""
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", 1)
    start = np.linspace(-1.0, 1.0, 6)
    x = tf.Variable(start.copy())
    c = tf.constant(np.linspace(0.5, 2.0, 6))
    c_before = c.numpy().copy()
    kept: list[np.ndarray] = []

    @tf.custom_gradient
    def scaled(u: Any) -> Any:
        def grad(dy: Any) -> Any:
            kept.append(np.asarray(dy.numpy() if hasattr(dy, "numpy") else dy))
            return dy * 3.0

        return u * 3.0, grad

    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            z = tf.reduce_sum(tf.square(scaled(x) * c - (1.0 - x)) * c)
        g = inner.gradient(z, x)
        w = (-g) * g
    answers = [np.asarray(outer.jacobian(g, x)) for _ in range(3)]
    answers.append(np.asarray(outer.jacobian(w, x)))
    snapshot = [k.copy() for k in kept]
    answers.append(np.asarray(outer.gradient(w, x)))
    assert all(np.array_equal(a, answers[0]) for a in answers[1:3])
    assert np.array_equal(c.numpy(), c_before) and np.array_equal(x.numpy(), start)
    assert all(np.array_equal(a, b) for a, b in zip(kept, snapshot, strict=False))
    cv = np.linspace(0.5, 2.0, 6)  # z = sum(c (3c x - 1 + x)^2): H = 2 c (3c + 1)^2 on the diagonal
    np.testing.assert_allclose(answers[0], np.diag(2 * cv * (3 * cv + 1) ** 2), rtol=1e-13)
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", NEVER)
    xs = [tf.Variable(start.copy())]
    want = hessian_mod.hessian(
        lambda: tf.reduce_sum(tf.square(xs[0] * 3.0 * c - (1.0 - xs[0])) * c), xs
    ).matrix
    np.testing.assert_allclose(answers[0], want, rtol=1e-14)


def test_a_target_that_is_a_source_or_its_view_keeps_its_value(monkeypatch):
    """The seed rows flow unchanged through identity, reshape and transpose to the source:
    what comes back must be new arrays, and the source's value stays as it was."""
    monkeypatch.setattr(backprop, "IN_PLACE_MIN", 1)
    start = np.arange(1.0, 7.0).reshape(2, 3)
    x = tf.Variable(start.copy())
    with tf.GradientTape(persistent=True) as tape:
        same_x = tf.identity(x)
        flat = tf.reshape(tf.transpose(x), shape=[6])
        both = flat + tf.reshape(same_x, shape=[6]) * 1.0
    eye = np.eye(6)
    by_itself = np.asarray(tape.jacobian(x, x)).reshape(6, 6)
    through_views = np.asarray(tape.jacobian(flat, x)).reshape(6, 6)
    summed = np.asarray(tape.jacobian(both, x)).reshape(6, 6)
    assert np.array_equal(by_itself, eye)
    order = np.arange(6).reshape(2, 3).T.reshape(6)  # flat[i] = x.flat[order[i]]
    assert np.array_equal(through_views, eye[order])
    assert np.array_equal(summed, eye[order] + eye)
    assert np.array_equal(x.numpy(), start)
    assert np.array_equal(np.asarray(tape.jacobian(x, x)).reshape(6, 6), eye)  # asked again
