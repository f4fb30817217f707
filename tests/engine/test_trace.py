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


def test_trace_text_has_one_jaxpr_like_line_per_entry():
    trace = gradient(Query(build_graph(SEED), trace=True)).trace
    lines = trace.text.splitlines()
    assert len(lines) == len(trace.entries)
    assert "x2:f64[] = pow x 2" in lines[0]
    assert "z:f64[] = add x2 y3" in lines[2]


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
