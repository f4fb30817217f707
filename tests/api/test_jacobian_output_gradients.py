"""``/v1/jacobian`` takes ``output_gradients`` (the contract lets every compute request carry
it) but TF's ``jacobian`` has no such argument: the rows stay unweighted and a note says the
field was ignored, never silently; the other kinds still weight by it."""

from __future__ import annotations

BODY = {
    "expression": "x^2 + y^3",
    "values": {"x": 2.0, "y": 3.0},
    "check": "none",
}


def test_jacobian_with_output_gradients_answers_unweighted_and_says_so(client):
    (target,) = client.post("/v1/evaluate", json=BODY).json()["outputs"]
    r = client.post("/v1/jacobian", json={**BODY, "output_gradients": {target: 2.0}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["jacobian"][target] == {"x": 4.0, "y": 27.0}
    (note,) = [n for n in body["notes"] if n["reason"] == "ignored_field"]
    assert "output_gradients" in note["detail"] and "no such argument" in note["detail"]


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
