"""Infix text -> Graph: the accepted grammar, equivalence with JSON graphs, hostile input."""

from __future__ import annotations

import builtins
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import OPS, OPS_FN, Variable
from engine.errors import EngineError, ExpressionError, GraphError, LimitError
from engine.graphs.build import build_graph
from engine.graphs.expression import callable_ops, parse_expression
from engine.graphs.graph import Graph, Limits
from tests.engine.seed_graph import SEED

X = np.array([0.5, 1.5, 2.0])
Y = np.array([1.2, 0.7, 3.0])


def evaluate(graph: Graph, **values) -> np.ndarray:
    out = graph.run(graph.leaf_values(values))
    return np.asarray(out[graph.last].value)


def needs(*ops: str):
    missing = [op for op in ops if op not in OPS]
    return pytest.mark.skipif(bool(missing), reason=f"ops not registered yet: {missing}")


GRAMMAR = [
    ("x**2 + y**3", lambda x, y: x**2 + y**3),
    ("x*y - x/y", lambda x, y: x * y - x / y),
    ("-x + +y", lambda x, y: -x + y),
    ("2 * x ** -2", lambda x, y: 2 * x**-2.0),
    ("(x + 1) * (y - 2.5)", lambda x, y: (x + 1) * (y - 2.5)),
    ("x ** y ** 0.5", lambda x, y: x ** (y**0.5)),
    ("1e-3 * x - -y", lambda x, y: 1e-3 * x + y),
    ("sin(x) * cos(y) + exp(-x) + log(y)",
     lambda x, y: np.sin(x) * np.cos(y) + np.exp(-x) + np.log(y)),
    ("abs(x - y) + sign(x - 1)", lambda x, y: np.abs(x - y) + np.sign(x - 1)),
    ("sum(x * y) / 3", lambda x, y: np.sum(x * y) / 3),
    ("pow(x, y)", lambda x, y: x**y),
    ("(\n  x\n  + y\n)", lambda x, y: x + y),
    pytest.param("x @ y", lambda x, y: x @ y, marks=needs("matmul")),
    pytest.param("tanh(x) @ y", lambda x, y: np.tanh(x) @ y, marks=needs("tanh", "matmul")),
    pytest.param("maximum(x, y) - minimum(x, y)", lambda x, y: np.abs(x - y),
                 marks=needs("maximum", "minimum")),
    pytest.param("atan2(y, x)", lambda x, y: np.arctan2(y, x), marks=needs("atan2")),
]


@pytest.mark.parametrize("text, reference", GRAMMAR)
def test_the_grammar_computes_what_numpy_computes(text, reference):
    graph = parse_expression(text)
    values = {name: value for name, value in {"x": X, "y": Y}.items() if name in graph.leaves}
    np.testing.assert_allclose(evaluate(graph, **values), reference(X, Y), rtol=1e-13)


def test_the_contract_example_is_the_contracts_json_graph():
    parsed, built = parse_expression("x**2 + y**3"), build_graph(SEED)
    assert [n.op for n in parsed.nodes.values()] == [n.op for n in built.nodes.values()]
    assert parsed.leaves == built.leaves == ("x", "y")
    values = {"x": 2.0, "y": 3.0}
    assert evaluate(parsed, **values) == np.asarray(built.run(built.leaf_values({}))["z"].value)


@pytest.mark.parametrize("name", callable_ops(1))
def test_every_one_input_op_without_required_attrs_can_be_called(name):
    op = OPS[name]
    case = next((c for c in op.cases if not c.attrs), op.cases[0])  # the default attrs
    rng = np.random.default_rng(0)
    if op.sample is not None:
        x = op.sample(rng, case.shapes)[0]
    else:
        x = rng.uniform(op.domain(0).low, op.domain(0).high, case.shapes[0])
    graph = parse_expression(f"{name}(x)")
    assert graph.nodes[graph.last].op == name
    expected = OPS_FN[name](Variable(x)).value
    np.testing.assert_array_equal(evaluate(graph, x=x), expected)


@pytest.mark.parametrize("name", callable_ops(2))
def test_every_two_input_op_without_required_attrs_can_be_called(name):
    graph = parse_expression(f"{name}(a, b)")
    node = graph.nodes[graph.last]
    assert (node.op, node.inputs) == (name, ("a", "b"))


def test_each_distinct_name_is_one_variable_in_order_of_appearance():
    graph = parse_expression("y * x + y")
    assert graph.leaves == ("y", "x")
    assert all(graph.nodes[n].op == "variable" for n in graph.leaves)
    assert all(graph.nodes[n].value is None for n in graph.leaves)


def test_a_name_without_a_value_is_reported_by_leaf_values():
    graph = parse_expression("x + y")
    with pytest.raises(GraphError) as info:
        graph.leaf_values({"x": 1.0})
    assert (info.value.node, info.value.field) == ("y", "values")


def test_generated_ids_avoid_the_names_the_text_uses():
    graph = parse_expression("_1 * _2 + _3")
    assert graph.leaves == ("_1", "_2", "_3")
    assert len(graph.nodes) == 5
    assert evaluate(graph, _1=2.0, _2=3.0, _3=4.0) == 2.0 * 3.0 + 4.0


def test_ids_are_deterministic_and_the_last_node_is_the_whole_expression():
    first, second = parse_expression("sin(x) * x"), parse_expression("sin(x) * x")
    assert first.order == second.order
    assert first.last == first.order[-1] and first.nodes[first.last].op == "mul"


def test_a_negative_literal_is_a_constant_not_a_negation():
    graph = parse_expression("x ** -2")
    node = graph.nodes[graph.last]
    assert node.op == "pow" and float(node.inputs[1].value) == -2.0


def test_a_bare_name_is_its_variable():
    graph = parse_expression("+x")
    assert graph.order == ("x",) and graph.last == "x"


@pytest.mark.parametrize("text, expected", [("2", 2.0), ("2 ** 3 - 1", 2.0**3 - 1), ("-(4)", -4.0)])
def test_an_expression_without_names_is_a_constant(text, expected):
    graph = parse_expression(text)
    assert graph.leaves == tuple(n for n in graph.order if graph.nodes[n].op == "constant")
    assert evaluate(graph) == expected


def test_the_parser_never_evaluates(monkeypatch):
    calls = []
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    for text in ["__import__('os').system('x')", "eval('1')", "x**2"]:
        try:
            parse_expression(text)
        except ExpressionError:
            pass
    assert calls == []


BIG = Limits(max_expression_length=10**6)
HOSTILE = {
    "import": ("__import__('os').system('x')", ExpressionError, Limits()),
    "dunder attribute": ("x.__class__", ExpressionError, Limits()),
    "lambda": ("(lambda: 1)()", ExpressionError, Limits()),
    "comprehension": ("[x for x in y]", ExpressionError, Limits()),
    "string": ('"a"', ExpressionError, Limits()),
    "bytes": ("b'a'", ExpressionError, Limits()),
    "f-string": ("f'{x}'", ExpressionError, Limits()),
    "conditional": ("x if y else z", ExpressionError, Limits()),
    "subscript": ("x[0]", ExpressionError, Limits()),
    "keyword argument": ("sin(x=1)", ExpressionError, Limits()),
    "starred argument": ("sin(*x)", ExpressionError, Limits()),
    "comparison": ("1 < 2", ExpressionError, Limits()),
    "boolean": ("True", ExpressionError, Limits()),
    "none": ("None", ExpressionError, Limits()),
    "complex": ("1j * x", ExpressionError, Limits()),
    "ellipsis": ("...", ExpressionError, Limits()),
    "and/or": ("x or y", ExpressionError, Limits()),
    "not": ("not x", ExpressionError, Limits()),
    "invert": ("~x", ExpressionError, Limits()),
    "floor division": ("x // 2", ExpressionError, Limits()),
    "modulo": ("x % 2", ExpressionError, Limits()),
    "walrus": ("(y := x)", ExpressionError, Limits()),
    "tuple": ("x, y", ExpressionError, Limits()),
    "dict": ("{1: x}", ExpressionError, Limits()),
    "statement": ("x = 1", ExpressionError, Limits()),
    "two statements": ("x; y", ExpressionError, Limits()),
    "await": ("await x", ExpressionError, Limits()),
    "syntax error": ("x +", ExpressionError, Limits()),
    "unbalanced": ("(x", ExpressionError, Limits()),
    "empty": ("   ", ExpressionError, Limits()),
    "null byte": ("x\x00", ExpressionError, Limits()),
    "unknown function": ("tanhh(x)", ExpressionError, Limits()),
    "call of a variable": ("x(y)", ExpressionError, Limits()),
    "method call": ("x.sin()", ExpressionError, Limits()),
    "wrong argument count": ("sin(x, y)", ExpressionError, Limits()),
    "op needing attrs": ("reshape(x)", ExpressionError, Limits()),
    "function as a value": ("sum + 1", ExpressionError, Limits()),
    "leaf op as a name": ("variable * 2", ExpressionError, Limits()),
    "non-ascii name": ("\u03b1 + 1", ExpressionError, Limits()),
    "huge integer": ("9" * 400 + " * x", ExpressionError, Limits()),
    "integer past the digit limit": ("9" * 5000, ExpressionError, Limits()),
    "long flat chain": ("x+" * 4999 + "x", ExpressionError, Limits()),
    "deep power chain": ("x**-" * 2000 + "x", ExpressionError, Limits()),
    "10^6 characters": ("x" * 10**6, LimitError, Limits()),
    "10^5 parens, default length": ("(" * 10**5 + "x" + ")" * 10**5, LimitError, Limits()),
    "10^5 parens": ("(" * 10**5 + "x" + ")" * 10**5, LimitError, BIG),
    "10^5 open parens": ("(" * 10**5, LimitError, BIG),
    "10^5 minus signs": ("-" * 10**5 + "x", LimitError, BIG),
    "65 nested calls": ("sin(" * 65 + "x" + ")" * 65, LimitError, Limits()),
    "65 signs": ("-+" * 33 + "x", LimitError, Limits()),
}


@pytest.mark.parametrize("text, cls, limits", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_a_typed_error(text, cls, limits):
    with pytest.raises(cls) as info:
        parse_expression(text, limits)
    assert type(info.value) is cls
    assert (info.value.node, info.value.field) == (None, "expression")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("text", [b"x", None, 3, ["x"]])
def test_text_that_is_not_a_string_is_an_expression_error(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_errors_give_the_column():
    with pytest.raises(ExpressionError, match="column 5"):
        parse_expression("x + y.z")
    with pytest.raises(ExpressionError, match="line 2, column 3"):
        parse_expression("(x +\n  y[0])")


def test_unknown_function_suggests_close_names():
    with pytest.raises(ExpressionError, match="did you mean .*sin"):
        parse_expression("sinn(x)")


def test_nesting_up_to_the_limit_is_fine():
    depth = Limits().max_expression_depth
    graph = parse_expression("sin(" * (depth - 1) + "(x)" + ")" * (depth - 1))
    assert len(graph.nodes) == depth
    assert len(parse_expression("-" * depth + "x").nodes) == depth + 1


def test_the_node_limit_applies_to_expressions():
    with pytest.raises(LimitError):
        parse_expression("x" + "+x" * 20, Limits(max_nodes=10))


# ------------------------------------------------------------------ property

TOKENS = st.sampled_from([
    "x", "y", "_1", "(", ")", "+", "-", "*", "/", "**", "@", ",", "2", "0.5", "1e400", "sin",
    "sum", "pow", "tanh", "[", "]", ".", ":", "lambda", "'", "=", "<", "not", " ", "\n",
    "__import__", "if", "else", "{", "}", "*x", "j", "\x00", "\u03b1",
])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=200) | st.lists(TOKENS, max_size=40).map("".join))
def test_any_text_parses_or_raises_an_engine_error(text):
    try:
        graph = parse_expression(text)
        values = {n: np.array([0.5, 2.0]) for n in graph.leaves
                  if graph.nodes[n].op == "variable"}
        leaf_values = graph.leaf_values(values)
        graph.infer_shapes(leaf_values, Limits())
        graph.run(leaf_values)
    except EngineError:
        return
