"""JSON graph -> validated DAG: any order, values, inline constants, and one test per error."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import OPS, OPS_FN, Tensor, Variable
from engine.errors import AttrError, EngineError, GraphError, LimitError, ShapeError
from engine.graphs.build import build_graph, check_node
from engine.graphs.graph import Graph, Limits, Node
from tests.engine.seed_graph import SEED


def evaluate(graph: Graph, values: dict | None = None) -> dict[str, Tensor]:
    return graph.run(graph.leaf_values(values or {}))


def assert_topological(graph: Graph) -> None:
    seen: set[str] = set()
    for nid in graph.order:
        refs = [x for x in graph.nodes[nid].inputs if isinstance(x, str)]
        assert set(refs) <= seen, nid
        seen.add(nid)


# ------------------------------------------------------------------ building


def test_contract_example_evaluates_to_its_reference_value():
    out = evaluate(build_graph(SEED))
    assert float(out["z"].value) == 2.0**2 + 3.0**3


@pytest.mark.parametrize("seed", range(5))
def test_nodes_may_come_in_any_order(seed):
    shuffled = SEED[:]
    random.Random(seed).shuffle(shuffled)
    graph = build_graph(shuffled)
    assert_topological(graph)
    assert float(evaluate(graph)["z"].value) == float(evaluate(build_graph(SEED))["z"].value)


def test_an_already_sorted_list_keeps_its_order():
    graph = build_graph(SEED)
    assert graph.order == tuple(n["id"] for n in SEED)
    assert list(graph.nodes) == list(graph.order)


def test_last_is_the_last_node_of_the_request_not_of_the_sort():
    graph = build_graph([SEED[4], *SEED[:4]])
    assert graph.last == "y3"
    assert graph.order[-1] == "z"


def test_leaves_are_the_variables_and_constants():
    nodes = [*SEED, {"id": "c", "op": "constant", "value": 1.0}]
    assert build_graph(nodes).leaves == ("x", "y", "c")


def test_request_values_override_a_leafs_own_value():
    graph = build_graph(SEED)
    out = evaluate(graph, {"x": 5.0})
    assert float(out["z"].value) == 5.0**2 + 3.0**3


def test_values_are_converted_to_float64_arrays():
    graph = build_graph(SEED)
    values = graph.leaf_values({"y": [[1, 2], [3, 4]]})
    assert values["y"].dtype == np.float64 and values["y"].shape == (2, 2)
    assert isinstance(values["x"], np.float64)
    out = graph.run(values)
    np.testing.assert_array_equal(out["z"].value, 2.0**2 + np.array([[1, 2], [3, 4]]) ** 3.0)


def test_non_finite_floats_are_values():
    graph = build_graph([{"id": "x", "op": "variable", "value": [float("nan"), float("inf")]}])
    assert np.isnan(graph.leaf_values({})["x"][0])


def test_inline_constants_are_numbers_and_nested_lists():
    graph = build_graph([
        {"id": "x", "op": "variable", "value": [1.0, 2.0]},
        {"id": "y", "op": "mul", "inputs": [[10.0, 100.0], "x"]},
    ])
    out = evaluate(graph)
    np.testing.assert_array_equal(out["y"].value, np.array([10.0, 100.0]) * [1.0, 2.0])


def test_inline_constants_accept_ndarrays():
    graph = build_graph([
        {"id": "x", "op": "variable", "value": np.arange(3)},
        {"id": "y", "op": "add", "inputs": ["x", np.ones(3, dtype=np.int32)]},
    ])
    np.testing.assert_array_equal(evaluate(graph)["y"].value, np.arange(3) + 1.0)


def test_run_makes_leaves_of_the_right_kind_with_names():
    graph = build_graph([
        {"id": "w", "op": "variable", "value": 1.0, "trainable": False},
        {"id": "c", "op": "constant", "value": 2.0},
        {"id": "s", "op": "add", "inputs": ["w", "c"]},
    ])
    out = evaluate(graph)
    assert isinstance(out["w"], Variable) and out["w"].trainable is False
    assert not isinstance(out["c"], Variable)
    assert [out[k].name for k in ("w", "c", "s")] == ["w", "c", "s"]


def test_run_twice_gives_independent_tensors():
    graph = build_graph(SEED)
    values = graph.leaf_values({})
    first, second = graph.run(values), graph.run(values)
    for nid in graph.order:
        assert first[nid] is not second[nid]
        np.testing.assert_array_equal(first[nid].value, second[nid].value)


def test_infer_shapes_follows_broadcasting():
    graph = build_graph(SEED)
    values = graph.leaf_values({"x": np.zeros((3, 1)), "y": np.zeros(4)})
    shapes = graph.infer_shapes(values, Limits())
    out = graph.run(values)
    assert shapes == {nid: out[nid].shape for nid in graph.order}


def chain(n: int) -> list[dict]:
    """n nodes: x, then n-1 additions of 1, given in reverse order."""
    nodes = [{"id": f"n{i}", "op": "add", "inputs": [f"n{i - 1}", 1]} for i in range(n - 1, 0, -1)]
    return [*nodes, {"id": "n0", "op": "variable", "value": 0.5}]


def check_chain(n: int) -> None:
    limits = Limits(max_nodes=n, max_total_elements=4 * n)
    graph = build_graph(chain(n), limits)
    values = graph.leaf_values({})
    graph.infer_shapes(values, limits)
    out = graph.run(values)
    assert graph.order[0] == "n0" and graph.last == "n0"
    assert float(out[f"n{n - 1}"].value) == 0.5 + (n - 1)


def test_a_long_chain_in_reverse_order_builds_and_runs():
    start = time.monotonic()
    check_chain(10**5)
    assert time.monotonic() - start < 30


@pytest.mark.slow
def test_a_million_node_chain_in_reverse_order_builds_and_runs():
    check_chain(10**6)


# ------------------------------------------------------------------ errors


def node(nid: str, op: str, *inputs, **extra) -> dict:
    out = {"id": nid, "op": op, **extra}
    if inputs:
        out["inputs"] = list(inputs)
    return out


X = node("x", "variable", value=1.0)
LONG_ID = "a" * 129
DEEP: list = [1.0]
for _ in range(Limits().max_value_depth):
    DEEP = [DEEP]

ERRORS = {
    "nodes not a list": ({"x": X}, GraphError, None, "nodes"),
    "no nodes": ([], GraphError, None, "nodes"),
    "node not an object": ([X, ["y"]], GraphError, None, "nodes[1]"),
    "id missing": ([{"op": "variable", "value": 1.0}], GraphError, None, "nodes[0].id"),
    "id not a string": ([node(7, "variable", value=1.0)], GraphError, None, "nodes[0].id"),
    "id starts with a digit": ([node("1x", "variable")], GraphError, None, "nodes[0].id"),
    "id has a space": ([node("a b", "variable")], GraphError, None, "nodes[0].id"),
    "id too long": ([node(LONG_ID, "variable")], GraphError, None, "nodes[0].id"),
    "duplicate id": ([X, node("x", "constant", value=2.0)], GraphError, "x", "id"),
    "unknown key": ([node("x", "variable", value=1.0, input=["y"])], GraphError, "x", "input"),
    "op missing": ([{"id": "x"}], GraphError, "x", "op"),
    "op not a string": ([node("x", ["add"])], GraphError, "x", "op"),
    "unknown op": ([X, node("y", "sinn", "x")], GraphError, "y", "op"),
    "leaf with inputs": ([X, node("c", "constant", "x", value=1.0)], GraphError, "c", "inputs"),
    "leaf with attrs": ([node("x", "variable", value=1.0, attrs={"axis": 0})],
                        AttrError, "x", "attrs"),
    "constant with trainable": ([node("c", "constant", value=1.0, trainable=False)],
                                GraphError, "c", "trainable"),
    "trainable not a bool": ([node("x", "variable", value=1.0, trainable="no")],
                             GraphError, "x", "trainable"),
    "op node with a value": ([X, node("y", "neg", "x", value=1.0)], GraphError, "y", "value"),
    "op node with trainable": ([X, node("y", "neg", "x", trainable=True)],
                               GraphError, "y", "trainable"),
    "inputs not a list": ([X, node("y", "neg", inputs="x")], GraphError, "y", "inputs"),
    "too few inputs": ([X, node("y", "add", "x")], GraphError, "y", "inputs"),
    "too many inputs for the arity": ([X, node("y", "neg", "x", "x")], GraphError, "y", "inputs"),
    "no inputs for a variadic op": ([X, node("y", "stack")], GraphError, "y", "inputs"),
    "dangling reference": ([X, node("y", "neg", "nope")], GraphError, "y", "inputs"),
    "self reference": ([X, node("y", "add", "x", "y")], GraphError, "y", "inputs"),
    "attrs not an object": ([X, node("s", "sum", "x", attrs=[0])], AttrError, "s", "attrs"),
    "unknown attr": ([X, node("s", "sum", "x", attrs={"axes": 0})], AttrError, "s", "attrs"),
    "attr of the wrong kind": ([X, node("s", "sum", "x", attrs={"axis": "0"})],
                               AttrError, "s", "attrs.axis"),
    "required attr missing": ([X, node("r", "reshape", "x")], AttrError, "r", "attrs.shape"),
    "null value": ([node("x", "variable", value=None)], GraphError, "x", "value"),
    "boolean value": ([node("x", "variable", value=True)], GraphError, "x", "value"),
    "string value": ([node("x", "variable", value="1.5")], GraphError, "x", "value"),
    "object value": ([node("x", "variable", value={"a": 1})], GraphError, "x", "value"),
    "complex value": ([node("x", "variable", value=1j)], GraphError, "x", "value"),
    "ragged value": ([node("x", "variable", value=[[1, 2], [3]])], GraphError, "x", "value"),
    "scalar beside a list": ([node("x", "variable", value=[1, [2]])], GraphError, "x", "value"),
    "number too large": ([node("x", "variable", value=[10**400])], GraphError, "x", "value"),
    "value nested too deep": ([node("x", "variable", value=DEEP)], GraphError, "x", "value"),
    "boolean array": ([node("x", "variable", value=np.array([True]))], GraphError, "x", "value"),
    "boolean inline constant": ([X, node("y", "add", "x", False)], GraphError, "y", "inputs"),
    "null inline constant": ([X, node("y", "add", "x", None)], GraphError, "y", "inputs"),
    "ragged inline constant": ([X, node("y", "add", "x", [[1], []])], GraphError, "y", "inputs"),
}
SMALL = Limits(max_nodes=3, max_inputs=3, max_value_depth=4, max_elements=8)
LIMIT_ERRORS = {
    "too many nodes": ([X, *(node(f"n{i}", "neg", "x") for i in range(3))], None, "nodes"),
    "too many inputs": ([X, node("s", "stack", "x", "x", "x", "x")], "s", "inputs"),
    "value too large": ([node("x", "variable", value=list(range(9)))], "x", "value"),
    "inline constant too large": ([X, node("y", "add", "x", [[0] * 3] * 3)], "y", "inputs"),
}


@pytest.mark.parametrize("nodes, cls, nid, field", ERRORS.values(), ids=ERRORS.keys())
def test_invalid_graphs_raise_an_error_naming_the_node(nodes, cls, nid, field):
    with pytest.raises(cls) as info:
        build_graph(nodes)
    assert type(info.value) is cls
    assert (info.value.node, info.value.field) == (nid, field)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("nodes, nid, field", LIMIT_ERRORS.values(), ids=LIMIT_ERRORS.keys())
def test_graphs_over_the_limits_raise_limit_errors(nodes, nid, field):
    with pytest.raises(LimitError) as info:
        build_graph(nodes, SMALL)
    assert (info.value.node, info.value.field) == (nid, field)


def decoded(raw: dict, _index: int, limits: Limits) -> Node:
    """A node as the web layer hands it over: form checked, values decoded to float64."""
    def f64(x):
        return x if isinstance(x, str) else np.asarray(x, dtype=np.float64)[()]

    value = raw.get("value")
    return check_node(raw["id"], raw["op"], [f64(x) for x in raw.get("inputs", ())],
                      raw.get("attrs", {}), None if value is None else f64(value),
                      raw.get("trainable"), limits)


def test_decoded_nodes_build_the_same_graph():
    graph, raw = build_graph(SEED, parse=decoded), build_graph(SEED)
    assert graph.order == raw.order and graph.leaves == raw.leaves
    assert float(evaluate(graph)["z"].value) == float(evaluate(raw)["z"].value)


def test_a_decoded_value_is_held_read_only_without_a_copy():
    value = np.array([1.0, 2.0])
    x = check_node("x", "variable", (), {}, value, None, Limits())
    assert x.value is value and not value.flags.writeable


@pytest.mark.parametrize("nodes, cls, nid, field", [
    ([node("x", "variable", attrs={"axis": 0}, value=1.0)], AttrError, "x", "attrs"),
    ([X, node("y", "neg", "x", value=1.0)], GraphError, "y", "value"),
    ([X, node("y", "neg", "x", trainable=False)], GraphError, "y", "trainable"),
    ([node("c", "constant", value=1.0, trainable=True)], GraphError, "c", "trainable"),
    ([X, node("y", "sinn", "x")], GraphError, "y", "op"),
    ([X, node("y", "add", "x")], GraphError, "y", "inputs"),
    ([X, node("s", "sum", "x", attrs={"axes": 0})], AttrError, "s", "attrs"),
])
def test_decoded_nodes_are_still_checked_for_meaning(nodes, cls, nid, field):
    with pytest.raises(cls) as info:
        build_graph(nodes, parse=decoded)
    assert (info.value.node, info.value.field) == (nid, field)


@pytest.mark.parametrize("nodes, nid, field", LIMIT_ERRORS.values(), ids=LIMIT_ERRORS.keys())
def test_decoded_nodes_are_held_to_the_limits(nodes, nid, field):
    with pytest.raises(LimitError) as info:
        build_graph(nodes, SMALL, parse=decoded)
    assert (info.value.node, info.value.field) == (nid, field)


def test_unknown_op_suggests_close_names():
    with pytest.raises(GraphError, match="did you mean .*sin"):
        build_graph([X, node("y", "sinn", "x")])


def test_errors_never_echo_a_huge_input():
    with pytest.raises(GraphError) as info:
        build_graph([X, node("y", "neg", "q" * 100_000)])
    assert len(str(info.value)) < 300


def test_a_cycle_is_reported_at_a_node_on_the_cycle():
    nodes = [
        X,
        node("a", "add", "x", "c"),
        node("b", "neg", "a"),
        node("c", "neg", "b"),
        node("after", "neg", "c"),  # downstream of the cycle, not on it
    ]
    with pytest.raises(GraphError, match="cycle") as info:
        build_graph(nodes[::-1])
    assert info.value.node in {"a", "b", "c"}
    assert info.value.field == "inputs"


def test_a_two_node_cycle_is_found():
    with pytest.raises(GraphError, match="cycle") as info:
        build_graph([node("a", "neg", "b"), node("b", "neg", "a")])
    assert info.value.node in {"a", "b"}


def test_a_long_cycle_is_found_without_recursion():
    n = 50_000
    nodes = [node(f"n{i}", "neg", f"n{(i + 1) % n}") for i in range(n)]
    with pytest.raises(GraphError, match="cycle"):
        build_graph(nodes, Limits(max_nodes=n))


def test_leaf_without_any_value_is_reported_by_leaf_values():
    graph = build_graph([node("x", "variable"), node("y", "neg", "x")])
    with pytest.raises(GraphError) as info:
        graph.leaf_values({})
    assert (info.value.node, info.value.field) == ("x", "values")


@pytest.mark.parametrize("key", ["nope", "z"])
def test_values_for_a_non_leaf_are_rejected(key):
    with pytest.raises(GraphError) as info:
        build_graph(SEED).leaf_values({key: 1.0})
    assert (info.value.node, info.value.field) == (key, "values")


@pytest.mark.parametrize("bad", [[[1], [2, 3]], "2", True, None, {"v": 1}])
def test_bad_request_values_name_the_leaf(bad):
    with pytest.raises(GraphError) as info:
        build_graph(SEED).leaf_values({"x": bad})
    assert (info.value.node, info.value.field) == ("x", "values")


def test_shape_mismatch_names_the_node():
    graph = build_graph(SEED)
    values = graph.leaf_values({"x": np.zeros(3), "y": np.zeros(4)})
    with pytest.raises(ShapeError) as info:
        graph.infer_shapes(values, Limits())
    assert info.value.node == "z"


def test_a_huge_shape_is_refused_before_allocation():
    graph = build_graph([X, node("b", "broadcast_to", "x", attrs={"shape": [10**6, 10**6]})])
    start = time.monotonic()
    with pytest.raises(LimitError) as info:
        graph.infer_shapes(graph.leaf_values({}), Limits())
    assert info.value.node == "b"
    assert time.monotonic() - start < 1


def test_the_total_element_limit_counts_every_node():
    graph = build_graph([node("x", "variable", value=[0.0] * 4), node("y", "neg", "x")])
    values = graph.leaf_values({})
    graph.infer_shapes(values, Limits(max_total_elements=8))
    with pytest.raises(LimitError) as info:
        graph.infer_shapes(values, Limits(max_total_elements=7))
    assert info.value.node == "y"


# ------------------------------------------------------------------ property

OP_NAMES = [*OPS, "variable", "constant", "nope"]
IDS = st.sampled_from(["a", "b", "c", "x", "1x", ""]) | st.text(max_size=4)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=3),
    max_leaves=12,
)
ATTR_NAMES = st.sampled_from(["axis", "keepdims", "shape", "perm", "begin", "end", "step", "q"])
NODE = st.fixed_dictionaries(
    {"id": IDS, "op": st.sampled_from(OP_NAMES)},
    optional={
        "inputs": st.lists(IDS | JSON, max_size=4) | JSON,
        "attrs": st.dictionaries(ATTR_NAMES, JSON, max_size=3) | JSON,
        "value": JSON,
        "trainable": st.booleans() | JSON,
    },
)
TINY = Limits(max_nodes=8, max_elements=64, max_total_elements=1024)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(NODE | JSON, max_size=6) | JSON, values=st.dictionaries(IDS, JSON))
def test_any_input_builds_or_raises_an_engine_error(nodes, values):
    try:
        graph = build_graph(nodes, TINY)
        leaf_values = graph.leaf_values(values)
        graph.infer_shapes(leaf_values, TINY)
        out = graph.run(leaf_values)
    except EngineError:
        return
    assert set(out) == set(graph.order)
    assert all(callable(OPS_FN[graph.nodes[n].op]) for n in graph.order if n not in graph.leaves)


# Mostly valid graphs over a few ids, so shape inference and run() are reached too.
FLOATS = st.floats(-3, 3)
VALUES = st.one_of(
    FLOATS,
    st.lists(FLOATS, min_size=1, max_size=3),
    st.lists(st.lists(FLOATS, min_size=2, max_size=2), min_size=1, max_size=2),
)
REF = st.sampled_from(["a", "b", "c", "d", "e"])
ATTR_VALUES = st.integers(-3, 3) | st.booleans() | st.none() | st.lists(st.integers(-2, 4),
                                                                        max_size=3)
LEAF = st.builds(
    lambda nid, op, value: {"id": nid, "op": op, "value": value},
    REF, st.sampled_from(["variable", "constant"]), VALUES,
)
OP_NODE = st.builds(
    lambda nid, op, inputs, attrs: {"id": nid, "op": op, "inputs": inputs, "attrs": attrs},
    REF, st.sampled_from(sorted(OPS)), st.lists(REF | VALUES, min_size=1, max_size=3),
    st.dictionaries(ATTR_NAMES, ATTR_VALUES, max_size=2),
)
GRAPHS = st.lists(LEAF | OP_NODE, min_size=1, max_size=6, unique_by=lambda n: n["id"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=GRAPHS)
def test_inferred_shapes_are_the_shapes_run_computes(nodes):
    try:
        graph = build_graph(nodes, TINY)
        leaf_values = graph.leaf_values({})
        shapes = graph.infer_shapes(leaf_values, TINY)
        out = graph.run(leaf_values)
    except EngineError:
        return
    assert_topological(graph)
    assert {nid: out[nid].shape for nid in graph.order} == shapes
