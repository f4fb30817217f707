"""Refusing a hostile body costs about what reading it costs (``app.wire.bounded``).

Before: pydantic reported every invalid item, so ``{"graph": {"nodes": [0, 0, ...]}}``
made one error per two bytes (690,000 for 1.4 MB, 2 to 3 s to refuse), and a node's
450,000 valid inline constants were each decoded before the engine counted them. Here
the number of errors a body makes is bounded whatever its size, lists a limit bounds are
measured before their items are read, and both roads (a small body on the event loop, a
large one in a worker thread) answer alike.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from app.guards import OFF_LOOP_MIN_BYTES
from app.problems import MAX_ERRORS
from app.wire.bounded import MAX_UNKNOWN_FIELDS, check_counts
from app.wire.pictures import PlotRequest
from app.wire.requests import ComputeRequest, GraphRequest, SymbolicRequest
from engine.errors import LimitError
from engine.graphs.graph import Limits

SEED = {"expression": "x*y", "values": {"x": 1.0, "y": 2.0}, "check": "none"}
HEADERS = {"content-type": "application/json"}


def hostile(items: int) -> dict[str, dict[str, Any]]:
    """Bodies that each make ``items`` errors or more when every invalid item is reported."""
    unknown = {f"k{i}": 0 for i in range(items)}
    return {
        "nodes that are numbers": {"graph": {"nodes": [0] * items}},
        "a node of unknown fields": {
            "graph": {"nodes": [{"id": "x", "op": "variable", **unknown}]}
        },
        "unknown top-level fields": {**SEED, **unknown},
        "values that are not numbers": {**SEED, "values": {f"v{i}": "x" for i in range(items)}},
        "watch of numbers": {**SEED, "watch": [0] * items},
        "target of numbers": {**SEED, "target": [0] * items},
        "points that are not maps": {**SEED, "points": [0] * items},
        "points of bad values": {**SEED, "points": [{"x": "a"}] * items},
        "inputs that are not values": {
            "graph": {"nodes": [{"id": "s", "op": "add_n", "inputs": [{}] * items}]}
        },
        "expressions of numbers": {"expressions": {f"e{i}": 0 for i in range(items)}},
    }


@pytest.mark.parametrize("model", [ComputeRequest, GraphRequest, SymbolicRequest, PlotRequest])
@pytest.mark.parametrize("case", list(hostile(1)))
def test_a_body_makes_few_errors_however_many_items_are_wrong(model, case):
    body = hostile(5_000)[case]
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    # one per field at most, and MAX_UNKNOWN_FIELDS for an object's unknown fields
    assert info.value.error_count() <= len(model.model_fields) + MAX_UNKNOWN_FIELDS


def test_the_errors_of_different_fields_are_all_reported():
    body = {"graph": {"nodes": [0]}, "check": "all", "trace": 1, "watch": [0], "colour": 1}
    with pytest.raises(ValidationError) as info:
        ComputeRequest.model_validate(body)
    locs = {e["loc"][0] for e in info.value.errors()}
    assert {"graph", "check", "trace", "watch", "colour"} <= locs


@pytest.mark.parametrize("unknown", [MAX_UNKNOWN_FIELDS, MAX_UNKNOWN_FIELDS + 1, 40])
def test_at_most_so_many_unknown_fields_are_read(unknown):
    body = {**SEED, **{f"k{i}": 0 for i in range(unknown)}}
    with pytest.raises(ValidationError) as info:
        ComputeRequest.model_validate(body)
    assert info.value.error_count() == min(unknown, MAX_UNKNOWN_FIELDS)


def test_the_first_unknown_fields_are_named_in_order():
    body = {**SEED, **{f"k{i}": 0 for i in range(1_000)}}
    with pytest.raises(ValidationError) as info:
        ComputeRequest.model_validate(body)
    unknown = [e["loc"][0] for e in info.value.errors() if e["type"] == "extra_forbidden"]
    assert unknown == [f"k{i}" for i in range(MAX_UNKNOWN_FIELDS)]


def more_of(detail: str) -> int:
    found = re.search(r"\(and (\d+) more\)", detail)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("road", ["on the loop", "in a thread"])
@pytest.mark.parametrize("case", list(hostile(1)))
def test_the_problem_counts_few_errors_on_both_roads(client, case, road):
    body = hostile(5_000 if road == "on the loop" else 60_000)[case]
    raw = orjson.dumps(body)
    assert (len(raw) < OFF_LOOP_MIN_BYTES) is (road == "on the loop"), len(raw)
    r = client.post("/v1/gradient", content=raw, headers=HEADERS)
    assert r.status_code in (413, 422), r.text
    problem = r.json()
    assert problem["detail"]
    assert more_of(problem["detail"]) < MAX_ERRORS + MAX_UNKNOWN_FIELDS, problem["detail"]
    assert len(problem.get("errors", [])) <= MAX_ERRORS
    assert client.get("/healthz").status_code == 200


def test_an_unknown_field_still_gets_its_suggestion(client):
    body = {**SEED, "value": {"x": 1.0}, **{f"k{i}": 0 for i in range(100)}}
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 422
    assert "did you mean 'values'?" in r.json()["errors"][0]["msg"]


LIMITS = Limits(max_nodes=50, max_inputs=4, max_points=6)


@pytest.mark.parametrize(
    ("body", "field", "node", "count"),
    [
        ({"graph": {"nodes": [0] * 51}}, "nodes", None, 51),
        ({"graph": {"nodes": [{"id": "s", "op": "add_n", "inputs": [[0]] * 5}]}}, "inputs", "s", 5),
        ({"graph": {"nodes": [{"id": 7, "op": "add_n", "inputs": [0] * 5}]}}, "inputs", None, 5),
        ({"graph": {"nodes": [{"id": "a" * 129, "inputs": [0] * 5}]}}, "inputs", None, 5),
        ({**SEED, "points": [{}] * 7}, "points", None, 7),
        ({**SEED, "values": {f"v{i}": 0 for i in range(51)}}, "values", None, 51),
        ({**SEED, "output_gradients": {f"v{i}": 0 for i in range(51)}}, "output_gradients",
         None, 51),
    ],
)
def test_lists_are_measured_before_their_items_are_read(body, field, node, count):
    with pytest.raises(LimitError) as info:
        check_counts(body, LIMITS)
    assert info.value.field == field and info.value.node == node
    assert info.value.detail.startswith(f"{count} ")


@pytest.mark.parametrize(
    "body",
    [
        {"graph": {"nodes": [{"id": "s", "op": "add_n", "inputs": [0] * 4}] * 50}},
        {**SEED, "points": [{}] * 6, "values": {f"v{i}": 0 for i in range(50)}},
        {"graph": "nodes"},
        {"graph": {"nodes": {"a": 1}}},
        {"points": {"x": [0] * 1000}},
        [0] * 100,
        "text",
    ],
)
def test_lists_within_the_limits_pass_the_count(body):
    check_counts(body, LIMITS)  # raises nothing: the models and the engine judge the rest


@pytest.mark.parametrize("road", ["on the loop", "in a thread"])
def test_a_node_of_too_many_inline_constants_is_refused_by_count(make_client, road):
    client = make_client(max_inputs=10)
    items = 10 if road == "on the loop" else 20_000
    body = {"graph": {"nodes": [{"id": "s", "op": "add_n", "inputs": [[0.5]] * (items + 1)}]}}
    raw = orjson.dumps(body)
    assert (len(raw) < OFF_LOOP_MIN_BYTES) is (road == "on the loop")
    r = client.post("/v1/evaluate", content=raw, headers=HEADERS)
    assert r.status_code == 413, r.text
    problem = r.json()
    assert problem["node"] == "s" and problem["detail"].startswith(f"{items + 1} inputs")


@pytest.mark.parametrize("field", ["target", "sources", "watch"])
def test_more_ids_than_a_graph_has_nodes_are_refused(make_client, field):
    client = make_client(max_nodes=20)
    r = client.post("/v1/gradient", json={**SEED, field: ["x"] * 21})
    assert r.status_code == 413, r.text
    assert r.json()["detail"] == f"21 ids in {field}, over the limit of 20"
    ok = client.post("/v1/gradient", json={**SEED, field: ["x"] * 20})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SEED, "points": {f"v{i}": [0.0] for i in range(51)}}, "points"),
        ({**SEED, "points": [{f"v{i}": 0.0 for i in range(51)}]}, "points"),
        ({"expressions": {f"e{i}": "x" for i in range(51)}}, "expressions"),
    ],
)
def test_names_of_points_and_expressions_are_counted(body, field):
    with pytest.raises(LimitError) as info:
        check_counts(body, LIMITS)
    assert info.value.field == field and info.value.detail.startswith("51 names")


def wide_expression(names: int) -> str:
    """A text of ``names`` distinct variables."""
    return " + ".join(f"w{i}" for i in range(names))


def test_unused_value_names_are_searched_in_the_text_a_bounded_number_of_times(
    client, monkeypatch
):
    """A hint for an unused name reads every name of the text: 3,269 names and 206,388
    unused value names once took 130 s; now at most MAX_HINTED_NAMES are searched."""
    from engine.graphs import expression

    searched: list[str] = []
    search = expression.run_together
    monkeypatch.setattr(expression, "run_together",
                        lambda name, words: searched.append(name) or search(name, words))
    values = dict.fromkeys(wide_expression(300).split(" + "), 1.0)
    values.update({f"zz{i}": 1.0 for i in range(2_000)})
    r = client.post("/v1/gradient", json={"expression": wide_expression(300), "values": values,
                                          "check": "none"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "values"
    assert 0 < len(searched) <= expression.MAX_HINTED_NAMES
    # the hint itself is kept: a name run into a longer one is pointed out
    r = client.post("/v1/gradient", json={"expression": "sinx", "values": {"x": 1.0}})
    assert r.status_code == 422 and "`sinx` is one name" in r.json()["detail"]
    # and a value for a constant is named whatever else the request names
    values = {"x": 1.0, "pi": 3.0, **{f"a{i}": 1.0 for i in range(100)}}
    r = client.post("/v1/gradient", json={"expression": "x^2", "values": values})
    assert r.status_code == 422 and r.json()["field"] == "values.pi", r.text


@pytest.mark.parametrize("field", ["watch", "sources"])
def test_listed_ids_are_checked_without_scanning_the_leaves(field, monkeypatch):
    """Whether an id is a leaf is its node's op: ``in leaves`` scanned a tuple of 10,000
    leaves for each of 10,000 ids (1.75 s)."""
    from engine.derive import query
    from engine.derive.query import Query
    from engine.graphs.build import build_graph

    class Unscannable(tuple):
        def __contains__(self, item: object) -> bool:
            raise AssertionError("the leaves were scanned")

    nodes = [{"id": f"a{i}", "op": "variable", "value": 1.0} for i in range(50)]
    graph = build_graph([*nodes, {"id": "y", "op": "sin", "inputs": ["a0"]}])
    graph.leaves = Unscannable(graph.leaves)
    q = Query(graph=graph, watch=["a49"] * 50 if field == "watch" else ())
    query.check_leaf_ids(q, ["a49"] * 50 + ["y"] * (field == "sources"), field)
    if field == "watch":
        with pytest.raises(query.GraphError, match="which is not a leaf"):
            query.check_leaf_ids(q, ["y"], field)


def test_a_long_unknown_field_gets_no_spelling_search(client, monkeypatch):
    """difflib reads every character of the key it compares: 2 MB of key took 0.3 s of the
    event loop. A key longer than any field is no typo of one."""
    import difflib

    compared: list[str] = []
    close = difflib.get_close_matches
    monkeypatch.setattr(difflib, "get_close_matches",
                        lambda word, *a, **k: compared.append(word) or close(word, *a, **k))
    r = client.post("/v1/gradient", json={**SEED, "v" * 100_000: 1})
    assert r.status_code == 422 and "the fields here are" in r.json()["errors"][0]["msg"]
    assert compared == []
    r = client.post("/v1/gradient", json={**SEED, "valeus": 1})
    assert "did you mean 'values'?" in r.json()["errors"][0]["msg"] and compared == ["valeus"]


def test_a_small_body_of_many_arrays_is_decoded_off_the_loop(client, monkeypatch):
    """64 KB of nested one-number arrays took 26 to 42 ms to validate on the event loop."""
    from app import offload

    where: list[bool] = []
    decode = offload._decode_and_validate
    monkeypatch.setattr(offload, "_decode_and_validate",
                        lambda *args: where.append(True) or decode(*args))
    nested = [[[[[[0.5]]]]]] * 1000
    body = orjson.dumps({"expression": "sum(x)", "values": {"x": nested}, "check": "none"})
    assert len(body) < OFF_LOOP_MIN_BYTES
    r = client.post("/v1/gradient", content=body, headers=HEADERS)
    assert r.status_code == 200 and where == [True], r.text
    r = client.post("/v1/gradient", json=SEED)
    assert r.status_code == 200 and where == [True]  # the seed stays on the loop


def test_a_refusal_names_a_few_unknown_attrs(client):
    attrs = {f"k{i}": 0 for i in range(10_000)}
    body = {"graph": {"nodes": [{"id": "x", "op": "variable", "value": [1.0]},
                                {"id": "s", "op": "sum", "inputs": ["x"], "attrs": attrs}]}}
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "['k0', 'k1', 'k2', 'k3', 'k4'] and 9995 more" in detail and len(detail) < 400
    long = {"k" * 100: 0}
    body["graph"]["nodes"][1]["attrs"] = long
    detail = client.post("/v1/gradient", json=body).json()["detail"]
    assert f"['{'k' * 37}...']" in detail
