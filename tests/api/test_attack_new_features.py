"""Hostile and malformed requests to the newer features, and every road to the same number.

Each hostile request here once cost a 500 or held a SymPy worker for its whole budget: a
12-character power tower (``9^9^9``) that SymPy wrote out digit by digit, a plot range whose
span overflows float64, curves beyond 1e307 that matplotlib could not frame, a norm order
of 1e308 kept as a 1,024-bit int that no JSON response can carry, ``tile`` with a zero
multiple after a huge one (numpy builds the huge copy first). Each must now be a quick
answer or a 4xx problem naming the field or node.
"""

from __future__ import annotations

import decimal
import time
from typing import Any

import numpy as np
import pytest

import engine as tf
from tests.api.support import graph, op, var

PROBLEM = "application/problem+json"


def problem(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body.get("field") or body.get("node") or body.get("errors"), body
    return body


# ------------------------------------------------------------------ power towers


def test_a_power_tower_of_numbers_is_answered_at_once_by_symbolic(client) -> None:
    start = time.monotonic()
    r = client.post("/v1/symbolic", json={"expression": "9^9^9 x", "values": {"x": 1}})
    elapsed = time.monotonic() - start
    assert r.status_code == 200, r.text
    body = r.json()
    # 9^(9^9) = 10^(9^9 * log10(9)): its leading digits and exponent, by decimal arithmetic
    with decimal.localcontext(decimal.Context(prec=50)):
        exponent = decimal.Decimal(9).log10() * 9**9
        mantissa = decimal.Decimal(10) ** (exponent % 1)
    (text,) = body["derivatives"]
    assert text.endswith(f"e+{int(exponent)}"), text
    assert text.startswith(f"{mantissa:.12f}"[:13]), (text, mantissa)
    assert elapsed < 2.0, f"{elapsed:.2f} s"


def test_a_power_tower_is_checked_by_sympy_not_timed_out(client) -> None:
    r = client.post("/v1/gradient", json={"expression": "9^9^9 + 2^(10^9) x", "values": {"x": 1}})
    assert r.status_code == 200, r.text
    check = r.json()["check"]
    assert check["method"] == "sympy", check
    assert check["status"] == "agree", check


# ------------------------------------------------------------------ plots


@pytest.mark.parametrize("span", [[-1.7e308, 1.7e308], [0, 1.7e308], [-1e301, 0]])
def test_a_plot_range_past_what_an_axis_spans_is_a_422_naming_range(client, span) -> None:
    r = client.post(
        "/v1/plot", json={"expression": "x^2", "variable": "x", "range": span, "order": 2}
    )
    assert problem(r)["field"] == "range"


@pytest.mark.parametrize("expression", ["1e307 x", "-1e308 x^2", "1e300 x + 1e300 x"])
def test_curves_past_1e300_are_shaded_not_a_500(client, expression) -> None:
    body = {"expression": expression, "variable": "x", "range": [-10, 10], "order": 2}
    r = client.post("/v1/plot", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/svg+xml"
    assert b"not finite" in r.content


def test_plot_curves_are_derivative_answers_at_the_same_x(client) -> None:
    """The numbers a plot draws (engine.derive.series) == /v1/derivative at those x."""
    from engine.derive.query import Query
    from engine.derive.series import series
    from engine.graphs.expression import parse_expression
    from engine.graphs.graph import Limits

    text, xs = "x^3 sin x − |x|", np.linspace(-2.0, 2.0, 9)
    s = series(Query(graph=parse_expression(text, Limits()), values={}), "x", xs, 3)
    for k, x in enumerate(xs):
        r = client.post(
            "/v1/derivative",
            json={"expression": text, "values": {"x": float(x)}, "order": 3, "check": "none"},
        )
        got = r.json()
        if x == 0.0:  # |x|'s kink: the plot marks it; the derivative follows TF's sign(0) = 0
            assert s.kinks[k]
            continue
        road = [got["outputs"]["f"], *got["derivatives"]]
        np.testing.assert_allclose([c[k] for c in s.curves], road, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ op attrs


def test_a_norm_order_past_json_integers_is_answered_not_a_500(client) -> None:
    body = graph(var("x", [1.0, 2.0, 3.0]), op("y", "norm", "x", ord=1e308), trace=True)
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"]["y"] == "Infinity"  # |3|^1e308 overflows, as in TF


def test_an_empty_tensor_of_a_billion_rows_is_refused_by_the_cost_model(client) -> None:
    """tile(x, [10**9, 0]) holds no number, but its trace (or output) is a billion empty
    lists: the process was killed for memory writing it out."""
    body = graph(var("x", [[1.0, 2.0, 3.0]]), op("t", "tile", "x", multiples=[10**9, 0]))
    body["graph"]["nodes"].append(op("y", "sum", "t"))
    for kind in ("gradient", "jacobian", "hessian"):
        r = client.post(f"/v1/{kind}", json={**body, "trace": True})
        assert problem(r)["node"] == "t", kind
    assert problem(client.post("/v1/evaluate", json={**body, "target": "t"}))["node"] == "t"
    assert problem(client.post("/v1/draw", json={**body, "values": {}}))["node"] == "t"


def test_a_small_empty_tile_is_answered(client) -> None:
    body = graph(var("x", [[1.0, 2.0, 3.0]]), op("t", "tile", "x", multiples=[4, 0]))
    body["graph"]["nodes"].append(op("y", "sum", "t"))
    r = client.post("/v1/gradient", json={**body, "trace": True})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["outputs"]["y"] == 0.0 and got["gradients"]["x"] == [[0.0, 0.0, 0.0]]
    assert got["trace"]["entries"][0]["value"] == [[]] * 4


# ------------------------------------------------------------------ malformed bodies

X23 = var("x", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
BAD_IDS = ['a"b', "a{b}", "a\nb", "<script>alert(1)</script>", "\u202ex", "x\u0000"]
MALFORMED: list[tuple[str, Any]] = [
    ("/v1/symbolic", {"expression": "x^2", "order": 1e300}),
    ("/v1/symbolic", {"expression": "x^2", "order": "2"}),
    ("/v1/symbolic", {"expression": "x^2", "order": 10**30}),
    ("/v1/symbolic", {"expression": "x^2", "simplify": "yes"}),
    ("/v1/symbolic", {"expression": "x^2", "sources": "x"}),
    ("/v1/symbolic", {"expression": "x^2", "sources": ["y"]}),
    ("/v1/symbolic", {"expressions": {"u": "x", "v": "x^2"}}),
    ("/v1/plot", {"expression": "x^2", "variable": "x", "range": [0, 1], "samples": 10**9}),
    ("/v1/plot", {"expression": "x^2", "variable": "x", "range": ["NaN", 1]}),
    ("/v1/plot", {"expression": "x^2", "variable": "x", "range": [1, 0]}),
    ("/v1/plot", {"expression": "x^2", "variable": "y", "range": [0, 1]}),
    ("/v1/plot", {"expression": "x^2", "variable": "x", "range": "[0, 1]"}),
    ("/v1/gradient", {"expression": "|x", "values": {"x": 1}}),
    ("/v1/gradient", {"expression": "sin", "values": {"x": 1}}),
    ("/v1/gradient", {"expression": "x = x^2", "values": {"x": 1}}),
    ("/v1/gradient", {"expressions": {"u": "v", "v": "u"}, "values": {"x": 1}}),
    ("/v1/gradient", {"expressions": {}, "values": {"x": 1}}),
    ("/v1/gradient", {"expression": "|" * 300 + "x" + "|" * 300, "values": {"x": 1}}),
    ("/v1/gradient", {"expression": "^".join(["x"] * 400), "values": {"x": 1}}),
    ("/v1/gradient", {"expression": "x" + "²" * 400, "values": {"x": 1}}),
    ("/v1/gradient", {"expression": "sum(x, 1e99)", "values": {"x": [1, 2]}}),
    ("/v1/gradient", {"expression": "atan2(x, x, x)", "values": {"x": 2}}),
    ("/v1/gradient", {"expression": "x^-", "values": {"x": 2}}),
    ("/v1/gradient", graph(X23, op("y", "gather", "x", indices=[10**30]))),
    ("/v1/gradient", graph(X23, op("y", "gather", "x", indices=[0.5]))),
    ("/v1/gradient", graph(X23, op("y", "gather", "x", indices=0, axis=-(2**63)))),
    ("/v1/gradient", graph(X23, op("y", "scatter_add", "x", shape=[2**40, 3], indices=[0, 1]))),
    ("/v1/gradient", graph(X23, op("y", "tile", "x", multiples=[10**5, 10**5]))),
    ("/v1/gradient", graph(X23, op("y", "tile", "x", multiples=[1e300, 1]))),
    ("/v1/gradient", graph(X23, op("y", "strided_slice", "x", index=["::0"]))),
    ("/v1/gradient", graph(X23, op("y", "strided_slice", "x", index=["1e400:"]))),
    ("/v1/gradient", graph(X23, op("y", "strided_slice", "x", index=["<script>"]))),
    ("/v1/gradient", graph(X23, op("y", "norm", "x", ord="NaN"))),
    ("/v1/gradient", graph(X23, op("y", "norm", "x", ord=-1))),
    ("/v1/gradient", graph(X23, {"id": "y", "op": "where", "inputs": ["x", "x"]})),
    ("/v1/gradient", graph(X23, {"id": "y", "op": "add_n", "inputs": []})),
] + [
    (path, graph(var(i, 1.0), op("y", "sin", i), **extra))
    for i in BAD_IDS
    for path, extra in (
        ("/v1/symbolic", {"sources": ["nope"]}),
        ("/v1/draw", {"target": "nope"}),
        ("/v1/plot", {"variable": "nope", "range": [0, 1]}),
    )
]


@pytest.mark.parametrize(("path", "body"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_bodies_are_4xx_problems_naming_the_field_or_node(
    make_client, path, body
) -> None:
    c = make_client(raise_server_exceptions=False)
    r = c.post(path, json=body)
    assert 400 <= r.status_code < 500, r.text
    problem(r, r.status_code)


@pytest.mark.parametrize("node_id", BAD_IDS)
def test_hostile_ids_are_refused_by_pictures_naming_the_node(client, node_id) -> None:
    body = graph(var(node_id, 0.5), op("y", "sin", node_id), values={})
    d = client.post("/v1/draw", json=body)
    p = client.post("/v1/plot", json={**body, "variable": node_id, "range": [0, 1]})
    for r in (d, p):
        assert problem(r)["node"] == node_id


# ------------------------------------------------------------------ roads

HUMAN_AND_PYTHON = [
    ("x^2 y + sin x · y³ − |x y|", "x**2*y + sin(x)*y**3 - abs(x*y)"),
    ("atan2(y, x) + max(x, y) + pow(x, y)", "atan2(y, x) + maximum(x, y) + x**y"),
    ("2(x+1)(y-1) + x÷y", "2*(x+1)*(y-1) + x/y"),
    ("x² + log10(x) + log2(y) + arcsin(x/3)", "x**2 + log10(x) + log2(y) + asin(x/3)"),
    ("sqrt x + tanh y^2 + ln(x)·e^y", "sqrt(x) + tanh(y**2) + log(x)*exp(y)"),
]


@pytest.mark.parametrize(("human", "python"), HUMAN_AND_PYTHON)
def test_human_python_symbolic_and_differences_give_one_answer(client, human, python) -> None:
    at = {"x": 1.3, "y": 0.7}
    ask = {"values": at, "order": 2, "sources": ["x", "y"]}
    human_d = client.post("/v1/derivative", json={"expression": human, **ask}).json()
    python_d = client.post("/v1/derivative", json={"expression": python, **ask}).json()
    symbolic = client.post("/v1/symbolic", json={"expression": human, **ask}).json()
    for j in range(2):  # e^y is pow(e, y), exp(y) in the other: the last bit may differ
        np.testing.assert_allclose(
            human_d["derivatives"][j], python_d["derivatives"][j], rtol=1e-15
        )
    for j in range(2):
        np.testing.assert_allclose(
            symbolic["values"]["derivatives"][j], human_d["derivatives"][j], rtol=1e-12
        )

    def f(x: float, y: float) -> float:
        body = {"expression": python, "values": {"x": x, "y": y}, "check": "none"}
        return client.post("/v1/evaluate", json=body).json()["outputs"]["f"]

    h = 1e-6
    fd = [
        (f(at["x"] + h, at["y"]) - f(at["x"] - h, at["y"])) / (2 * h),
        (f(at["x"], at["y"] + h) - f(at["x"], at["y"] - h)) / (2 * h),
    ]
    np.testing.assert_allclose(human_d["derivatives"][0], fd, rtol=1e-6)


NEW_OPS = [
    ("gather", lambda x: tf.gather(x, [2, 0, 2]), {"indices": [2, 0, 2]}, None),
    ("tile", lambda x: tf.tile(x, [3]), {"multiples": [3]}, None),
    ("strided_slice", lambda x: x[::-2], {"index": ["::-2"]}, None),
    ("norm", lambda x: tf.norm(x, ord=3), {"ord": 3}, None),
    ("xlogy", lambda x: tf.math.xlogy(x, x + 1.0), {}, "x1"),
    ("div_no_nan", lambda x: tf.math.divide_no_nan(x, x - 2.0), {}, "xm2"),
]


@pytest.mark.parametrize(
    ("name", "library", "attrs", "second"), NEW_OPS, ids=[o[0] for o in NEW_OPS]
)
def test_new_ops_library_and_http_agree(client, name, library, attrs, second) -> None:
    value = [0.0, 2.0, 1.5]
    x = tf.Variable(value)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(tf.sin(library(x)))
    want = tape.gradient(y, x)
    nodes = [var("x", value)]
    if second == "x1":
        nodes.append(op("x1", "add", "x", 1.0))
    if second == "xm2":
        nodes.append(op("xm2", "sub", "x", 2.0))
    inputs = ["x", second] if second else ["x"]
    nodes += [{"id": "o", "op": name, "inputs": inputs, "attrs": attrs}, op("s", "sin", "o")]
    nodes.append(op("y", "sum", "s"))
    got = client.post("/v1/gradient", json=graph(*nodes)).json()
    np.testing.assert_allclose(got["outputs"]["y"], float(np.asarray(y)), rtol=1e-15)
    np.testing.assert_allclose(got["gradients"]["x"], np.asarray(want), rtol=1e-15)
    assert got["check"]["status"] == "agree", got["check"]
