"""Math as people type it over HTTP: natural output names, several named expressions,
and 422 problems that point at the column."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from tests.api.support import SEED_3, post

# What the service used to refuse, each now answered: (text, values, value, gradient)
ONCE_REFUSED = [
    ("x^2", {"x": 3.0}, 9.0, {"x": 6.0}),
    ("2x", {"x": 3.0}, 6.0, {"x": 2.0}),
    ("sin x", {"x": 0.5}, np.sin(0.5), {"x": np.cos(0.5)}),
    ("ln(x)", {"x": 2.0}, np.log(2.0), {"x": 0.5}),
    ("|x|", {"x": -2.0}, 2.0, {"x": -1.0}),
    ("(x+1)(x-1)", {"x": 3.0}, 8.0, {"x": 6.0}),
    ("e^x", {"x": 1.0}, np.e, {"x": np.e}),
    ("pi*x", {"x": 2.0}, 2 * np.pi, {"x": np.pi}),
    ("max(x, 0)", {"x": 2.0}, 2.0, {"x": 1.0}),
    ("sum(x, 0)", {"x": [1.0, 2.0]}, 3.0, {"x": [1.0, 1.0]}),
]


@pytest.mark.parametrize(
    ("text", "values", "value", "gradient"), ONCE_REFUSED, ids=[c[0] for c in ONCE_REFUSED]
)
def test_what_was_refused_is_answered_as_f(client, text, values, value, gradient):
    out = post(client, "gradient", {"expression": text, "values": values, "check": "numeric"})
    assert list(out["outputs"]) == ["f"]
    np.testing.assert_allclose(out["outputs"]["f"], value, rtol=1e-12)
    assert out["gradients"].keys() == gradient.keys()
    for name, expected in gradient.items():
        np.testing.assert_allclose(out["gradients"][name], expected, rtol=1e-12)
    assert out["check"]["status"] == "agree"


def test_the_text_names_its_output_and_graphs_keep_their_ids(client):
    out = post(client, "evaluate", {"expression": "area = pi r^2", "values": {"r": 2.0}})
    assert out["outputs"] == {"area": pytest.approx(4 * np.pi)}
    assert list(post(client, "evaluate", SEED_3)["outputs"]) == ["z"]
    assert list(
        post(client, "evaluate", {"expression": "f + 1", "values": {"f": 1}})["outputs"]
    ) == ["g"]


def test_the_human_syntax_agrees_with_sympy_in_the_check(client):
    out = post(
        client,
        "gradient",
        {"expression": "2x sin x + e^(x y)", "check": "sympy", "values": {"x": 0.7, "y": -0.4}},
    )
    assert out["check"]["method"] == "sympy" and out["check"]["status"] == "agree"
    x, y = 0.7, -0.4
    assert out["gradients"]["x"] == pytest.approx(
        2 * np.sin(x) + 2 * x * np.cos(x) + y * np.exp(x * y), rel=1e-12
    )


def test_several_expressions_are_a_vector_function_and_its_jacobian(client):
    point = {"x": 0.6, "y": 1.7}
    body = {
        "expressions": {"u": "x y²", "v": "sin x + ln y", "w": "x"},
        "values": point,
        "unconnected_gradients": "zero",
    }
    out = post(client, "jacobian", body)
    assert list(out["outputs"]) == ["u", "v", "w"]
    x, y = sp.symbols("x y", real=True)
    functions = {"u": x * y**2, "v": sp.sin(x) + sp.log(y), "w": x}
    at = {x: point["x"], y: point["y"]}
    for name, f in functions.items():
        assert out["outputs"][name] == pytest.approx(float(f.subs(at)), rel=1e-12)
        for s, source in ((x, "x"), (y, "y")):
            expected = float(sp.diff(f, s).subs(at))
            assert out["jacobian"][name][source] == pytest.approx(expected, rel=1e-12)
    evaluated = post(client, "evaluate", body)
    assert evaluated["outputs"] == out["outputs"]
    one = post(client, "jacobian", {**body, "target": "v"})
    assert list(one["jacobian"]) == ["v"]


def test_a_registered_expression_keeps_its_output_name(client):
    r = client.post("/v1/graphs", json={"expression": "g = x^3"})
    assert r.status_code in (200, 201), r.text
    out = post(
        client, "derivative", {"graph_id": r.json()["graph_id"], "values": {"x": 3.0}, "order": 2}
    )
    assert out["outputs"] == {"g": 27.0}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"expression": "sinn(x)"}, "expression", "unknown function sinn; did you mean sin"),
        (
            {"expression": "e(x+1)", "values": {"x": 1}},
            "expression",
            "e is the constant e = 2.71828...; write e*(...) for a product",
        ),
        (
            {"expression": "e^x", "values": {"x": 1, "e": 3}},
            "values.e",
            "e is the constant e = 2.71828... in an expression, so values cannot set it",
        ),
        (
            {"expression": "max(x, 0, 1)"},
            "expression",
            "max takes one argument (its largest entry: max(x), max(x, axis=0)) or two",
        ),
        ({"expression": "x + y = 2"}, "expression", "= can only name the whole expression"),
        (
            {"expressions": {"u": "x", "v": "x y +"}},
            "expressions.v",
            "expressions.v: the expression ends where an operand should be (column 6)",
        ),
        (
            {"expressions": {"u": "x", "x": "2"}},
            "expressions.x",
            "x names an output and is a variable too",
        ),
    ],
)
def test_bad_text_is_a_422_naming_the_field_and_column(client, body, field, says):
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("/invalid-expression")
    assert problem["field"] == field and says in problem["detail"]


def test_expression_and_expressions_together_is_a_422(client):
    r = client.post("/v1/gradient", json={"expression": "x", "expressions": {"u": "x"}})
    assert r.status_code == 422
    assert "(or `expressions` instead of `expression`)" in r.text


def test_the_expressions_share_the_length_limit(make_client):
    with make_client(max_expression_chars=20) as small:
        fine = small.post("/v1/evaluate", json={"expressions": {"u": "2" * 10, "v": "1"}})
        assert fine.status_code == 200, fine.text
        r = small.post("/v1/evaluate", json={"expressions": {"u": "x" * 10, "v": "y" * 11}})
    assert r.status_code in (413, 422)
    assert "21 characters in all, over the limit of 20" in r.json()["detail"]
