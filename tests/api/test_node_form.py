"""The node list's plain pass (app.wire.node_form) and the Node model accept and refuse the
same documents, and decode what they accept alike: the pass is only a faster road."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.wire import node_form
from app.wire.node_form import (
    KEYED_MIN_NODES,
    FormNode,
    KeyedNodes,
    KnownNodes,
    form_nodes,
    json_digest,
)
from app.wire.requests import ComputeRequest, Graph, Node
from engine.lru import LRU

MODEL = TypeAdapter(list[Node])  # the model alone, without the plain pass in front

numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**1100), max_value=2**1100),  # past float64's range too
)
scalars = st.one_of(numbers, st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "inf"]))
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.lists(st.lists(numbers, min_size=2, max_size=2), max_size=2),  # rectangular
    st.lists(st.lists(numbers, max_size=3), min_size=2, max_size=2),  # perhaps ragged
    st.booleans(),
    st.none(),
    st.just({}),
)
ids = st.one_of(
    st.sampled_from(["x", "_y", "a.b:c-1", "A" * 128]),
    st.sampled_from(["", "1x", "a b", "é", "x\n", "A" * 129]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,10}", fullmatch=True),
    st.integers(),
    st.none(),
)
refs = st.one_of(st.sampled_from(["x", "", "r" * 128, "r" * 129, "NaN"]), st.text(max_size=4))
inputs = st.one_of(
    st.lists(st.one_of(refs, values), max_size=3), st.none(), st.just("x"), st.just({})
)
attrs = st.one_of(
    st.dictionaries(
        st.sampled_from(["axis", "keepdims", "shape"]),
        st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)),
        max_size=2,
    ),
    st.none(),
    st.just([]),
)
trainables = st.one_of(st.booleans(), st.none(), st.just(1), st.just("true"))
ops = st.one_of(
    st.sampled_from(["add", "variable", "constant", "nope", "o" * 64, "o" * 65]),
    st.integers(),
    st.none(),
)


good_values = st.one_of(
    numbers,
    st.sampled_from(["NaN", "Infinity", "-Infinity"]),
    st.lists(numbers, max_size=3),
    st.lists(st.lists(numbers, min_size=2, max_size=2), max_size=2),
)


@st.composite
def valid_nodes(draw: Any) -> dict[str, Any]:
    """A node of the right form (what it means is the engine's business)."""
    out: dict[str, Any] = {
        "id": draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,10}", fullmatch=True)),
        "op": draw(st.sampled_from(["add", "variable", "constant", "nope"])),
    }
    if draw(st.booleans()):
        out["inputs"] = draw(
            st.lists(st.one_of(st.sampled_from(["x", "NaN"]), good_values), max_size=3)
        )
    if draw(st.booleans()):
        out["attrs"] = draw(attrs.filter(lambda a: isinstance(a, dict)))
    if draw(st.booleans()):
        out["value"] = draw(st.one_of(good_values, st.none()))
    if draw(st.booleans()):
        out["trainable"] = draw(st.booleans())
    return out


@st.composite
def broken_nodes(draw: Any) -> Any:
    """A node as a client may send it: often broken in one or more ways."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.one_of(st.none(), st.just([]), st.just("node"), st.integers()))
    out: dict[str, Any] = {}
    if draw(st.integers(0, 20)):
        out["id"] = draw(ids)
    if draw(st.integers(0, 20)):
        out["op"] = draw(ops)
    for key, strategy in (
        ("inputs", inputs),
        ("attrs", attrs),
        ("value", values),
        ("trainable", trainables),
    ):
        if draw(st.booleans()):
            out[key] = draw(strategy)
    if draw(st.integers(0, 15)) == 0:
        out[draw(st.sampled_from(["input", "Value", "extra"]))] = 1
    return out


@st.composite
def node_lists(draw: Any) -> list[Any]:
    """Valid nodes, and as often as not one node that may be broken among them."""
    nodes = draw(st.lists(valid_nodes(), min_size=1, max_size=4))
    if draw(st.booleans()):
        nodes.insert(draw(st.integers(0, len(nodes))), draw(broken_nodes()))
    return nodes


def _same_value(a: Any, b: Any) -> bool:
    if type(a) is str or type(b) is str:
        return a == b
    if a is None or b is None:
        return a is b
    return type(a) is type(b) and np.array_equal(a, b, equal_nan=True)


def _assert_alike(fast: FormNode, model: Node) -> None:
    assert (fast.id, fast.op, fast.attrs, fast.trainable) == (
        model.id,
        model.op,
        model.attrs,
        model.trainable,
    )
    assert fast.given_trainable == model.given_trainable
    assert len(fast.inputs) == len(model.inputs)
    assert all(_same_value(a, b) for a, b in zip(fast.inputs, model.inputs, strict=True))
    assert _same_value(fast.value, model.value)


@settings(max_examples=400, deadline=None)
@given(node_lists())
def test_the_plain_pass_and_the_model_agree(raw: list[Any]) -> None:
    fast = form_nodes(raw)
    try:
        model = MODEL.validate_python(raw)
    except ValidationError:
        event("refused")
        assert fast is None, raw  # the model refuses: the pass must not accept
        return
    event("accepted")
    assert fast is not None, raw  # the model accepts: the pass takes the fast road too
    for f, m in zip(fast, model, strict=True):
        _assert_alike(f, m)


def test_the_graph_takes_the_plain_pass_and_keeps_the_models_refusals() -> None:
    ok = Graph.model_validate({"nodes": [{"id": "x", "op": "variable", "value": [1, "NaN"]}]})
    assert type(ok.nodes[0]) is FormNode
    assert math.isnan(ok.nodes[0].value[1])
    with pytest.raises(ValidationError) as refused:
        ComputeRequest.model_validate(
            {
                "graph": {
                    "nodes": [
                        {"id": "x", "op": "variable", "value": 1.0},
                        {"id": "y", "op": "neg", "inputs": ["x"], "trainable": "yes"},
                    ]
                }
            }
        )
    assert [e["loc"] for e in refused.value.errors()] == [("graph", "nodes", 1, "trainable")]
    with pytest.raises(ValidationError) as empty:
        Graph.model_validate({"nodes": []})
    assert empty.value.errors()[0]["loc"] == ("nodes",)


def test_a_long_chain_takes_the_plain_pass() -> None:
    nodes: list[dict[str, Any]] = [{"id": "x0", "op": "variable", "value": 0.5}]
    nodes += [{"id": f"x{i}", "op": "add", "inputs": [f"x{i - 1}", 0.1]} for i in range(1, 5000)]
    graph = Graph.model_validate({"nodes": nodes})
    assert all(type(n) is FormNode for n in graph.nodes)
    assert graph.nodes[-1].inputs == ["x4998", np.float64(0.1)]


def _long(last_input: Any = 0.1, n: int = KEYED_MIN_NODES) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = [{"id": "x0", "op": "variable", "value": 0.5}]
    nodes += [{"id": f"x{i}", "op": "add", "inputs": [f"x{i - 1}", 0.1]} for i in range(1, n)]
    nodes[-1]["inputs"][1] = last_input
    return nodes


def test_a_long_list_is_keyed_by_its_json_and_a_short_one_is_not() -> None:
    short = form_nodes(_long(n=KEYED_MIN_NODES - 1))
    assert short is not None and getattr(short, "digest", None) is None
    first = form_nodes(_long())
    assert isinstance(first, KeyedNodes) and first.digest is not None
    again = form_nodes(json.loads(json.dumps(_long())))  # the same JSON, decoded afresh
    assert isinstance(again, KnownNodes) and again.digest == first.digest
    assert len(again) == len(first)
    for f, k in zip(first, again, strict=True):  # read, it is checked and decoded alike
        assert (f.id, f.op, f.attrs, f.trainable) == (k.id, k.op, k.attrs, k.trainable)
        assert all(_same_value(a, b) for a, b in zip(f.inputs, k.inputs, strict=True))


@pytest.mark.parametrize("spelling", [1, 1.0, 2**53, 0.1 + 2e-17, -0.0, "NaN", [0.1]])
def test_every_spelling_of_a_number_is_a_key_of_its_own(spelling: Any) -> None:
    keys = {json_digest(_long(s)) for s in (spelling, 0.1)}
    assert None not in keys and len(keys) == 2
    assert json_digest(_long(1)) != json_digest(_long(1.0))


@pytest.mark.parametrize("odd", [math.nan, math.inf, None, 2**70])
def test_json_that_orjson_cannot_tell_apart_has_no_key(odd: Any) -> None:
    assert json_digest(_long(odd)) is None  # NaN and null both write as null


def test_subclasses_of_json_types_have_no_key() -> None:
    class Ref(str):
        pass

    nodes = _long()
    nodes[-1]["inputs"][0] = Ref(nodes[-1]["inputs"][0])
    assert json_digest(nodes) is None
    assert json_digest(_long()) is not None


@pytest.mark.parametrize(
    ("known", "bad"), [(1, True), (0, False), (0.1, None), (0.1, {}), ("x0", ""), ("x0", "r" * 129)]
)
def test_a_known_list_changed_in_one_input_is_checked_afresh(known: Any, bad: Any) -> None:
    assert form_nodes(_long(known)) is not None
    assert isinstance(form_nodes(_long(known)), KnownNodes)
    assert form_nodes(_long(bad)) is None  # 1 == True in Python, not in its JSON
    with pytest.raises(ValidationError) as refused:
        Graph.model_validate({"nodes": _long(bad)})
    assert refused.value.errors()[0]["loc"][:3] == ("nodes", KEYED_MIN_NODES - 1, "inputs")


def test_released_nodes_keep_their_count_and_cannot_be_read() -> None:
    form_nodes(_long())
    known = form_nodes(_long())
    assert isinstance(known, KnownNodes)
    built = object()
    known.release(built)
    assert known.built is built and len(known) == KEYED_MIN_NODES
    with pytest.raises(RuntimeError):
        list(known)


def test_the_digests_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_form, "PASSED", LRU(2))
    lists = [_long(float(k)) for k in range(3)]
    for raw in lists:
        assert isinstance(form_nodes(raw), KeyedNodes)
    assert isinstance(form_nodes(lists[2]), KnownNodes)
    assert isinstance(form_nodes(lists[0]), KeyedNodes)  # the oldest went first
