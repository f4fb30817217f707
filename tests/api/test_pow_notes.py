"""A non-finite ``pow`` is noted with the cause its values show, not a list of guesses.

``10 ** 1000`` overflows; it used to be noted as "a negative base with a non-integer
exponent", the op's one fixed reason.
"""

from __future__ import annotations

import pytest

from tests.api.support import graph, notes_for, op, post, var

OVERFLOW = "overflow"
NEGATIVE_BASE = "a negative base with a non-integer exponent"
ZERO_BASE = "zero to a negative power"


def pow_note(body: dict) -> str:
    notes = [n for n in notes_for(body, "non_finite") if n.get("node") == "p"]
    assert len(notes) == 1, body["notes"]
    return notes[0]["detail"]


@pytest.mark.parametrize("kind", ["evaluate", "gradient"])
@pytest.mark.parametrize(
    ("base", "exponent", "output", "cause", "not_causes"),
    [
        (10.0, 1000.0, "Infinity", OVERFLOW, (NEGATIVE_BASE, ZERO_BASE)),
        (-10.0, 1001.0, "-Infinity", OVERFLOW, (NEGATIVE_BASE, ZERO_BASE)),
        (0.5, -2000.0, "Infinity", OVERFLOW, (NEGATIVE_BASE, ZERO_BASE)),
        (-8.0, 0.5, "NaN", NEGATIVE_BASE, (OVERFLOW, ZERO_BASE)),
        (0.0, -1.0, "Infinity", ZERO_BASE, (OVERFLOW, NEGATIVE_BASE)),
    ],
)
def test_the_note_names_the_cause_the_values_show(
    client, kind, base, exponent, output, cause, not_causes
):
    body = post(client, kind, graph(var("x", base), op("p", "pow", "x", exponent), check="none"))
    assert body["outputs"]["p"] == output
    detail = pow_note(body)
    assert detail.startswith("pow: ") and cause in detail, detail
    assert not any(other in detail for other in not_causes), detail
    if kind == "gradient":
        assert [n["source"] for n in notes_for(body, "non_finite") if "source" in n] == ["x"]


def test_an_expression_overflowing_is_noted_as_overflow(client):
    body = post(client, "gradient", {"expression": "x**1000", "values": {"x": 10}, "check": "none"})
    (note,) = [n for n in notes_for(body, "non_finite") if "node" in n]
    assert OVERFLOW in note["detail"] and NEGATIVE_BASE not in note["detail"], note


def test_elementwise_causes_are_each_named_once(client):
    g = graph(var("x", [10.0, -8.0, 2.0]), var("y", [1000.0, 0.5, 2.0]),
              op("p", "pow", "x", "y"), check="none")
    detail = pow_note(post(client, "evaluate", g))
    assert detail == f"pow: {NEGATIVE_BASE} and {OVERFLOW} (the result is beyond float64's range)"


def test_over_points_the_cause_is_read_per_element(client):
    g = graph(var("x", 1.0), op("p", "pow", "x", 1000.0), check="none")
    body = post(client, "gradient", {**g, "points": {"x": [1.0, 10.0]}})
    assert body["outputs"]["p"] == [1.0, "Infinity"]
    detail = pow_note(body)
    assert OVERFLOW in detail and NEGATIVE_BASE not in detail, detail
