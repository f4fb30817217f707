"""POST /v1/symbolic: the function and its derivatives as text, LaTeX and numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sympy as sp
from fastapi.testclient import TestClient

from app.wire.responses import SymbolicResponse
from tests.api.support import SEED_3, graph, op, var


def symbolic(client: TestClient, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    r = client.post("/v1/symbolic", json=body)
    assert r.status_code == status, r.text
    if status == 200:
        SymbolicResponse.model_validate_json(r.content)
    return r.json()


def test_no_values_needed_and_the_derivatives_come_simplified(client: TestClient) -> None:
    got = symbolic(client, {"expression": "x/(x+1)", "order": 2})
    x = sp.Symbol("x", real=True)
    assert sp.simplify(sp.sympify(got["function"], {"x": x}) - x / (x + 1)) == 0
    assert got["derivatives"] == ["(x + 1)**(-2)", "-2/(x + 1)**3"]  # simplified, not a sum
    assert got["latex"]["derivatives"][0] == r"\frac{1}{\left(x + 1\right)^{2}}"
    assert got["sources"] == ["x"] and got["order"] == 2 and got["simplified"] is True
    assert "values" not in got or got["values"] is None


def test_unsimplified_when_asked(client: TestClient) -> None:
    got = symbolic(client, {"expression": "x/(x+1)", "simplify": False})
    assert got["derivatives"] == ["-x/(x + 1)**2 + 1/(x + 1)"]
    assert got["simplified"] is False


def test_several_sources_are_laid_out_as_the_derivative_endpoint_lays_them_out(
    client: TestClient,
) -> None:
    got = symbolic(client, {"expression": "x**2*y + y**3", "order": 3})
    assert got["sources"] == ["x", "y"]  # every variable, sorted
    first, second, third = got["derivatives"]
    assert first == ["2*x*y", "x**2 + 3*y**2"]
    assert second == [["2*y", "2*x"], ["2*x", "6*y"]]
    assert np.shape(third) == (2, 2, 2)
    assert third[0][0][1] == third[0][1][0] == third[1][0][0] == "2"
    assert third[1][1][1] == "6"
    assert np.shape(got["latex"]["derivatives"][2]) == (2, 2, 2)


def test_values_give_the_numbers_the_tape_gives(client: TestClient) -> None:
    """Two independent roads: SymPy's derivatives at the values, and /v1/derivative's
    nested tapes, at random points."""
    rng = np.random.default_rng(15)
    for text in ("sin(x)*exp(y) + x*y", "x/(1 + y**2)", "tanh(x*y) + log(1 + x**2)"):
        x, y = rng.uniform(-2, 2, 2)
        body = {"expression": text, "values": {"x": x, "y": y}, "order": 2}
        got = symbolic(client, body)
        tape = client.post("/v1/derivative", json={**body, "check": "none"}).json()
        np.testing.assert_allclose(
            got["values"]["function"], next(iter(tape["outputs"].values())), rtol=1e-12
        )
        for mine, theirs in zip(got["values"]["derivatives"], tape["derivatives"], strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12)


def test_seed_example_3_as_a_graph(client: TestClient) -> None:
    got = symbolic(client, {**SEED_3, "order": 2})
    assert got["function"] == "x**2 + y**3" and got["target"] == "z"
    assert got["values"] == {
        "function": 31.0,
        "derivatives": [[4.0, 27.0], [[2.0, 0.0], [0.0, 18.0]]],
    }


def test_sources_pick_and_order_the_axes(client: TestClient) -> None:
    got = symbolic(client, {"expression": "x**2*y", "sources": ["y", "x"]})
    assert got["sources"] == ["y", "x"] and got["derivatives"] == [["x**2", "2*x*y"]]


def test_a_source_the_function_does_not_read_has_zero_derivatives(client: TestClient) -> None:
    body = graph(var("x", 1.0), var("u", 2.0), op("f", "sin", "x"))
    got = symbolic(client, body)
    assert got["sources"] == ["u", "x"] and got["derivatives"] == [["0", "cos(x)"]]


def test_a_tensor_leaf_counts_as_its_elements(client: TestClient) -> None:
    got = symbolic(client, {"expression": "sum(w*w)", "values": {"w": [1.0, 2.0]}})
    assert got["sources"] == ["w_0", "w_1"]
    assert got["derivatives"] == [["2*w_0", "2*w_1"]]
    assert got["values"]["derivatives"] == [[2.0, 4.0]]


@pytest.mark.parametrize(
    "text, derivative, op_name",
    [
        ("floor(x)*x", "floor(x)", "floor"),
        ("stop_gradient(x)*x", "stop_gradient(x)", "stop_gradient"),
    ],
)
def test_a_non_differentiable_op_states_its_convention_never_an_internal_id(
    client: TestClient, text: str, derivative: str, op_name: str
) -> None:
    got = symbolic(client, {"expression": text})
    assert got["derivatives"] == [derivative]
    assert "_1" not in got["derivatives"][0] and "_1" not in got["latex"]["derivatives"][0]
    note = next(n for n in got["notes"] if n["reason"] == "convention")
    assert note["detail"].startswith(f"{op_name}' = 0")


def test_the_check_of_a_gradient_names_no_internal_id_either(client: TestClient) -> None:
    r = client.post(
        "/v1/gradient", json={"expression": "floor(x)*x", "values": {"x": 1.5}, "check": "sympy"}
    )
    assert r.json()["check"]["symbolic"]["gradients"]["x"] == "floor(x)"


def test_a_kink_in_the_values_is_nan_with_a_note(client: TestClient) -> None:
    got = symbolic(client, {"expression": "sqrt(x**2)", "values": {"x": 0.0}})
    assert got["derivatives"] == ["sign(x)"]
    assert got["values"]["derivatives"] == ["NaN"]
    assert any(n["reason"] == "kink" for n in got["notes"])


@pytest.mark.parametrize(("expression", "x", "count"), [
    ("sqrt(x)", -1.0, 2), ("x / (x - x)", 1.0, 2), ("log(x) * x", -2.0, 2), ("x**2", 3.0, 0)])
def test_a_non_finite_value_off_the_kinks_is_noted(client: TestClient, expression: str,
                                                   x: float, count: int) -> None:
    got = symbolic(client, {"expression": expression, "values": {"x": x}})
    noted = [n for n in got["notes"] if n["reason"] == "non_finite"]
    values = [got["values"]["function"], *got["values"]["derivatives"]]
    assert sum(v in ("NaN", "Infinity", "-Infinity") for v in values) == count
    assert len(noted) == (1 if count else 0)
    if count:
        assert noted[0]["detail"].startswith(f"{count} of the function's")
    kink = symbolic(client, {"expression": "sqrt(x**2)", "values": {"x": 0.0}})
    assert not [n for n in kink["notes"] if n["reason"] == "non_finite"]  # the kink says it


@pytest.mark.parametrize(
    "body, status, slug, words",
    [
        ({"expression": "x*y*z", "order": 9}, 422, "compute-limit", "order 9 is over the limit"),
        (
            {"expression": "*".join(f"a{i}" for i in range(9)), "order": 4},
            422,
            "compute-limit",
            "over the limit of 4096",
        ),
        (
            {"expression": "sum(w*w)", "values": {"w": [1.0] * 100}},
            422,
            "compute-limit",
            "DERIV_SYMPY_MAX_ELEMENTS",
        ),
        (
            {"expression": "+".join(f"sin(a{i}*a{i + 1})" for i in range(60))},
            422,
            "compute-limit",
            "DERIV_SYMPY_MAX_NODES",
        ),
        (
            {"expression": "sin(" * 40 + "x" + ")" * 40, "order": 6},
            422,
            "cost-limit",
            "units of symbolic work",
        ),
        ({"expression": "w*2", "values": {"w": [1.0, 2.0]}}, 422, "shape-mismatch", "scalar"),
        ({"expression": "x*y", "sources": ["q"]}, 422, "invalid-graph", "'q'"),
        ({"expression": "x", "order": 0}, 422, "invalid-request", "order"),
        ({"expression": "x", "graph_id": "g_" + "0" * 64}, 422, "invalid-request", "exactly one"),
    ],
)
def test_hostile_and_wrong_requests_are_refused_before_sympy_runs(
    client: TestClient, body: dict[str, Any], status: int, slug: str, words: str
) -> None:
    r = client.post("/v1/symbolic", json=body)
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["type"].endswith(slug) and words in problem["detail"], problem
    assert r.elapsed.total_seconds() < 1.0
    assert client.post("/v1/symbolic", json={"expression": "x**2"}).status_code == 200


def test_order_9_in_a_tiny_body_is_a_422_not_a_413(client: TestClient) -> None:
    body = b'{"expression":"x*y","values":{"x":1,"y":2},"order":9}'
    assert len(body) < 60
    for path in ("/v1/derivative", "/v1/symbolic"):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["type"].endswith("compute-limit"), r.text
        assert r.json()["field"] == "order"


def test_a_typo_gets_a_did_you_mean(client: TestClient) -> None:
    r = client.post("/v1/symbolic", json={"expresion": "x", "ordr": 2})
    assert r.status_code == 422
    msgs = [e["msg"] for e in r.json()["errors"]]
    assert msgs == [
        "unknown field 'expresion': did you mean 'expression'?",
        "unknown field 'ordr': did you mean 'order'?",
    ]


def test_every_swagger_example_answers(client: TestClient) -> None:
    doc = client.app.openapi()["paths"]["/v1/symbolic"]["post"]
    examples = doc["requestBody"]["content"]["application/json"]["examples"]
    assert {"quotient", "seed-3", "convention"} <= set(examples)
    answers = {name: symbolic(client, e["value"]) for name, e in examples.items()}
    assert answers["quotient"]["derivatives"] == ["(x + 1)**(-2)", "-2/(x + 1)**3"]
    assert answers["seed-3"]["values"]["derivatives"] == [[4.0, 27.0], [[2.0, 0.0], [0.0, 18.0]]]
    assert answers["convention"]["derivatives"] == ["floor(x)"]
    assert doc["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "SymbolicResponse"
    )


def test_a_registered_graph_by_its_id(client: TestClient) -> None:
    gid = client.post("/v1/graphs", json={"expression": "x**3"}).json()["graph_id"]
    got = symbolic(client, {"graph_id": gid, "order": 3, "values": {"x": 2.0}})
    assert got["derivatives"] == ["3*x**2", "6*x", "6"]
    assert got["values"]["derivatives"] == [12.0, 12.0, 6.0]
