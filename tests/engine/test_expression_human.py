"""Math typed as people type it: each text's value and gradient equal SymPy's for the same
math written in SymPy's own syntax, at random points."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from engine.derive import derivatives
from engine.derive.query import Query
from engine.graphs.expression import parse_named

# (as typed, the same math in SymPy's syntax, (low, high) of every variable's points)
UNIT = (0.2, 0.9)
TABLE = [
    ("x^2", "x**2", UNIT),
    ("2x", "2*x", UNIT),
    ("3x^2 + 2x - 1", "3*x**2 + 2*x - 1", UNIT),
    ("x y", "x*y", UNIT),
    ("2 sin(x)", "2*sin(x)", UNIT),
    ("sin x", "sin(x)", UNIT),
    ("sin x^2", "sin(x**2)", UNIT),
    ("sin 2x", "sin(2*x)", UNIT),
    ("sin x y", "sin(x*y)", UNIT),
    ("sin x cos x", "sin(x)*cos(x)", UNIT),
    ("sin x + 1", "sin(x) + 1", UNIT),
    ("sin x * y", "sin(x)*y", UNIT),
    ("sin^2 x + cos^2 y", "sin(x)**2 + cos(y)**2", UNIT),
    ("sin(x)^2", "sin(x)**2", UNIT),
    ("3(x+1)", "3*(x + 1)", UNIT),
    ("(x+1)(x-1)", "(x + 1)*(x - 1)", UNIT),
    ("(x+1)(y-1)(x+2)", "(x + 1)*(y - 1)*(x + 2)", UNIT),
    ("x (y + 1)", "x*(y + 1)", UNIT),
    ("ln(x)", "log(x)", UNIT),
    ("ln x + log y", "log(x) + log(y)", UNIT),
    ("log10(x)", "log(x, 10)", UNIT),
    ("log2 x", "log(x, 2)", UNIT),
    ("log(x, 3)", "log(x, 3)", UNIT),
    ("e^x", "exp(x)", UNIT),
    ("e^-x", "exp(-x)", UNIT),
    ("e^(-x^2/2)", "exp(-x**2/2)", UNIT),
    ("2e^x", "2*exp(x)", UNIT),
    ("x e^x", "x*exp(x)", UNIT),
    ("e^x sin x", "exp(x)*sin(x)", UNIT),
    ("pi x", "pi*x", UNIT),
    ("π r²", "pi*r**2", UNIT),
    ("2πx", "2*pi*x", UNIT),
    ("cos(pi x)", "cos(pi*x)", UNIT),
    ("|x - y|", "Abs(x - y)", UNIT),
    ("|x| y", "Abs(x)*y", UNIT),
    ("||x| - 2y|", "Abs(Abs(x) - 2*y)", UNIT),
    ("sqrt(x^2 + y^2)", "sqrt(x**2 + y**2)", UNIT),
    ("√x", "sqrt(x)", UNIT),
    ("√(1 - x²)", "sqrt(1 - x**2)", UNIT),
    ("x²y³", "x**2*y**3", UNIT),
    ("x × y ÷ 2", "x*y/2", UNIT),
    ("x · y − 3", "x*y - 3", UNIT),
    ("1/2x", "1/(2*x)", UNIT),
    ("x/2y", "x/(2*y)", UNIT),
    ("1/x + 1/y", "1/x + 1/y", UNIT),
    ("x^-2", "x**(-2)", UNIT),
    ("2^x", "2**x", UNIT),
    ("x^y", "x**y", UNIT),
    ("2^2^x", "2**(2**x)", UNIT),
    ("x^(1/3)", "x**(1/3)", UNIT),
    ("x**3 - y**3", "x**3 - y**3", UNIT),
    ("-x^2", "-(x**2)", UNIT),
    ("-2x", "-2*x", UNIT),
    ("arcsin x", "asin(x)", UNIT),
    ("asin(x) + acos(y)", "asin(x) + acos(y)", UNIT),
    ("arctan(x/y)", "atan(x/y)", UNIT),
    ("atan2(y, x)", "atan2(y, x)", UNIT),
    ("arctan2(y, x)", "atan2(y, x)", UNIT),
    ("arcsinh x", "asinh(x)", UNIT),
    ("arccosh(x + 1)", "acosh(x + 1)", UNIT),
    ("arctanh x", "atanh(x)", UNIT),
    ("tan x", "tan(x)", UNIT),
    ("sec x", "sec(x)", UNIT),
    ("csc x + cot y", "csc(x) + cot(y)", UNIT),
    ("sinh x cosh y", "sinh(x)*cosh(y)", UNIT),
    ("tanh(2x)", "tanh(2*x)", UNIT),
    ("exp(x y)", "exp(x*y)", UNIT),
    ("max(x, y)", "Max(x, y)", UNIT),
    ("min(x^2, y)", "Min(x**2, y)", UNIT),
    ("max(x, 0)", "Max(x, 0)", UNIT),
    ("pow(x, 3)", "x**3", UNIT),
    ("x ln x - x", "x*log(x) - x", UNIT),
    ("sin(x)/x", "sin(x)/x", UNIT),
    ("(x^2 + 1)/(x - 2)", "(x**2 + 1)/(x - 2)", UNIT),
    ("2x^3y", "2*x**3*y", UNIT),
    ("x^2 y + x y^2", "x**2*y + x*y**2", UNIT),
    ("1 - x + x^2/2 - x^3/6", "1 - x + x**2/2 - x**3/6", UNIT),
    ("sigmoid(x)", "1/(1 + exp(-x))", UNIT),
    ("x/(x+1)", "x/(x + 1)", UNIT),
    ("exp(-(x-y)^2)", "exp(-(x - y)**2)", UNIT),
    ("sgn(x - 2) x", "-x", UNIT),
    ("g = x^2 + 1", "x**2 + 1", UNIT),
    ("f(x, y) = x y²", "x*y**2", UNIT),
    ("area = π r^2 / 2", "pi*r**2/2", UNIT),
    ("sin(x) + 2 cos x tan y", "sin(x) + 2*cos(x)*tan(y)", UNIT),
    ("ln |x - 2|", "log(Abs(x - 2))", UNIT),
    ("acosh x", "acosh(x)", (1.2, 3.0)),
    ("log1p(x) expm1(y)", "log(1 + x)*(exp(y) - 1)", UNIT),
    ("x\u00b2 + 2x + 1", "(x + 1)**2", UNIT),
    ("sum(x)", "x", UNIT),
    ("x⁻¹ + y¹⁰", "1/x + y**10", UNIT),
    ("sin² x + cos³ y", "sin(x)**2 + cos(y)**3", UNIT),
    ("x – y ∗ 2", "x - 2*y", UNIT),
]


def sympy_value_and_gradient(text: str, point: dict[str, float]) -> tuple[float, list[float]]:
    """Trusted test text through SymPy's own parser (never a request's text)."""
    syms = {name: sp.Symbol(name, real=True) for name in point}
    f = sp.parse_expr(text, local_dict=syms)
    at = {syms[n]: sp.Float(v, 30) for n, v in point.items()}
    value = float(f.xreplace(at).evalf(30))
    return value, [float(sp.diff(f, syms[n]).xreplace(at).evalf(30)) for n in point]


@pytest.mark.parametrize(("typed", "in_sympy", "domain"), TABLE, ids=[t[0] for t in TABLE])
def test_typed_math_has_sympys_value_and_gradient(typed, in_sympy, domain):
    named = parse_named(typed)
    graph, (output,) = named.graph, named.outputs
    names = [n for n in graph.leaves if graph.nodes[n].op == "variable"]
    rng = np.random.default_rng(sum(map(ord, typed)))
    for _ in range(3):
        point = {n: float(rng.uniform(*domain)) for n in names}
        result = derivatives.gradient(Query(graph=graph, values=point))
        value, gradient = sympy_value_and_gradient(in_sympy, point)
        np.testing.assert_allclose(float(result.outputs[output]), value, rtol=1e-10, atol=1e-12)
        assert result.gradients is not None
        tape = [float(result.gradients[n]) for n in names]
        np.testing.assert_allclose(tape, gradient, rtol=1e-9, atol=1e-12)


def test_the_table_has_sixty_expressions_that_all_differ():
    assert len({typed for typed, _, _ in TABLE}) == len(TABLE) >= 60


@pytest.mark.parametrize(
    ("typed", "python"),
    [
        ("x^2 + y^3", "x**2 + y**3"),
        ("sin x^2", "sin(x**2)"),
        ("sin x cos x", "sin(x) * cos(x)"),
        ("1/2x", "1 / (2 * x)"),
        ("-x^2", "-(x**2)"),
        ("2^3^2", "2**(3**2)"),
        ("x y z", "(x * y) * z"),
        ("|x| |y|", "abs(x) * abs(y)"),
        ("sum(x, 0)", "sum(x, axis=0)"),
    ],
)
def test_people_and_python_spellings_build_the_same_graph(typed, python):
    def ops(text: str) -> list[tuple[str, object, tuple]]:
        graph = parse_named(text).graph
        return [
            (
                n.op,
                n.attrs.get("axis"),
                tuple(x if type(x) is str else float(x.value) for x in n.inputs),
            )
            for n in graph.nodes.values()
        ]

    assert ops(typed) == ops(python)
