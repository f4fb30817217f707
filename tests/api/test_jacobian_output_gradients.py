"""``/v1/jacobian`` refuses ``output_gradients`` (TF's ``jacobian`` has no such argument)
with a 422 naming the field, rather than ignoring it; the other kinds still weight by it."""

from __future__ import annotations

BODY = {
    "expression": "x^2 + y^3",
    "values": {"x": 2.0, "y": 3.0},
    "check": "none",
}


def test_jacobian_with_output_gradients_is_a_422_naming_the_field(client):
    (target,) = client.post("/v1/evaluate", json=BODY).json()["outputs"]
    r = client.post("/v1/jacobian", json={**BODY, "output_gradients": {target: 2.0}})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["field"] == "output_gradients"
    assert "jacobian" in problem["detail"] and "no such argument" in problem["detail"]


def test_jacobian_without_output_gradients_still_answers(client):
    r = client.post("/v1/jacobian", json=BODY)
    assert r.status_code == 200, r.text
    jac = r.json()["jacobian"]
    (row,) = jac.values()
    assert row == {"x": 4.0, "y": 27.0}


def test_gradient_still_takes_output_gradients(client):
    plain = client.post("/v1/gradient", json=BODY).json()
    (target,) = plain["outputs"]
    weighted = client.post("/v1/gradient", json={**BODY, "output_gradients": {target: 2.0}})
    assert weighted.status_code == 200, weighted.text
    assert weighted.json()["gradients"] == {"x": 8.0, "y": 54.0}
