"""Numeric notes (engine.derive.numeric_notes) read alike through their shortcuts: every
value finite (scalars alone, or arrays among them), a graph's kinked nodes remembered."""

from __future__ import annotations

import numpy as np
import pytest

from engine.derive.numeric_notes import MAX_NOTES, TensorValues, numeric_notes
from engine.graphs.build import build_graph
from engine.graphs.reusable import ReusableGraph


def notes_at(graph, **values):
    tensors = graph.run(graph.leaf_values(values))
    return [(n.reason, n.node) for n in numeric_notes(graph, TensorValues(tensors))]


def chain(x0=0.5, leaf=None):
    """``relu`` (a kink at 0) and ``abs`` between smooth ops, over a scalar or a vector."""
    return ReusableGraph.of(
        build_graph(
            [
                {"id": "x", "op": "variable", "value": x0 if leaf is None else leaf},
                {"id": "s", "op": "sin", "inputs": ["x"]},
                {"id": "r", "op": "relu", "inputs": ["s"]},
                {"id": "m", "op": "mul", "inputs": ["r", 2.0]},
                {"id": "a", "op": "abs", "inputs": ["m"]},
                {"id": "l", "op": "log", "inputs": ["a"]},
            ]
        )
    )


@pytest.mark.parametrize("vector", [False, True], ids=["scalars", "arrays"])
def test_kinks_are_found_each_run_of_a_kept_graph(vector):
    graph = chain(leaf=[0.5, 0.25] if vector else None)
    at = (lambda v: [v, 0.25]) if vector else (lambda v: v)
    assert notes_at(graph, x=at(0.5)) == []
    # x = 0: relu and abs at their kinks, then log(0) = -inf where the values stop being finite
    assert notes_at(graph, x=at(0.0)) == [("kink", "r"), ("kink", "a"), ("non_finite", "l")]
    assert notes_at(graph, x=at(0.5)) == []  # the same graph again: nothing stale


def test_a_non_finite_value_is_located_among_scalars_and_arrays():
    graph = build_graph(
        [
            {"id": "x", "op": "variable", "value": 1.0},
            {"id": "v", "op": "constant", "value": [1.0, -1.0]},
            {"id": "q", "op": "sqrt", "inputs": ["v"]},
            {"id": "d", "op": "div", "inputs": ["x", 0.0]},
        ]
    )
    assert notes_at(graph) == [("non_finite", "q"), ("non_finite", "d")]


def test_a_non_finite_leaf_is_noted_on_the_leaf_not_on_what_it_flows_into():
    # The contract's notes explain every non-finite result: y's NaN is x's, given so.
    graph = build_graph(
        [
            {"id": "x", "op": "variable", "value": float("nan")},
            {"id": "y", "op": "sin", "inputs": ["x"]},
        ]
    )
    assert notes_at(graph) == [("non_finite", "x")]
    assert np.isnan(graph.run(graph.leaf_values({}))["y"].value)


@pytest.mark.parametrize(
    "gradient",
    [np.float64(np.inf), np.array(np.nan), np.array([1.0, -np.inf]), np.float64(2.0),
     np.array(3.0), np.array([1.0, 2.0])],
    ids=["scalar inf", "0-d nan", "array -inf", "scalar", "0-d", "array"],
)
def test_a_gradient_that_is_not_finite_is_noted_whatever_its_form(gradient):
    """Scalars and 0-d arrays are tested without numpy's machinery: the same answer."""
    graph = chain()
    tensors = graph.run(graph.leaf_values({}))
    notes = [(n.reason, n.source)
             for n in numeric_notes(graph, TensorValues(tensors), {"x": gradient})]
    finite = bool(np.isfinite(gradient).all())
    assert notes == ([] if finite else [("non_finite", "x")])


@pytest.mark.parametrize("kind", ["leaves", "ops", "kinks", "gradients"])
def test_notes_stop_at_max_notes_with_one_truncated_note(kind):
    """However many leaves were given NaN, ops made one, kinks were met or gradients are
    not finite: MAX_NOTES notes, then one that says the rest were left out."""
    n = 3 * MAX_NOTES
    nodes = [{"id": f"x{i}", "op": "variable", "value": np.nan if kind == "leaves" else 0.0}
             for i in range(n)]
    op = {"leaves": "sin", "ops": "log", "kinks": "relu", "gradients": "sqrt"}[kind]
    nodes += [{"id": f"y{i}", "op": op, "inputs": [f"x{i}"]} for i in range(n)]
    graph = build_graph(nodes)
    tensors = graph.run(graph.leaf_values({}))
    gradients = ({f"x{i}": np.float64(np.inf) for i in range(n)} if kind == "gradients"
                 else None)
    notes = numeric_notes(graph, TensorValues(tensors), gradients)
    assert len(notes) == MAX_NOTES + 1
    assert notes[-1].reason == "truncated" and "rest omitted" in notes[-1].detail
    expected = {"leaves": "non_finite", "ops": "non_finite", "kinks": "kink",
                "gradients": "non_finite"}[kind]
    assert {note.reason for note in notes[:-1]} == {expected}
