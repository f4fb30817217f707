"""What a first user types: the constants e and pi, run-together names, a d/dx prefix,
a missing value, several targets at once, a derivative that is not finite, and the
README's example answer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from engine.check.agreement import Tally

README = Path(__file__).resolve().parents[2] / "README.md"


def post(client: TestClient, path: str, body: dict[str, Any], status: int = 200) -> Any:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    return r.json()


@pytest.mark.parametrize(
    ("expression", "order", "function", "derivatives"),
    [
        ("e^x", 1, "exp(x)", ["exp(x)"]),
        ("e^(-x^2)", 2, "exp(-x**2)", ["-2*x*exp(-x**2)", "2*(2*x**2 - 1)*exp(-x**2)"]),
        ("pi*x", 1, "pi*x", ["pi"]),
    ],
)
def test_e_and_pi_are_sympys_own_constants(client, expression, order, function, derivatives):
    got = post(client, "/v1/symbolic", {"expression": expression, "order": order})
    assert got["function"] == function and got["derivatives"] == derivatives
    assert "log(e)" not in json.dumps(got)


def test_the_check_writes_e_as_exp(client):
    got = post(client, "/v1/gradient", {"expression": "e^x", "values": {"x": 1}})
    assert got["check"]["status"] == "agree"
    assert got["check"]["symbolic"]["gradients"]["x"] == "exp(x)"
    assert got["check"]["latex"]["gradients"]["x"] == "e^{x}"


@pytest.mark.parametrize(
    ("expression", "values", "says"),
    [
        ("sinx", {"x": 1}, "`sinx` is one name: write `sin x` or `sin(x)`"),
        ("2xy", {"x": 1}, "`xy` is one name: write `x y` or `x*y`"),
        ("lnx + 1", {"x": 1}, "`lnx` is one name: write `ln x` or `ln(x)`"),
    ],
)
def test_run_together_names_are_pointed_out(client, expression, values, says):
    got = post(client, "/v1/gradient", {"expression": expression, "values": values}, 422)
    assert got["detail"] == says and got["node"] == "x"
    assert "not a node" not in got["detail"]


@pytest.mark.parametrize(("expression", "says"), [
    ("max()", "max() needs an argument"), ("exp(2)", "values names 'x'")])
def test_a_functions_own_name_is_no_run_together_name(client, expression, says):
    """``x`` is in ``max`` and ``exp``: the function's own name, not ``ma x``."""
    got = post(client, "/v1/gradient", {"expression": expression, "values": {"x": 1}}, 422)
    assert says in got["detail"] and "is one name" not in got["detail"]


@pytest.mark.parametrize("text", ["d/dx x^2", "d/dx(x^2)", "d^2/dx^2 x^3", "d/dt (t^2)"])
def test_a_derivative_operator_asks_for_the_function_itself(client, text):
    got = post(client, "/v1/gradient", {"expression": text, "values": {"x": 1, "t": 1}}, 422)
    assert "write the function itself" in got["detail"] and "order: 2" in got["detail"]
    assert got["field"] == "expression"


def test_d_and_dx_as_plain_variables_still_divide(client):
    got = post(client, "/v1/gradient", {"expression": "d/e", "values": {"d": 2}})
    assert got["outputs"]["f"] == pytest.approx(2 / 2.718281828459045)


def test_a_missing_value_says_what_to_add(client):
    got = post(client, "/v1/gradient", {"expression": "x*y", "values": {"x": 1}}, 422)
    assert got["detail"] == "y has no value: add y to values"
    assert got["node"] == "y" and got["field"] == "values"


def test_a_value_for_e_says_it_is_the_constant(client):
    got = post(client, "/v1/gradient", {"expression": "x^2", "values": {"x": 1, "e": 2}}, 422)
    assert got["detail"].startswith("e is the constant e = 2.71828")
    assert "not a node" not in got["detail"]


def test_a_plot_variable_not_in_the_function_names_the_variable_field(client):
    body = {"expression": "x^2", "variable": "z", "values": {"x": 1}, "range": [0, 1]}
    got = post(client, "/v1/plot", body, 422)
    assert got["field"] == "variable" and got["node"] == "z" and "x" in got["detail"]


@pytest.mark.parametrize(
    ("path", "extra"),
    [("/v1/gradient", {}), ("/v1/hessian", {}), ("/v1/derivative", {"order": 2})],
)
def test_several_targets_are_summed_and_a_note_says_so(client, path, extra):
    body = {"expressions": {"u": "x^2", "v": "x*y"}, "values": {"x": 1, "y": 2}, **extra}
    got = post(client, path, body)
    summed = [n for n in got["notes"] if n["reason"] == "summed_targets"]
    assert len(summed) == 1 and "u, v" in summed[0]["detail"]
    one = post(client, path, {**body, "target": "u"})
    assert not [n for n in one["notes"] if n["reason"] == "summed_targets"]


def test_the_jacobian_keeps_targets_apart_and_notes_no_sum(client):
    body = {"expressions": {"u": "x^2", "v": "x*y"}, "values": {"x": 1, "y": 2}}
    got = post(client, "/v1/jacobian", body)
    assert not [n for n in got["notes"] if n["reason"] == "summed_targets"]


@pytest.mark.parametrize("check", ["sympy", "numeric"])
def test_an_undefined_derivative_is_skipped_not_a_disagreement(client, check):
    got = post(
        client, "/v1/gradient", {"expression": "sqrt(x)", "values": {"x": 0}, "check": check}
    )
    assert got["gradients"]["x"] == "Infinity"
    assert got["check"]["status"] == "skipped", got["check"]
    assert "undefined or overflows" in got["check"]["detail"]
    mixed = post(
        client,
        "/v1/gradient",
        {"expression": "sqrt(x) + y^2", "values": {"x": 0, "y": 1}, "check": check},
    )
    assert mixed["check"]["status"] == "agree" and mixed["check"]["compared"] == 1


def test_the_readme_example_answer_is_what_the_server_sends(client):
    text = README.read_text()
    request = re.search(r"curl -s http://127.0.0.1:8000/v1/gradient .*? -d '(.*?)'\n", text, re.S)
    shown = re.search(r"```json\n(\{\"outputs\".*?)\n```", text, re.S)
    assert request and shown
    r = client.post(
        "/v1/gradient", content=request.group(1), headers={"Content-Type": "application/json"}
    )
    timing = re.compile(r'"elapsed_ms":[0-9.]+')
    assert timing.sub("", r.text) == timing.sub("", shown.group(1))


def test_only_entries_with_no_number_on_either_side_are_left_out():
    tally = Tally(rtol=1e-7, atol=1e-9, cap=10, sources=["x"])
    inf, nan = float("inf"), float("nan")
    tape = np.array([inf, nan, 3.0, inf, 1.0])
    ref = np.array([nan, inf, nan, -inf, 1.0])
    tally.add(("gradients", "x"), tape, ref)
    report = tally.report("sympy", "SymPy's derivative")
    # a finite tape against NaN, and +inf against -inf, are still wrong
    assert report.status == "disagree" and tally.bad == 2
    assert [d["index"] for d in report.disagreements] == [[2], [3]]
    assert tally.not_finite == 2 and report.compared == 3
