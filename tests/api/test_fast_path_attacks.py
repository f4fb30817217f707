"""The fast paths for big inline graphs, attacked from outside: a node list keyed by the
digest of its JSON must answer as a graph never seen before would, refuse what it must
with a 4xx naming the node or field, stay bounded, and agree across threads.

Every answer here is compared with a fresh computation (the same graph with renamed
ids, which shares no key, no plan and no memo with it) or with finite differences.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import orjson
import pytest

from app.service import Service
from app.wire import node_form
from app.wire.node_form import KEYED_MIN_NODES, KnownNodes, form_nodes, json_digest
from engine.graphs.plans import PlanCache
from tests.api.support import arr, graph, op, post, var

LINKS = KEYED_MIN_NODES + 20  # long enough to be keyed by its digest


def chain(
    prefix: str = "n", constant: Any = 0.5, axis: Any = 0, order: str = "ab", leaf_id: str = "x"
) -> list[dict[str, Any]]:
    """A long chain over ``x`` (vector) and ``y`` (scalar) of mul, sub, neg, square, sin
    and add, summed: every op with an in-place rule, inline constants on both sides."""
    nodes = [var(leaf_id, [0.3, -0.2, 0.7]), var("y", 0.9)]
    prev = leaf_id
    for i in range(LINKS):
        nid = f"{prefix}{i}"
        kind = i % 6
        if kind == 0:
            nodes.append(op(nid, "mul", prev, constant))
        elif kind == 1:
            nodes.append(op(nid, "sub", 0.25, prev))
        elif kind == 2:
            nodes.append(op(nid, "neg", prev))
        elif kind == 3:
            nodes.append(op(nid, "sin", prev))
        elif kind == 4:
            nodes.append(op(nid, "mul", prev, "y"))
        else:
            nodes.append(op(nid, "add", prev, 0.01))
        prev = nid
    attrs = (
        {"axis": axis, "keepdims": False} if order == "ab" else {"keepdims": False, "axis": axis}
    )
    nodes.append({"id": "t", "op": "sum", "inputs": [prev], "attrs": attrs})
    return nodes


def renamed(nodes: list[dict[str, Any]], prefix: str) -> tuple[list[dict[str, Any]], dict]:
    """The same graph under new ids: no key, plan or memo in common with ``nodes``."""
    names = {n["id"]: prefix + n["id"] for n in nodes}
    out = []
    for n in nodes:
        copy = {**n, "id": names[n["id"]]}
        if "inputs" in n:
            copy["inputs"] = [names.get(x, x) if type(x) is str else x for x in n["inputs"]]
        out.append(copy)
    return out, names


def raw_post(client: Any, kind: str, text: bytes, status: int = 200) -> Any:
    r = client.post(f"/v1/{kind}", content=text, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    return r.json()


def fresh(
    client: Any,
    kind: str,
    nodes: list[dict[str, Any]],
    values: dict[str, Any],
    prefix: str,
    **fields: Any,
) -> tuple[Any, dict[str, str]]:
    """``kind`` of ``nodes`` at ``values``, computed as a graph never seen before."""
    again, names = renamed(nodes, prefix)
    body = graph(*again, values={names[k]: v for k, v in values.items()}, check="none", **fields)
    return post(client, kind, body), names


def same(a: Any, b: Any) -> bool:
    return np.array_equal(arr(a), arr(b), equal_nan=True)


@pytest.fixture
def service(client: Any, monkeypatch: pytest.MonkeyPatch) -> Service:
    """The session's service with an empty plan cache of its own (no other test's plans)."""
    svc: Service = client.app.state.service
    monkeypatch.setattr(svc, "plans", PlanCache())
    return svc


# ------------------------------------------------------------------ the digest's key


def test_a_long_list_whose_ids_spell_null_is_keyed_and_known_the_second_time():
    """``null`` in an id, an op or an attr's text is no NaN: the list keeps its digest and
    is not checked again (before, any ``null`` in the text cost the whole check and a
    structure key on every request: on a 9,000-node chain, 26 ms instead of 3 ms)."""
    nodes = chain(prefix="nullable.null_")
    nodes[-1]["attrs"]["note"] = "nullspace null"
    assert json_digest(nodes) is not None
    form_nodes(nodes)  # passes, and is remembered
    assert isinstance(form_nodes(nodes), KnownNodes)


@pytest.mark.parametrize("non_finite", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_float_that_orjson_writes_as_null_gets_no_digest(non_finite):
    """NaN and both infinities are all written ``null``: a digest would confuse them."""
    nodes = chain()
    nodes[3]["inputs"][1] = non_finite
    assert json_digest(nodes) is None
    nodes[3]["inputs"][1] = [1.0, non_finite]
    assert json_digest(nodes) is None
    nodes[3]["inputs"][1] = 0.5
    nodes[0]["value"] = {"a": non_finite}  # nested anywhere, even where no value may be
    assert json_digest(nodes) is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"constant": 1}, {"constant": 1.0}),  # equal numbers: one answer either way
        ({"constant": 0.5}, {"constant": 0.25}),
        ({"constant": 0.0}, {"constant": -0.0}),
        ({"constant": 0.5}, {"constant": [0.5, 0.5, 0.5]}),
        ({"axis": 0}, {"axis": -1}),
        ({"axis": 0}, {"axis": [0]}),
        ({"order": "ab"}, {"order": "ba"}),
    ],
)
def test_big_graphs_that_differ_in_one_spelling_answer_as_fresh_graphs(
    client, service, first, second
):
    values = {"x": [0.4, -1.3, 2.2], "y": 1.1}
    for variant, prefix in ((first, "f_"), (second, "s_"), (first, "g_")):
        nodes = chain(**variant)
        got = post(client, "gradient", graph(*nodes, values=values, check="none"))
        want, names = fresh(client, "gradient", nodes, values, prefix)
        assert same(got["outputs"]["t"], want["outputs"][names["t"]])
        for leaf in ("x", "y"):
            assert same(got["gradients"][leaf], want["gradients"][names[leaf]]), variant


def test_json_spellings_of_one_graph_answer_alike(client, service):
    """Unicode escapes in ids, ``1e0`` for ``1.0``, spaces, a duplicate key (the last one
    counts, for the digest as for the answer)."""
    nodes = chain(prefix="u")
    values = {"x": [0.4, -1.3, 2.2], "y": 1.1}
    plain = orjson.dumps(graph(*nodes, values=values, check="none"))
    escaped = plain.replace(b'"id":"u1"', b'"id":"\\u0075\\u0031"')
    assert escaped != plain
    spelled = plain.replace(b'"mul","inputs":["x",0.5]', b'"mul","inputs":["x",5e-1]')
    assert spelled != plain
    want = raw_post(client, "gradient", plain)
    for text in (escaped, spelled, plain.replace(b",", b", ")):
        got = raw_post(client, "gradient", text)
        assert same(got["gradients"]["x"], want["gradients"]["x"])
    doubled = plain.replace(
        b'"op":"variable","value":[0.3,-0.2,0.7]',
        b'"op":"variable","value":[9.0],"value":[0.3,-0.2,0.7]',
        1,
    )
    assert doubled != plain
    got = raw_post(
        client, "evaluate", doubled.replace(b'"values":{"x":[0.4,-1.3,2.2],', b'"values":{')
    )
    again = post(client, "evaluate", graph(*nodes, values={"y": 1.1}, check="none"))
    assert same(got["outputs"]["t"], again["outputs"]["t"])


def test_one_digest_with_other_values_sources_and_targets(client, service):
    """The digest keys the nodes only: values of other shapes, sources and targets are the
    request's own, on a graph seen before as on a fresh one."""
    nodes = chain()
    asks = [
        ({"x": [0.4, -1.3, 2.2], "y": 1.1}, {}),
        ({"x": 0.5, "y": 0.2}, {}),
        ({"x": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], "y": 0.7}, {}),
        ({"x": [0.4, -1.3, 2.2], "y": 1.1}, {"sources": ["y"]}),
        ({"x": [0.4, -1.3, 2.2], "y": 1.1}, {"target": "n100"}),
        ({"x": [0.4, -1.3, 2.2], "y": 1.1}, {"target": "n100", "sources": ["x"]}),
    ]
    for k, (values, fields) in enumerate(asks):
        got = post(client, "gradient", graph(*nodes, values=values, check="none", **fields))
        fields = {**fields}
        if "target" in fields:
            fields["target"] = f"r{k}_" + fields["target"]
        if "sources" in fields:
            fields["sources"] = [f"r{k}_" + s for s in fields["sources"]]
        want, names = fresh(client, "gradient", nodes, values, f"r{k}_", **fields)
        assert sorted(got["gradients"]) == sorted(
            {new: old for old, new in names.items()}[g] for g in want["gradients"]
        )
        for leaf, g in got["gradients"].items():
            assert same(g, want["gradients"][names[leaf]]), (values, fields)


def test_a_gradient_sent_again_agrees_with_finite_differences(client, service):
    nodes = chain()
    x, y = np.array([0.4, -1.3, 2.2]), 1.1

    def f(xv: np.ndarray, yv: float) -> float:
        body = graph(*nodes, values={"x": xv.tolist(), "y": yv}, check="none")
        return float(post(client, "evaluate", body)["outputs"]["t"])

    got = post(client, "gradient", graph(*nodes, values={"x": x.tolist(), "y": y}, check="none"))
    h = 1e-6
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        fd = (f(x + e, y) - f(x - e, y)) / (2 * h)
        assert fd == pytest.approx(got["gradients"]["x"][i], rel=1e-5, abs=1e-7)
    fd = (f(x, y + h) - f(x, y - h)) / (2 * h)
    assert fd == pytest.approx(got["gradients"]["y"], rel=1e-5, abs=1e-7)


# ------------------------------------------------------------------ refusals after a pass


@pytest.mark.parametrize(
    ("change", "node", "status"),
    [
        (lambda ns: ns[5].update(op="nope"), "n3", 422),
        (lambda ns: ns[5].update(inputs=["n2", "missing"]), "n3", 422),
        (lambda ns: ns[5].update(attrs={"axis": 0}), "n3", 422),
        (lambda ns: ns[5].update(id="bad id"), "bad id", 422),
        (lambda ns: ns[5].update(trainable="yes"), "n3", 422),
        (lambda ns: ns[0].update(value=[[1.0], [2.0, 3.0]]), "x", 422),
        (lambda ns: ns.append(dict(ns[5])), "n3", 422),
    ],
)
def test_a_graph_seen_valid_then_changed_is_refused_naming_the_node(
    client, service, change, node, status
):
    nodes = chain()
    values = {"x": [0.4, -1.3, 2.2], "y": 1.1}
    post(client, "gradient", graph(*nodes, values=values, check="none"))
    post(client, "gradient", graph(*nodes, values=values, check="none"))  # known now
    broken = [dict(n) for n in nodes]
    change(broken)
    for _ in range(2):  # refused again once its form is known (a form may pass, a graph not)
        problem = post(client, "gradient", graph(*broken, values=values, check="none"), status)
        assert node in orjson.dumps(problem).decode(), problem
        assert problem["status"] == status
    r = client.post("/v1/graphs", json={"graph": {"nodes": broken}})
    assert r.status_code == status and node in r.text, r.text


def test_a_known_list_refused_later_in_the_request_is_a_4xx(client, service):
    """Its JSON is let go once built: what reads the graph after that (targets, sources,
    values, points) must not need it."""
    nodes = chain()
    body = graph(*nodes, values={"x": [0.4, -1.3, 2.2], "y": 1.1}, check="none")
    post(client, "gradient", body)
    for extra, field in (
        ({"target": "nope"}, "target"),
        ({"sources": ["nope"]}, "sources"),
        ({"values": {"nope": 1.0}}, "values"),
        ({"values": {"x": [[1.0, 2.0], [3.0, 4.0]], "y": [1.0, 2.0, 3.0]}}, None),
        ({"points": {"x": [[1.0, 2.0]]}}, None),
    ):
        problem = post(client, "gradient", {**body, **extra}, 422)
        assert problem["status"] == 422
        if field is not None:
            assert problem["field"] == field


# ------------------------------------------------------------------ shared plans


def test_registered_and_inline_copies_alternate_with_other_leaf_shapes(client, service):
    nodes = chain()
    gid = client.post("/v1/graphs", json={"graph": {"nodes": nodes}}).json()["graph_id"]
    asks: list[dict[str, Any]] = [
        {"values": {"x": [0.4, -1.3, 2.2], "y": 1.1}},
        {"values": {"x": 0.3, "y": [1.0, 2.0]}},
        {"values": {"y": 0.5}, "points": {"x": [[0.1, 0.2, 0.3], [0.5, 0.6, 0.7]]}},
        {"values": {"x": [0.1, 0.2]}, "points": {"y": [0.5, 0.7, 0.9]}},
        {"values": {"x": [[0.1], [0.2]], "y": [0.5, 0.6]}},
    ]
    for k, ask in enumerate(asks * 2):
        by_id = post(client, "gradient", {"graph_id": gid, "check": "none", **ask})
        inline = post(client, "gradient", graph(*nodes, check="none", **ask))
        again, names = renamed(nodes, f"a{k}_")
        renamed_ask = {f: {names[n]: v for n, v in ask[f].items()} for f in ask}
        want = post(client, "gradient", graph(*again, check="none", **renamed_ask))
        for leaf in ("x", "y"):
            assert same(by_id["gradients"][leaf], want["gradients"][names[leaf]]), ask
            assert same(inline["gradients"][leaf], want["gradients"][names[leaf]]), ask


def test_one_source_hessians_of_a_known_graph_match_a_fresh_one(client, service):
    nodes = chain()
    for values in (
        {"x": [0.4, -1.3, 2.2], "y": 1.1},
        {"x": 0.4, "y": 1.1},
        {"x": [0.1, 0.2, 0.3, 0.4, 0.5], "y": 0.3},
    ):
        got = post(client, "hessian", graph(*nodes, values=values, check="none", sources=["x"]))
        want, names = fresh(client, "hessian", nodes, values, "h_", sources=["h_x"])
        assert same(got["matrix"], want["matrix"])
        assert same(got["hessian"]["x"]["x"], want["hessian"][names["x"]][names["x"]])
        assert np.array_equal(arr(got["matrix"]), arr(got["matrix"]).T)


def test_the_same_big_graph_from_eight_threads_answers_as_one_thread(client, service):
    nodes = chain(prefix="th")
    asks = [{"x": [0.1 * i, -0.2, 0.3 + i], "y": 0.5 + 0.1 * i} for i in range(8)]
    got: dict[int, list[Any]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(i: int) -> None:
        try:
            start.wait()
            got[i] = [
                post(client, "hessian", graph(*nodes, values=asks[i], check="none"))
                for _ in range(3)
            ]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, values in enumerate(asks):
        want, names = fresh(client, "hessian", nodes, values, f"t{i}_")
        for answer in got[i]:
            assert same(answer["matrix"], want["matrix"]), i
            assert same(answer["gradients"]["x"], want["gradients"][names["x"]]), i


def test_many_distinct_big_graphs_keep_the_memo_and_the_plans_bounded(client, service):
    service.plans = PlanCache(max_graphs=4, max_nodes=10 * LINKS)
    seen = node_form.PASSED
    for k in range(seen.size + 8):
        nodes = chain(prefix=f"m{k}_")
        assert form_nodes(nodes) is not None
        if k % 16 == 0:  # a few through the service too
            post(client, "evaluate", graph(*nodes, values={"y": 0.5}, check="none"))
    assert len(seen) <= seen.size
    assert len(service.plans) <= 4 and service.plans.nodes <= 10 * LINKS
