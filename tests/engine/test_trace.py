"""The trace of a small graph: entries in recording order, values, grads and text."""

from __future__ import annotations

import numpy as np

from engine.derive.derivatives import gradient
from engine.derive.query import Query
from engine.graphs.build import build_graph
from tests.engine.seed_graph import SEED


def test_trace_lists_entries_in_recording_order_with_values_and_grads():
    trace = gradient(Query(build_graph(SEED), trace=True)).trace
    assert [(e.index, e.op, e.output) for e in trace.entries] == [
        (0, "pow", "x2"),
        (1, "pow", "y3"),
        (2, "add", "z"),
    ]
    by_name = {e.output: e for e in trace.entries}
    assert by_name["z"].inputs == ["x2", "y3"]
    assert float(by_name["x2"].value) == 2.0**2
    assert float(by_name["z"].value) == 2.0**2 + 3.0**3
    # z = x2 + y3: the cotangent reaching each entry is 1
    assert all(float(e.grad) == 1.0 for e in trace.entries)


def test_trace_text_has_a_header_one_jaxpr_like_line_per_entry_and_the_gradients():
    trace = gradient(Query(build_graph(SEED), trace=True)).trace
    lines = trace.text.splitlines()
    assert len(lines) == 1 + len(trace.entries) + 2
    # the header: inline constants with their values, then the leaves with their shapes
    assert lines[0] == ("{ lambda x2.inputs[1]:f64[]=2 y3.inputs[1]:f64[]=3 ; "
                        "x:f64[] y:f64[]. let")
    assert "x2:f64[] = pow x x2.inputs[1]  ; value=4  grad=1" in lines[1]
    assert "z:f64[] = add x2 y3" in lines[3]
    assert lines[4] == "  in (z) }"
    assert lines[5] == "grads: x=4  y=27"


def test_inline_constants_have_the_same_name_in_entries_leaves_and_text():
    trace = gradient(Query(build_graph(SEED), trace=True)).trace
    constants = {c.name: float(c.value) for c in trace.leaves if c.kind == "constant"}
    assert constants == {"x2.inputs[1]": 2.0, "y3.inputs[1]": 3.0}
    read = {name for e in trace.entries for name in e.inputs}
    assert set(constants) <= read
    for name in constants:
        assert f" {name}" in trace.text


def test_trace_leaves_carry_shapes_and_the_gradients_of_the_request():
    trace = gradient(Query(build_graph(SEED), trace=True)).trace
    leaves = {c.name: c for c in trace.leaves if c.kind == "leaf"}
    assert {k: (c.shape, float(c.value), float(c.grad)) for k, c in leaves.items()} == {
        "x": ((), 2.0, 4.0), "y": ((), 3.0, 27.0)}


def test_trace_of_a_tensor_graph_shows_shapes_and_attrs():
    nodes = [
        {"id": "w", "op": "variable", "value": np.arange(6.0).reshape(2, 3).tolist()},
        {"id": "s", "op": "sum", "inputs": ["w"], "attrs": {"axis": 0}},
        {"id": "t", "op": "tanh", "inputs": ["s"]},
    ]
    trace = gradient(Query(build_graph(nodes), trace=True)).trace
    assert trace.entries[0].shape == (3,)
    assert "s:f64[3] = sum[axis=0][keepdims=False] w" in trace.text
    expected = 1 - np.tanh(np.arange(6.0).reshape(2, 3).sum(0)) ** 2
    np.testing.assert_allclose(trace.entries[0].grad, expected)


def test_no_trace_unless_asked():
    assert gradient(Query(build_graph(SEED))).trace is None


def test_every_kind_traces_when_asked():
    """evaluate records on a tape of its own; Hessians and higher derivatives trace the
    forward run and the first sweep they differentiate again; points keep their axis."""
    from engine.derive.derivatives import derivative, evaluate, hessian, jacobian

    q = Query(build_graph(SEED), trace=True)
    ev = evaluate(q).trace
    assert [e.op for e in ev.entries] == ["pow", "pow", "add"]
    assert all(e.grad is None for e in ev.entries) and "grads:" not in ev.text
    for kind in (jacobian, hessian):
        assert [e.output for e in kind(q).trace.entries] == ["x2", "y3", "z"]
    d = derivative(Query(build_graph(SEED), trace=True, order=3))
    assert d.trace.text.splitlines()[-1] == "grads: x=4  y=27"
    many = gradient(q, {"x": [1.0, 2.0], "y": [3.0, 4.0]}).trace
    assert many.entries[-1].shape == (2,)
    np.testing.assert_allclose(many.entries[-1].value, [1 + 27, 4 + 64])
    assert "over 2 points" in many.text.splitlines()[0]
    assert hessian(q, {"x": [1.0, 2.0], "y": [3.0, 4.0]}).trace.entries[0].shape == (2,)
