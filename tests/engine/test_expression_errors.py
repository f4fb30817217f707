"""Typed math that cannot be read: each error names the column and says what to write;
and the bounds on what a text may make the parser do."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import EngineError, ExpressionError, LimitError
from engine.graphs.expression import parse_expression, parse_named
from engine.graphs.graph import Limits

# (text, words the message must hold, where it points)
ERRORS = [
    ("sinn(x)", "unknown function sinn; did you mean sin", "column 1"),
    ("Sin(x)", "did you mean sin?", "column 1"),
    ("lnn x + 1", None, None),  # a variable lnn then x: valid, checked below
    (
        "e(x + 1)",
        "e is the constant e = 2.71828...; write e*(...) for a product, or exp(...)",
        "column 1",
    ),
    ("2 pi(x)", "pi is the constant pi = 3.14159...; write pi*(...)", "column 3"),
    ("x(y + 1)", "x is not a function; for a product write x*(...) or x (...)", "column 1"),
    (
        "max(x, 0, 1)",
        "max takes one argument (its largest entry: max(x), max(x, axis=0)) or "
        "two (maximum of each pair: max(x, 0)), got 3",
        "column 1",
    ),
    ("min()", "min() needs an argument", "column 4"),
    (
        "sum(x, y)",
        "the axis of sum is a whole number, as in sum(x, 0) or sum(x, axis=-1)",
        "column 8",
    ),
    ("mean(x, 0.5)", "the axis of mean is a whole number", "column 9"),
    ("sin(x, axis=0)", "sin takes no axis", "column 13"),
    ("sin(x, y)", "sin takes 1 argument, got 2", "column 1"),
    ("atan2(x)", "atan2 takes 2 arguments, got 1", "column 1"),
    ("log10(x, y)", "log10 takes 1 argument, got 2", "column 1"),
    (
        "sum(x, keepdims=1)",
        "sum() takes positional arguments only, and axis= for reductions",
        "column 8",
    ),
    ("sin -x", "sin needs an argument right after it: sin(x) or sin x", "column 1"),
    ("sum + 1", "sum needs an argument right after it", "column 1"),
    (
        "sin^-1 x",
        "sin^k x takes a whole number k >= 0, as in sin^2 x; write sin(x)^-1 for any other "
        "power; for the inverse write asin(x) or arcsin(x)",
        "column 4",
    ),
    ("x^^2", "an operand is missing before ^", "column 3"),
    ("exp^-1 x", "exp^k x takes a whole number k >= 0, as in exp^2 x; write exp(x)^-1", "column 4"),
    (
        "sin⁻¹ x",
        "sin^k x takes a whole number k >= 0, as in sin^2 x; write sin(x)^-1 for any other "
        "power; for the inverse write asin(x) or arcsin(x)",
        "column 4",
    ),
    ("² + x", "an operand is missing before ²", "column 1"),
    ("x" + "⁹" * 400, "the number is too large for float64", "column 2"),
    ("x * 1e309", "the number is too large for float64", "column 5"),
    ("x + 1" + "0" * 400 + ".5", "the number is too large for float64", "column 5"),
    ("x +", "the expression ends where an operand should be", "column 4"),
    ("x * / y", "an operand is missing before /", "column 5"),
    ("2 3", "a number right after an operand; for a product write *3, for a power ^3", "column 3"),
    ("(x + 1", "( is never closed", "column 1"),
    ("|x + 1", "| is never closed", "column 1"),
    ("x + 1)", "unmatched )", "column 6"),
    ("()", "empty parentheses", "column 1"),
    ("1j * x", "complex numbers are not supported", "column 2"),
    ("\u03b1 + 1", "names are ASCII letters, digits and _: write alpha", "column 1"),
    ("x % 2", "% (modulo) is not allowed", "column 3"),
    ("x // 2", "floor(x / y) gives it", "column 3"),
    ("x < 2", "a comparison is not allowed", "column 3"),
    ("x + y = 2", "= can only name the whole expression, at its start: g = x^2", "column 7"),
    ("x, y", "a comma only separates a call's arguments", "column 2"),
    ("x[0]", "indexing is not allowed", "column 1"),
    ("2 + x.real", "attribute access is not allowed", "column 5"),
    ("'a'", "a string is not allowed", "column 1"),
    ("x if y else z", "'if' is not allowed", "column 3"),
    ("~x", "unary ~ is not allowed; only - and +", "column 1"),
    ("variable * 2", "'variable' is a reserved word", "column 1"),
    ("x; y", "; is not allowed: one expression per text", "column 2"),
    ("(x +\n  y[0])", "indexing is not allowed", "line 2, column 3"),
]


@pytest.mark.parametrize(
    ("text", "says", "where"), [e for e in ERRORS if e[1]], ids=[e[0] for e in ERRORS if e[1]]
)
def test_each_error_says_the_fix_and_points_at_the_column(text, says, where):
    with pytest.raises(ExpressionError) as info:
        parse_named(text)
    message = str(info.value)
    assert says in message
    assert message.endswith(f"({where})")
    assert info.value.field == "expression"


def test_adjacent_letters_are_one_name():
    graph = parse_named("lnn x + 1").graph
    assert list(graph.leaves) == ["lnn", "x"]


@pytest.mark.parametrize(
    ("texts", "field", "says"),
    [
        ("x = x + 1", "expression", "x names an output and is a variable too"),
        ("sin = x", "expression", "sin cannot name an output: it is a function"),
        ("e = x", "expression", "e cannot name an output: it is a constant"),
        ("f * g * h", "expression", "the text uses f, g and h as variables; name the output"),
        ({}, "expressions", "expressions is empty"),
        (
            {"u": "v = x"},
            "expressions.u",
            "expressions.u: the text names its output v, not its key",
        ),
        ({"u": "x", "v": "u + 1"}, "expressions.u", "u names an output and is a variable too"),
        ({"u": "x +"}, "expressions.u", "expressions.u: the expression ends where an operand"),
        ({"u": "x", "1v": "x"}, "expressions.1v", "output name '1v' is not a valid node id"),
    ],
)
def test_output_names_are_checked(texts, field, says):
    with pytest.raises(ExpressionError) as info:
        parse_named(texts)
    assert says in str(info.value)
    assert info.value.field == field


@pytest.mark.parametrize("name", ["e", "pi"])
def test_a_value_for_a_constant_is_refused_not_used(name):
    with pytest.raises(ExpressionError) as info:
        parse_named(f"{name} * x", given={"x", name})
    assert f"{name} is the constant {name} = " in str(info.value)
    assert "values cannot set it; call the variable something else" in str(info.value)
    assert info.value.field == f"values.{name}"
    with pytest.raises(ExpressionError) as unused:  # not in the text: still the constant
        parse_named("e * x", given={"x", "pi"})
    assert "pi is the constant pi = " in str(unused.value) and "not a node" not in str(unused.value)


def test_the_output_is_f_g_names_it_and_several_share_variables():
    assert parse_named("x^2").outputs == ("f",)
    assert parse_named("f x").outputs == ("g",)
    named = parse_named("speed(t) = 3t^2")
    assert named.outputs == ("speed",) and named.graph.nodes["speed"].op == "mul"
    both = parse_named({"u": "x y", "v": "x + y", "w": "x", "c": "2"})
    assert both.outputs == ("u", "v", "w", "c")
    nodes = both.graph.nodes
    assert [nodes[n].op for n in both.outputs] == ["mul", "add", "identity", "constant"]
    assert [n for n in both.graph.leaves if nodes[n].op == "variable"] == ["x", "y"]


def test_constants_are_constant_nodes_not_variables():
    graph = parse_named("e^x + pi + π").graph
    assert graph.nodes["e"].op == graph.nodes["pi"].op == "constant"
    assert [n for n in graph.leaves if graph.nodes[n].op == "variable"] == ["x"]


# ------------------------------------------------------------------ bounds

BIG = Limits(max_expression_length=10**6, max_nodes=10**6)


@pytest.mark.parametrize(
    ("text", "cls", "says"),
    [
        ("x^" * 300 + "x", ExpressionError, "too deeply nested to parse (more than 200 levels)"),
        ("sin " * 300 + "x", ExpressionError, "too deeply nested to parse"),
        ("|" * 300 + "x" + "|" * 300, ExpressionError, "too deeply nested to parse"),
        ("x+" * 2500 + "x", ExpressionError, "a chain of more than 2000 operations"),
        ("x " * 2500 + "x", ExpressionError, "a chain of more than 2000 operations"),
        ("(" * 65 + "x" + ")" * 65, LimitError, "brackets nested deeper than 64"),
        ("\u2212" * 65 + "x", LimitError, "more than 64 signs in a row"),
    ],
    ids=[
        "power tower",
        "function tower",
        "bars",
        "sum chain",
        "implicit chain",
        "brackets",
        "unicode minus",
    ],
)
def test_deep_text_is_a_typed_error_not_a_crash(text, cls, says):
    with pytest.raises(cls) as info:
        parse_named(text, BIG)
    assert type(info.value) is cls and says in str(info.value)


def test_the_length_limit_counts_every_expression_together():
    limits = Limits(max_expression_length=20)
    parse_named({"u": "x" * 10, "v": "y" * 10}, limits)
    with pytest.raises(LimitError, match="21 characters in all, over the limit of 20"):
        parse_named({"u": "x" * 10, "v": "y" * 11}, limits)


def test_the_node_limit_counts_every_expression_together():
    with pytest.raises(LimitError, match="10 nodes, over the limit of 9"):
        parse_named({"u": "x+x+x+x+x", "v": "y+y+y+y+y"}, Limits(max_nodes=9))


def test_a_constant_power_tower_is_not_folded():
    graph = parse_expression("2^2^2^2^2^2")
    assert [n.op for n in graph.nodes.values()].count("pow") == 5


def _python_calls(text: str) -> int:
    """Python function calls made parsing ``text``: a count, not a timing, so the test
    says the same on a loaded machine."""
    calls = 0

    def count(_frame, event, _arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        parse_named(text, BIG)
    finally:
        sys.setprofile(None)
    return calls


def test_implicit_multiplication_parses_in_linear_work():
    # 1500 factors (near the chain bound) and 4 times fewer: the work grows 4 times, not 16
    factor = "(x+1)(y-2) x sin x |x| "
    small, large = _python_calls(factor * 75), _python_calls(factor * 300)
    assert 3.5 * small < large < 4.5 * small


DEEPEST = {
    "functions without parentheses": "sin " * 199 + "x",
    "calls": "sin(" * 199 + "x" + ")" * 199,
    "brackets, bars and signs": "-|(" * 70 + "x" + ")|" * 70,
    "powers": "x^" * 199 + "x",
}


@pytest.mark.parametrize("text", DEEPEST.values(), ids=DEEPEST.keys())
def test_the_deepest_text_fits_in_600_frames_of_stack(text):
    limits = Limits(max_expression_length=10**6, max_expression_depth=10**4)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 600)
    try:
        parse_named(text, limits)
    except ExpressionError as e:
        assert "too deeply nested" in str(e)
    finally:
        sys.setrecursionlimit(old)


def test_a_parse_that_runs_out_of_stack_is_still_a_typed_error():
    limits = Limits(max_expression_length=10**6, max_expression_depth=10**4)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)
    try:
        with pytest.raises(ExpressionError, match="too deeply nested to parse"):
            parse_named("(" * 150 + "x" + ")" * 150, limits)
    finally:
        sys.setrecursionlimit(old)


TYPED = st.sampled_from(
    [
        "x",
        "y",
        "e",
        "pi",
        "π",
        "f",
        "g = ",
        "f(x) = ",
        "(",
        ")",
        "|",
        "+",
        "-",
        "−",
        "*",
        "×",
        "·",
        "/",
        "÷",
        "^",
        "**",
        "²",
        "³",
        "√",
        ",",
        "2",
        "0.5",
        "1e3",
        "2e",
        "sin",
        "sin^2 ",
        "ln",
        "log10",
        "max",
        "sum",
        "mean",
        "atan2",
        "axis=",
        "=",
        " ",
        "\n",
        "1j",
        "α",
        "_1",
        "[",
        ".",
        "%",
        "sec",
        "abs",
        "-1",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(TYPED, max_size=30).map("".join))
def test_any_typed_text_parses_or_raises_an_engine_error(text):
    try:
        graph = parse_named(text).graph
        values = {n: np.array([0.5, 2.0]) for n in graph.leaves if graph.nodes[n].op == "variable"}
        leaf_values = graph.leaf_values(values)
        graph.infer_shapes(leaf_values, Limits())
        graph.run(leaf_values)
    except EngineError:
        return


def test_the_length_is_checked_before_any_scan_of_the_text(monkeypatch):
    from engine.graphs import expression

    class Untouchable:
        def match(self, text: str) -> None:
            raise AssertionError("the text was scanned before its length was checked")

    monkeypatch.setattr(expression, "_NAMED", Untouchable())
    with pytest.raises(LimitError, match="1000002 characters, over the limit of 10000"):
        parse_named("a(" + "b," * 500_000)
    with pytest.raises(LimitError, match="characters in all"):
        parse_named({"u": "a(" + "b," * 5_000, "v": "x"})
