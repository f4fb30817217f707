"""A graph's run plan (Graph._steps): every way a node is called gives what its op gives,
on a tape too; inline constants are built once per graph and shared by its runs."""

from __future__ import annotations

import numpy as np
import pytest

from engine import GradientTape
from engine.errors import EngineError
from engine.graphs.build import build_graph

# One node of each call shape the plan tells apart, each with its expected value.
CALLS = [
    ({"id": "u", "op": "sin", "inputs": ["x"]}, np.sin(0.5)),  # one reference
    ({"id": "rr", "op": "mul", "inputs": ["x", "y"]}, 0.5 * 3.0),  # two references
    ({"id": "rc", "op": "sub", "inputs": ["x", 2.0]}, 0.5 - 2.0),  # reference, constant
    ({"id": "cr", "op": "sub", "inputs": [2.0, "y"]}, 2.0 - 3.0),  # constant, reference
    ({"id": "cc", "op": "pow", "inputs": [2.0, 3.0]}, 8.0),  # constants only
    ({"id": "c1", "op": "exp", "inputs": [0.0]}, 1.0),  # one constant
    ({"id": "at", "op": "sum", "inputs": ["v"], "attrs": {"axis": 0}}, 6.0),  # attrs
    ({"id": "n3", "op": "add_n", "inputs": ["x", "y", 1.0]}, 4.5),  # three inputs
]
LEAVES = [
    {"id": "x", "op": "variable", "value": 0.5},
    {"id": "y", "op": "variable", "value": 3.0},
    {"id": "v", "op": "constant", "value": [1.0, 2.0, 3.0]},
]


@pytest.mark.parametrize(("node", "want"), CALLS, ids=[n["id"] for n, _ in CALLS])
def test_every_call_shape_gives_its_ops_value(node, want):
    graph = build_graph([*LEAVES, node])
    out = graph.run(graph.leaf_values({}))
    assert out[node["id"]].value == pytest.approx(want, rel=1e-15)
    assert out[node["id"]].name == node["id"]


def test_a_recorded_run_differentiates_through_every_call_shape():
    nodes = [
        *LEAVES,
        *(n for n, _ in CALLS),
        {"id": "t", "op": "add_n", "inputs": ["u", "rr", "rc", "cr", "n3"]},
    ]
    graph = build_graph(nodes)
    leaves = graph.make_leaves(graph.leaf_values({}))
    with GradientTape() as tape:
        out = graph.run(leaves)
    gx, gy = tape.gradient(out["t"], [leaves["x"], leaves["y"]])
    # t = sin x + x y + (x - 2) + (2 - y) + (x + y + 1)
    assert float(gx) == pytest.approx(np.cos(0.5) + 3.0 + 1.0 + 1.0, rel=1e-15)
    assert float(gy) == pytest.approx(0.5 - 1.0 + 1.0, rel=1e-15)


def test_inline_constants_are_built_once_and_shared_by_every_run():
    graph = build_graph(
        [
            *LEAVES,
            {"id": "rc", "op": "sub", "inputs": ["x", 2.0]},
            {"id": "rr", "op": "mul", "inputs": ["rc", 4.0]},
        ]
    )
    values = graph.leaf_values({})
    graph.run(values)
    plan = {step[0]: step for step in graph.steps()}
    constant = plan["rc"][5]
    assert constant.name == "rc.inputs[1]" and constant.value == 2.0
    again = graph.run({**values, "x": np.float64(5.0)})
    assert graph.steps()[-1] is plan["rr"] and plan["rc"][5] is constant
    assert again["rr"].value == (5.0 - 2.0) * 4.0  # new leaf values, the same constants


def test_apply_gets_each_input_as_a_tensor_and_its_answer_is_the_node():
    graph = build_graph([*LEAVES, {"id": "cr", "op": "sub", "inputs": [2.0, "y"]}])
    seen = []

    def apply(nid, node, args):
        seen.append((nid, [a.name for a in args]))
        return args[0] - args[1]

    out = graph.run(graph.leaf_values({}), apply)
    assert seen == [("cr", ["cr.inputs[0]", "y"])]
    assert out["cr"].value == -1.0 and out["cr"].name == "cr"


def test_an_op_that_fails_at_run_time_is_named():
    graph = build_graph(
        [
            {"id": "x", "op": "variable", "value": [1.0, 2.0]},
            {"id": "bad", "op": "reshape", "inputs": ["x"], "attrs": {"shape": [3]}},
        ]
    )
    with pytest.raises(EngineError) as err:
        graph.run(graph.leaf_values({}))
    assert err.value.node == "bad"
