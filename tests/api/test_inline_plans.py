"""An inline graph sent again is taken from the service's plan cache, and only an equal
graph is: a changed constant, attr, value or trainable flag is a different graph."""

from __future__ import annotations

from typing import Any

import pytest

from app.graph_forms import structure_key
from app.service import Service
from app.wire.node_form import KnownNodes
from app.wire.requests import ComputeRequest, Graph
from engine.graphs.plans import PlanCache
from tests.api.support import graph, op, post, var


def nodes(constant: Any = 0.5, axis: Any = 0, value: Any = (1.0, 2.0), **leaf: Any) -> list:
    return [
        var("x", list(value), **leaf),
        op("m", "mul", "x", constant),
        op("s", "sum", "m", axis=axis),
    ]


def key(wire: list) -> tuple:
    return structure_key(Graph.model_validate({"nodes": wire}).nodes)


def test_equal_graphs_share_a_key_and_any_change_makes_another():
    assert key(nodes()) == key(nodes())
    variants = [
        nodes(0.25),
        nodes([0.5, 0.5]),
        nodes(axis=-1),
        nodes(axis=[0]),
        nodes(value=(1.0, 3.0)),
        nodes(trainable=True),
        nodes(trainable=False),
        nodes(constant="NaN"),
    ]
    keys = {key(v) for v in variants}
    assert len(keys) == len(variants) and key(nodes()) not in keys


@pytest.mark.parametrize(("check", "c"), [("none", 0.375), ("auto", 0.4375)])
def test_a_graph_sent_again_is_built_once_and_answers_alike(client, monkeypatch, check, c):
    service: Service = client.app.state.service
    monkeypatch.setattr(service, "plans", PlanCache())  # this test's own, empty
    body = graph(*nodes(c), values={"x": [2.0, 4.0]}, check=check)
    held = len(service.plans)
    first = post(client, "gradient", body)
    assert len(service.plans) == held + 1
    again = post(client, "gradient", {**body, "values": {"x": [3.0, 5.0]}})
    assert len(service.plans) == held + 1  # the same graph: no new plan
    assert first["gradients"] == {"x": [c, c]}
    assert again["outputs"] == {"s": 8 * c}  # (3 + 5) * c, the new values
    changed = post(client, "gradient", graph(*nodes(c / 2), values={"x": [2.0, 4.0]}))
    assert changed["gradients"] == {"x": [c / 2, c / 2]}
    assert len(service.plans) == held + 2


def test_a_cached_graph_still_refuses_bad_values(client):
    body = graph(*nodes([0.5, 0.25]), values={"x": [1.0, 2.0]}, check="none")
    post(client, "gradient", body)
    r = client.post("/v1/gradient", json={**body, "values": {"m": 1.0}})
    assert r.status_code == 422 and r.json()["node"] == "m"
    r = client.post("/v1/gradient", json={**body, "values": {"x": [1.0, 2.0, 3.0]}})
    assert r.status_code == 422 and r.json()["node"] == "m"  # (3,) by (2,): its shapes


def long_chain(n: int = 300, c: Any = 0.1) -> list[dict[str, Any]]:
    out = [var("x", 0.5)]
    out += [
        op(f"s{i}", "sin" if i % 2 else "add", f"s{i - 1}" if i else "x", *(() if i % 2 else (c,)))
        for i in range(n)
    ]
    return out


def test_a_long_graph_sent_again_is_keyed_by_its_json_and_answers_alike(client, monkeypatch):
    service: Service = client.app.state.service
    monkeypatch.setattr(service, "plans", PlanCache())
    first = post(client, "gradient", graph(*long_chain(), values={"x": 0.25}, check="none"))
    (key,) = service.plans._graphs
    assert isinstance(key, bytes)  # the JSON's digest, not a key over the nodes
    again = post(client, "gradient", graph(*long_chain(), values={"x": 0.75}, check="none"))
    assert len(service.plans) == 1
    fresh = post(client, "gradient", graph(*long_chain(c=0.1000001), values={"x": 0.75}))
    assert len(service.plans) == 2
    # the chain's derivative at x: sin'(...) products, the same for each way it came in
    assert first["gradients"]["x"] != again["gradients"]["x"]
    assert again["gradients"]["x"] == pytest.approx(fresh["gradients"]["x"], rel=1e-5)
    plain = PlanCache()
    monkeypatch.setattr(service, "plans", plain)  # a miss with the JSON known: read again
    assert (
        post(client, "gradient", graph(*long_chain(), values={"x": 0.75}, check="none"))[
            "gradients"
        ]
        == again["gradients"]
    )
    assert len(plain) == 1


def test_a_long_graph_known_to_the_form_pass_is_still_checked_for_meaning(client):
    body = graph(*long_chain(), values={"x": 0.25}, check="none")
    post(client, "gradient", body)
    nodes = long_chain()
    nodes[7]["op"] = "sine"
    r = client.post("/v1/gradient", json={**body, "graph": {"nodes": nodes}})
    assert r.status_code == 422 and r.json()["node"] == "s6"
    nodes[7]["op"] = "sin"
    nodes[8]["inputs"] = ["s6", True]
    r = client.post("/v1/gradient", json={**body, "graph": {"nodes": nodes}})
    assert r.status_code == 422 and "nodes.8.inputs" in str(r.json())


def test_a_long_graph_registers_alike_however_often_its_json_was_seen(client):
    registered = {
        client.post("/v1/graphs", json={"graph": {"nodes": long_chain(310)}}).json()["graph_id"]
        for _ in range(3)
    }
    assert len(registered) == 1


def test_a_request_built_twice_is_built_once_even_when_its_plan_is_gone(client, monkeypatch):
    service: Service = client.app.state.service
    body = graph(*long_chain(), values={"x": 0.25}, check="none")
    post(client, "gradient", body)  # its JSON is known from here on
    request = ComputeRequest.model_validate(body)
    assert isinstance(request.graph.nodes, KnownNodes)
    first = service.graph_of(request)
    monkeypatch.setattr(service, "plans", PlanCache(max_graphs=0))  # it keeps nothing
    assert service.graph_of(request) is first  # not read again: its JSON was let go


def test_the_plan_cache_holds_several_graphs_of_the_largest_size_by_default():
    """Clients each looping over a graph of the node limit do not evict one another's."""
    from app.settings import Settings

    settings = Settings()
    assert settings.plan_cache_nodes >= 4 * settings.max_nodes
    service = Service(settings)
    assert service.plans.max_nodes == settings.plan_cache_nodes
    assert Service(Settings(plan_cache_nodes=0)).plans.max_nodes == 0


def test_big_graphs_sent_in_turn_stay_built(client, monkeypatch):
    service: Service = client.app.state.service
    plans = PlanCache(max_nodes=4 * 301)
    builds = []
    get = plans.get
    monkeypatch.setattr(plans, "get", lambda key, build: get(key, lambda: builds.append(key)
                                                             or build()))
    monkeypatch.setattr(service, "plans", plans)
    bodies = [graph(*long_chain(c=c), values={"x": 0.25}, check="none") for c in (0.1, 0.2, 0.3)]
    for body in bodies * 3:
        post(client, "gradient", body)
    assert len(builds) == 3 and len(plans) == 3  # each built once, none evicted by the others


def test_a_hessian_sent_again_or_by_id_answers_the_same_bytes(client, coloured_sweeps):
    """The first sight of a graph is the n-seed sweep; later ones, inline or registered,
    are its coloured sweep (engine.derive.coloured_hessian): the same numbers."""
    from app.examples import rosenbrock

    coloured = coloured_sweeps
    body = {"graph": rosenbrock(97)["graph"], "check": "none"}  # no other test sends it
    first = client.post("/v1/hessian", json=body)
    assert first.status_code == 200 and coloured == []
    again = [client.post("/v1/hessian", json=body) for _ in range(2)]
    stored = client.post("/v1/graphs", json={"graph": body["graph"]})
    assert stored.status_code == 201, stored.text
    by_id = client.post("/v1/hessian", json={"graph_id": stored.json()["graph_id"],
                                             "check": "none"})
    assert {a.status_code for a in [*again, by_id]} == {200}
    assert coloured == [3, 3, 3]
    assert len({a.content for a in [first, *again, by_id]}) == 1


def test_an_expression_sent_again_is_parsed_once_and_still_refuses(client, monkeypatch):
    service: Service = client.app.state.service
    monkeypatch.setattr(service, "plans", PlanCache())
    body = {"expression": "x**2 + e*y", "values": {"x": 2.0, "y": 3.0}, "check": "none"}
    first = post(client, "gradient", body)
    again = post(client, "gradient", {**body, "values": {"x": 1.0, "y": -1.0}})
    assert len(service.plans) == 1
    assert first["gradients"] == {"x": 4.0, "y": pytest.approx(2.718281828459045)}
    assert again["outputs"] == {"f": pytest.approx(1.0 - 2.718281828459045)}
    # the names a request gives decide its refusals, so the parsed text does not skip them
    r = client.post("/v1/gradient", json={**body, "values": {"x": 1.0, "y": 1.0, "e": 2.0}})
    assert r.status_code == 422 and r.json()["field"] == "values.e"
    renamed = post(client, "gradient", {**body, "expression": "g = x**2 + e*y"})
    assert list(renamed["outputs"]) == ["g"] and len(service.plans) == 2
    named = {"expressions": {"u": "x*y", "v": "x+y"}, "values": {"x": 2.0, "y": 3.0}}
    swapped = {"expressions": {"v": "x+y", "u": "x*y"}, "values": {"x": 2.0, "y": 3.0}}
    assert list(post(client, "evaluate", named)["outputs"]) == ["u", "v"]
    assert list(post(client, "evaluate", swapped)["outputs"]) == ["v", "u"]


@pytest.mark.parametrize("many", ["names", "characters"])
def test_an_expression_with_many_value_names_is_parsed_but_not_kept(client, monkeypatch, many):
    from app.service import MAX_KEYED_NAME_CHARS, MAX_KEYED_NAMES

    service: Service = client.app.state.service
    monkeypatch.setattr(service, "plans", PlanCache())
    names = ({f"v{i}": 1.0 for i in range(MAX_KEYED_NAMES + 1)} if many == "names"
             else {"v" * (MAX_KEYED_NAME_CHARS + 1): 1.0})
    body = {"expression": "x**2", "values": {"x": 3.0, **names}, "check": "none"}
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 422 and r.json()["field"] == "values"  # names it does not use
    assert len(service.plans) == 0
    assert post(client, "gradient", {**body, "values": {"x": 3.0}})["gradients"] == {"x": 6.0}
    assert len(service.plans) == 1
