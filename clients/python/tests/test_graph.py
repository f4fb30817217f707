"""The Graph builder records Python code as the wire graph, offline."""

from __future__ import annotations

import json
import keyword

import pytest
from derivative_client import OPS, Graph, Tensor
from derivative_client.catalogue import LEAVES
from derivative_client.graph import method_name


def test_the_seed_example_records_the_graph_the_wire_expects():
    g = Graph()
    x = g.variable("x", 2.0)
    y = g.variable("y", 3.0)
    z = x**2 + y**3
    assert isinstance(z, Tensor)
    assert json.loads(g.to_json()) == {
        "nodes": [
            {"id": "x", "op": "variable", "value": 2.0},
            {"id": "y", "op": "variable", "value": 3.0},
            {"id": "pow_1", "op": "pow", "inputs": ["x", 2]},
            {"id": "pow_2", "op": "pow", "inputs": ["y", 3]},
            {"id": "add_1", "op": "add", "inputs": ["pow_1", "pow_2"]},
        ]
    }
    assert g.last.id == z.id == "add_1"


def test_operators_record_their_ops_in_operand_order():
    g = Graph()
    a, b = g.variable("a"), g.variable("b")
    recorded = [a + b, 1 + a, a - b, 2 - a, a * b, 3 * a, a / b, 1 / a, a**b, 2**a, a @ b, -a,
                abs(a)]  # fmt: skip
    ops = [(n["op"], n["inputs"]) for n in g.nodes[2:]]
    assert ops == [
        ("add", ["a", "b"]), ("add", [1, "a"]), ("sub", ["a", "b"]), ("sub", [2, "a"]),
        ("mul", ["a", "b"]), ("mul", [3, "a"]), ("div", ["a", "b"]), ("div", [1, "a"]),
        ("pow", ["a", "b"]), ("pow", [2, "a"]), ("matmul", ["a", "b"]), ("neg", ["a"]),
        ("abs", ["a"]),
    ]  # fmt: skip
    assert [t.id for t in recorded] == [n["id"] for n in g.nodes[2:]]


def test_ops_take_attrs_as_keywords_and_names():
    g = Graph()
    v = g.variable("v", [[1.0, 2.0], [3.0, 4.0]])
    s = g.sum(g.sin(v), axis=0, keepdims=True, name="total")
    assert s.id == "total"
    assert g.nodes[-1] == {
        "id": "total", "op": "sum", "inputs": ["sin_1"], "attrs": {"axis": 0, "keepdims": True}
    }  # fmt: skip
    g.transpose(v, perm=(1, 0))
    assert g.nodes[-1]["attrs"] == {"perm": [1, 0]}
    g.concat(v, v, v, axis=1)
    assert g.nodes[-1]["inputs"] == ["v", "v", "v"]


def test_every_catalogue_op_is_a_method_recording_it():
    for spec in OPS:
        if spec.name in LEAVES:
            continue
        g = Graph()
        inputs = [g.variable(f"x{i}", 1.0) for i in range(spec.arity or 2)]
        out = getattr(g, method_name(spec.name))(*inputs)
        assert g.nodes[-1]["op"] == spec.name and g.nodes[-1]["id"] == out.id
        assert g.nodes[-1]["inputs"] == [t.id for t in inputs]
    assert all(not keyword.iskeyword(method_name(spec.name)) for spec in OPS)


def test_mistakes_fail_in_python_not_on_the_wire():
    g = Graph()
    x = g.variable("x", 1.0)
    with pytest.raises(TypeError, match="takes 1 input"):
        g.sin(x, x)
    with pytest.raises(TypeError, match="no attr axes"):
        g.sum(x, axes=0)
    with pytest.raises(ValueError, match="duplicate node id"):
        g.variable("x")
    with pytest.raises(ValueError, match="bad node id"):
        g.variable("1x")
    with pytest.raises(ValueError, match="another graph"):
        Graph().sin(x)
    with pytest.raises(ValueError, match="unknown op"):
        g.apply("frobnicate", x)
    with pytest.raises(TypeError, match="not a value"):
        g.constant({"a": 1})
    with pytest.raises(ValueError, match="empty graph"):
        Graph().to_json()


def test_non_finite_numbers_travel_as_strings():
    g = Graph()
    g.constant([float("nan"), float("inf"), -float("inf"), 1.5], name="c")
    assert g.nodes[0]["value"] == ["NaN", "Infinity", "-Infinity", 1.5]


def test_made_up_ids_never_collide_with_given_ones():
    g = Graph()
    x = g.variable("add_1", 1.0)
    y = x + x
    assert y.id == "add_2"


def test_numpy_numbers_on_the_left_record_ops_too():
    np = pytest.importorskip("numpy")
    g = Graph()
    x = g.variable("x", 1.0)
    y = np.float64(2.0) * x
    assert isinstance(y, Tensor) and g.nodes[-1]["op"] == "mul"
    assert g.nodes[-1]["inputs"] == [2.0, "x"]
    g.constant(np.arange(3.0), name="c")
    assert g.nodes[-1]["value"] == [0.0, 1.0, 2.0]
