"""Request examples: the seed article's three, its expression form, math as people type
it, and a few more.

Attached to each route as Swagger UI's ``openapi_examples`` (``app.endpoints`` picks
each endpoint's set); benchmarks and tests send the same bodies.
"""

from __future__ import annotations

from typing import Any

Examples = dict[str, dict[str, Any]]


def _graph(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"graph": {"nodes": list(nodes)}}


SEED_1 = _graph(
    {"id": "x", "op": "variable", "value": 3.0},
    {"id": "y", "op": "pow", "inputs": ["x", 2]},
)
SEED_2 = _graph(
    {"id": "x", "op": "variable", "value": 3.0},
    {"id": "y", "op": "pow", "inputs": ["x", 3]},
)
SEED_3 = _graph(
    {"id": "x", "op": "variable", "value": 2.0},
    {"id": "y", "op": "variable", "value": 3.0},
    {"id": "x2", "op": "pow", "inputs": ["x", 2]},
    {"id": "y3", "op": "pow", "inputs": ["y", 3]},
    {"id": "z", "op": "add", "inputs": ["x2", "y3"]},
)
EXPRESSION = {"expression": "x**2 + y**3", "values": {"x": 2.0, "y": 3.0}}
TENSOR = {
    "expression": "tanh(x) @ w",
    "values": {"x": [[0.5, -1.0]], "w": [[1.0], [2.0]]},
}

HUMAN = {"expression": "2x sin x + e^(x y) / 2", "values": {"x": 1.5, "y": -0.5}}
VECTOR = {"expressions": {"u": "x y²", "v": "sin x + ln y"}, "values": {"x": 0.5, "y": 2.0}}

POINTS = {
    **SEED_3,
    "points": [{"x": 2.0, "y": 3.0}, {"x": 1.0, "y": -1.0}, {"x": 0.5, "y": 2.0}],
}


def rosenbrock(n: int) -> dict[str, Any]:
    """sum 100 (x[1:] - x[:-1]**2)**2 + (1 - x[:-1])**2 at n points evenly spread over
    [-1.2, 1.2], as a graph: the classic tridiagonal Hessian (also the Hessian benchmark)."""
    return _graph(
        {"id": "x", "op": "variable", "value": [-1.2 + 2.4 * i / (n - 1) for i in range(n)]},
        {"id": "head", "op": "slice", "inputs": ["x"], "attrs": {"begin": [1]}},
        {"id": "tail", "op": "slice", "inputs": ["x"], "attrs": {"begin": [0], "end": [-1]}},
        {"id": "tail2", "op": "square", "inputs": ["tail"]},
        {"id": "d", "op": "sub", "inputs": ["head", "tail2"]},
        {"id": "d2", "op": "square", "inputs": ["d"]},
        {"id": "t1", "op": "mul", "inputs": [100.0, "d2"]},
        {"id": "c", "op": "sub", "inputs": [1.0, "tail"]},
        {"id": "t2", "op": "square", "inputs": ["c"]},
        {"id": "s", "op": "add", "inputs": ["t1", "t2"]},
        {"id": "f", "op": "sum", "inputs": ["s"]},
    )


def seed_examples(what: tuple[str, str, str, str], **fields: Any) -> Examples:
    """The seed article's three examples (graph form) and the expression form; ``what``
    says what each answers, ``fields`` are added to every body."""
    r1, r2, r3, r4 = what
    return {
        "seed-1": {
            "summary": "Seed example 1: y = x**2 at x = 3",
            "description": f"`tape.gradient(y, x)` of the article's first example: {r1}.",
            "value": {**SEED_1, **fields},
        },
        "seed-2": {
            "summary": "Seed example 2: y = x**3 at x = 3",
            "description": f"The article's second example: {r2}.",
            "value": {**SEED_2, **fields},
        },
        "seed-3": {
            "summary": "Seed example 3: z = x**2 + y**3 at x = 2, y = 3",
            "description": f"Gradients with respect to two variables in one request: {r3}.",
            "value": {**SEED_3, **fields},
        },
        "expression": {
            "summary": "Expression: x**2 + y**3 at x = 2, y = 3",
            "description": f"Seed example 3 as infix text instead of a graph: {r4}.",
            "value": {**EXPRESSION, **fields},
        },
        "as-typed": {
            "summary": "As typed: 2x sin x + e^(x y) / 2",
            "description": "Math as people type it: implicit products, `sin x` without "
            "parentheses, the constant `e`, `^` for powers. The output is named `f`.",
            "value": {**HUMAN, **fields},
        },
        "named-outputs": {
            "summary": "Named outputs: u = x y², v = sin x + ln y",
            "description": "`expressions` gives several named targets of one graph (a vector "
            "function): `outputs` has u and v; `/v1/jacobian` answers each row. "
            "`/v1/gradient`, `/v1/hessian` and `/v1/derivative` differentiate their sum, as "
            "tf.GradientTape does with a list target, and say so in a `summed_targets` note.",
            "value": {**VECTOR, **fields},
        },
    }


MANY_POINTS: Examples = {
    "points": {
        "summary": "Many points: seed example 3 at three points",
        "description": "One request, one vectorised run: every output and gradient gains "
        "a leading axis of 3 (gradients x: [4, 2, 1], y: [27, 3, 12]).",
        "value": POINTS,
    }
}
SPARSE_HESSIAN: Examples = {
    "sparse": {
        "summary": "Sparse: Rosenbrock's tridiagonal Hessian as coordinates",
        "description": "`format: coo`: the pattern is found from the graph (banded, "
        "bandwidth 1), three colours evaluate it, `sparse` lists the non-zeros.",
        "value": {**rosenbrock(8), "format": "coo"},
    }
}
TENSORS: Examples = {
    "tensor": {
        "summary": "Tensors: tanh(x) @ w",
        "description": "A 1x2 row through tanh, then a 2x1 matrix product.",
        "value": TENSOR,
    }
}


def graph_examples() -> Examples:
    """Graphs to register: the seed's third example as a graph and as an expression."""
    return {
        "seed-3": {
            "summary": "Seed example 3: z = x**2 + y**3",
            "description": "Register once; then `{\"graph_id\": ..., \"values\": ...}`.",
            "value": SEED_3,
        },
        "expression": {
            "summary": "Expression: x**2 + y**3",
            "description": "The same computation as text; its variables take `values`.",
            "value": {"expression": "x**2 + y**3"},
        },
        "as-typed": {
            "summary": "As typed: g = e^(-x^2/2) / sqrt(2π)",
            "description": "The standard normal density, its output named `g` by the text.",
            "value": {"expression": "g = e^(-x^2/2) / sqrt(2π)"},
        },
    }


SYMBOLIC_EXAMPLES: Examples = {
    "quotient": {
        "summary": "x/(x + 1): first and second derivatives, simplified",
        "description": "No values needed: `derivatives` is `[\"(x + 1)**(-2)\", "
        "\"-2/(x + 1)**3\"]`, with LaTeX beside.",
        "value": {"expression": "x/(x + 1)", "order": 2},
    },
    "seed-3": {
        "summary": "Seed example 3: gradient and Hessian of x**2 + y**3, and their values",
        "description": "Two sources: order 1 is a list of 2 strings, order 2 a 2x2 list; "
        "`values` gives the numbers at x = 2, y = 3 (4 and 27; [[2, 0], [0, 18]]).",
        "value": {**EXPRESSION, "order": 2},
    },
    "convention": {
        "summary": "floor(x)*x: a non-differentiable op states its convention",
        "description": "The derivative is `floor(x)`; a note says floor' = 0.",
        "value": {"expression": "floor(x)*x"},
    },
}
