"""``app.offload.decode_json`` gives what ``json.loads`` gives (orjson where it can): the same
value with the same types, or the same JSONDecodeError; and the service answers a body
the same whichever of the two decoded it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import offload
from app.guards import OFF_LOOP_MIN_BYTES
from app.offload import decode_json
from app.wire.values import BeyondFloat64
from tests.api.support import graph, op, var


def typed(value: Any) -> Any:
    """``value`` with every number's type spelled out (1 and 1.0, -0.0 and 0.0, NaN)."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    return (type(value).__name__, value)


def same_as_json_loads(body: bytes) -> None:
    try:
        expected: Any = typed(json.loads(body))
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bytes not text
        expected = ("error", type(exc), str(exc))
    try:
        got: Any = typed(decode_json(body))
    except ValueError as exc:
        got = ("error", type(exc), str(exc))
    assert got == expected, body[:200]


ODD = [
    b'{"a": 1, "b": 2, "a": 3}',  # the last of a duplicate key, in the first one's place
    b"1e400", b"-1e400", b"[1e-400]", b"-0", b"-0.0", b"NaN", b"[Infinity, -Infinity]",
    b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808",
    b"-9223372036854775809", b"[123456789012345678901234567890]",
    b"0.12345678901234567890123", b'"\\ud800"', b'"\\u0000"', b"\xef\xbb\xbf{}",
    '{"x": "é"}'.encode("utf-16"), b'["\xc3\xa9"]', b"[1, 2", b"{} x", b"", b" ", b"[01]",
    b"{'a': 1}", b"[1,]", b"\xff", b"[" + b"7" * 5000 + b"]",  # past Python's int digits
    b'{"a": 1.5e308, "b": 2.2250738585072014e-308}',
]


@pytest.mark.parametrize("body", ODD, ids=range(len(ODD)))
def test_odd_bodies_decode_as_json_loads_decodes_them(body):
    same_as_json_loads(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text()
    | st.integers(min_value=-(2**70), max_value=2**70),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_document_decodes_as_json_loads_decodes_it(value):
    same_as_json_loads(json.dumps(value).encode())  # NaN and Infinity written as tokens
    same_as_json_loads(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


# Numbers as people write them: up to 18 digits a run (orjson's side of decode_json), more
# digits than a float holds, exponents that round near the ends of the range; and long
# fractions (orjson's too: only a long integer token is not) and long integers.
NUMBER = st.from_regex(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?([eE][-+]?[0-9]{1,3})?",
                       fullmatch=True)
LONG_NUMBER = st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,60})?([eE][-+]?[0-9]{1,3})?",
                            fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(st.lists(NUMBER | LONG_NUMBER, min_size=1, max_size=8))
def test_any_number_decodes_as_json_loads_decodes_it(numbers):
    same_as_json_loads(("[" + ",".join(numbers) + "]").encode())
    same_as_json_loads(('{"x": [' + ", ".join(numbers) + "]}").encode())


BODIES = {
    "valid": json.dumps(graph(var("x", 3.0), op("y", "pow", "x", 2), check="none")).encode(),
    "NaN token": b'{"graph": {"nodes": [{"id": "x", "op": "variable", "value": NaN}]}, '
                 b'"check": "none"}',
    "huge int attr": json.dumps(graph(
        var("x", [1.0, 2.0]), op("s", "sum", "x", axis=2**64))).encode(),
    "huge order": json.dumps(
        {"expression": "x^2", "values": {"x": 1.0}, "order": 2**70}).encode(),
    "byte-order mark": b"\xef\xbb\xbf" + json.dumps(graph(var("x", 2.0), check="none")).encode(),
    "not text": b'{"expression": "x\xff", "values": {"x": 1.0}}',
    "past the digits of an int": b'{"expression": "x", "values": {"x": 1' + b"2" * 5000 + b"}}",
    "malformed": b'{"expression": "x^2", "values": {"x": 1.0}',
    "lone surrogate": b'{"expression": "x\\ud800", "values": {"x": 1.0}}',
}


@pytest.mark.parametrize("case", list(BODIES))
@pytest.mark.parametrize("path", ["/v1/gradient", "/v1/derivative", "/v1/graphs"])
def test_the_service_answers_as_with_json_loads(make_client, monkeypatch, case, path):
    def answer() -> tuple[int, Any]:  # a new client each time: a graph registers as new
        r = make_client().post(
            path, content=BODIES[case], headers={"content-type": "application/json"})
        data = r.json()
        if isinstance(data, dict):
            data.pop("request_id", None)
        return r.status_code, data

    fast = answer()
    # FastAPI's own decoding: app.offload hands the request over untouched
    monkeypatch.setattr(offload, "is_json_media_type", lambda _content_type: False)
    assert fast == answer()
    assert fast[0] < 500


def test_nesting_past_the_interpreters_recursion_is_a_400(make_client):
    """Only where an operator raised DERIV_MAX_JSON_DEPTH past what json.loads recurses."""
    deep = b'{"expression": "x", "values": {"x": ' + b"[" * 3000 + b"1" + b"]" * 3000 + b"}}"
    client = make_client(max_json_depth=10_000)
    assert not offload.decoded_off_loop(deep)
    for body in (deep, deep + b" " * OFF_LOOP_MIN_BYTES):  # on the loop, in a thread
        r = client.post("/v1/gradient", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text[:300]


def test_a_number_past_float64s_range_decodes_marked_with_json_loads_value():
    """JSON has no infinity: ``1e309`` is read as json.loads reads it (inf), marked, so that
    a value can refuse it (``app.wire.values.BeyondFloat64``); in range it is a plain float."""
    body = b"[1e309, -1e400, 1.5e308, 1" + b"0" * 400 + b".0, 2]"
    decoded = decode_json(body)
    assert decoded == json.loads(body) == [math.inf, -math.inf, 1.5e308, math.inf, 2]
    assert [type(v) for v in decoded] == [BeyondFloat64, BeyondFloat64, float, BeyondFloat64, int]


OVERFLOWING = {
    "values.x": b'{"expression": "2*x", "values": {"x": 1e309}, "check": "none"}',
    "values.x[1]": b'{"expression": "sum(x)", "values": {"x": [1, -1e400]}, "check": "none"}',
    "graph.nodes.0.value": b'{"graph": {"nodes": [{"id": "x", "op": "variable", "value": 1e999}'
                           b', {"id": "y", "op": "mul", "inputs": ["x", 2]}]}, "check": "none"}',
    "graph.nodes.1.inputs.1": b'{"graph": {"nodes": [{"id": "x", "op": "variable", "value": 1}, '
                              b'{"id": "y", "op": "mul", "inputs": ["x", 1e309]}]}}',
    # a large body, decoded and validated in the body thread
    "values.x[19999]": json.dumps({"expression": "sum(x)", "values": {"x": [1.5] * 19_999 + [7]},
                                   "check": "none"}).encode().replace(b"7]", b"7e400]"),
}


@pytest.mark.parametrize("where", list(OVERFLOWING))
def test_a_number_past_float64s_range_is_a_422_naming_it(make_client, where):
    body = OVERFLOWING[where]
    field, _, index = where.partition("[")
    r = make_client().post("/v1/gradient", content=body,
                           headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text[:300]
    problem = r.json()
    assert problem["field"] == field
    assert "beyond the float64 range" in problem["detail"] and '"' in problem["detail"]
    sign = "-" if b"-1e400" in body else ""
    assert f'written \\"{sign}Infinity\\"' in r.text
    if index:
        assert f"at [{index}" in problem["detail"]


def test_an_infinity_token_is_still_read_as_infinity(make_client):
    """Python's json.dumps writes an infinite float as the bare token ``Infinity``, and the
    service has always read it so; only a number written past the range is refused."""
    r = make_client().post("/v1/gradient", content=b'{"expression": "2*x", "values": '
                           b'{"x": Infinity}, "check": "none"}',
                           headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["outputs"]["f"] == "Infinity"


def test_a_body_of_long_fractions_is_orjsons(monkeypatch):
    """Only an integer token of 19 digits or more sends a body to json.loads: the 20 digits
    of 0.00012345678901234567 follow a point (such bodies took json.loads' 22 ms a 2 MB
    body, orjson's 7)."""
    body = json.dumps({"x": [1.2345678901234567e-4, 0.012345678901234567] * 100}).encode()
    assert b"0.00012345678901234567" in body

    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("json.loads was called")

    monkeypatch.setattr(offload.json, "loads", refused)
    assert typed(decode_json(body)) == typed(json.JSONDecoder().decode(body.decode()))
    with pytest.raises(AssertionError):
        decode_json(b'{"x": [1, 12345678901234567890]}')
    with pytest.raises(AssertionError):
        decode_json(b'{"x": [1.5, NaN]}')
