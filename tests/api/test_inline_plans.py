"""An inline graph sent again is taken from the service's plan cache, and only an equal
graph is: a changed constant, attr, value or trainable flag is a different graph."""

from __future__ import annotations

from typing import Any

import pytest

from app.graph_forms import structure_key
from app.service import Service
from app.wire.requests import Graph
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
