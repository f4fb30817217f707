"""Registered graphs: POST /v1/graphs, compute by graph_id, the LRU and its 404s."""

from __future__ import annotations

import json
import threading

import pytest

from app.graph_store import GraphNotFound, GraphStore, StoredGraph
from tests.api.support import SEED_3, graph, op, post, var

TENSOR = graph(
    var("x", [[0.5, -1.0]]),
    var("w", [[1.0], [2.0]]),
    op("h", "tanh", "x"),
    op("m", "matmul", "h", "w"),
    op("s", "sum", "m", axis=None),
)


def register(client, body: dict, status: int | None = None) -> str:
    r = client.post("/v1/graphs", json=body)
    assert r.status_code in ((status,) if status else (200, 201)), r.text
    return r.json()["graph_id"]


def chain(i: int) -> dict:
    """A small graph, different for each ``i``."""
    return graph(var("x", 1.0), op("y", "pow", "x", i + 2))


# ------------------------------------------------------------------ registering


def test_register_answers_201_then_200_with_the_same_id(make_client):
    client = make_client()
    first = client.post("/v1/graphs", json=SEED_3)
    assert first.status_code == 201
    info = first.json()
    assert info["graph_id"].startswith("g_") and len(info["graph_id"]) == 66
    assert info["nodes"] == 5 and info["leaves"] == ["x", "y"] and info["last"] == "z"
    assert first.headers["location"].endswith(f"/v1/graphs/{info['graph_id']}")
    again = client.post("/v1/graphs", json=SEED_3)
    assert again.status_code == 200 and again.json() == info


def test_the_same_graph_gets_the_same_id_whatever_its_key_order_and_whitespace(client):
    compact = json.dumps(SEED_3, separators=(",", ":"))
    shuffled = json.dumps(
        {"graph": {"nodes": [dict(reversed(list(n.items()))) for n in SEED_3["graph"]["nodes"]]}},
        indent=3,
    ).replace("2.0", "2").replace("3.0", "3.000")
    ids = {
        client.post("/v1/graphs", content=text, headers={"content-type": "application/json"})
        .json()["graph_id"]
        for text in (compact, shuffled)
    }
    assert len(ids) == 1


def test_the_same_graph_gets_the_same_id_on_another_replica(make_client):
    assert register(make_client(), TENSOR) == register(make_client(), TENSOR)


@pytest.mark.parametrize(
    "other",
    [
        graph(var("x", 2.0), var("y", 3.0), op("x2", "pow", "x", 2), op("y3", "pow", "y", 2),
              op("z", "add", "x2", "y3")),  # an inline constant differs
        graph(var("x", 2.5), var("y", 3.0), op("x2", "pow", "x", 2), op("y3", "pow", "y", 3),
              op("z", "add", "x2", "y3")),  # a leaf value differs
        graph(var("x", 2.0), var("y", 3.0), op("x2", "pow", "x", 2), op("y3", "pow", "y", 3),
              op("z", "sub", "x2", "y3")),  # an op differs
        graph(var("x", 2.0), var("y", 3.0, trainable=False), op("x2", "pow", "x", 2),
              op("y3", "pow", "y", 3), op("z", "add", "x2", "y3")),  # trainable differs
        graph(var("y", 3.0), var("x", 2.0), op("x2", "pow", "x", 2), op("y3", "pow", "y", 3),
              op("z", "add", "x2", "y3")),  # the leaves' order (the default sources) differs
    ],
    ids=["constant", "value", "op", "trainable", "order"],
)
def test_a_different_graph_gets_a_different_id(client, other):
    assert register(client, SEED_3) != register(client, other)


def test_register_validates_like_the_compute_endpoints(client):
    bad = graph(var("x", 1.0), op("y", "pow", "x", "nope"))
    r = client.post("/v1/graphs", json=bad)
    assert r.status_code == 422 and r.json()["node"] == "y"
    r = client.post("/v1/graphs", json={"expression": "x +"})
    assert r.status_code == 422 and r.json()["type"].endswith("/invalid-expression")
    r = client.post("/v1/graphs", json={**SEED_3, "expression": "x"})
    assert r.status_code == 422
    r = client.post("/v1/graphs", json={**SEED_3, "values": {"x": 1.0}})
    assert r.status_code == 422 and r.json()["field"] == "values"


def test_a_graph_larger_than_the_whole_cache_is_a_413(make_client):
    client = make_client(graph_cache_nodes=4)
    r = client.post("/v1/graphs", json=SEED_3)
    assert r.status_code == 413 and "send it inline" in r.json()["detail"]


# ------------------------------------------------------------------ computing by id


KINDS = ["evaluate", "gradient", "jacobian", "hessian", "derivative"]
SAME = [(k, SEED_3) for k in KINDS] + [(k, TENSOR) for k in KINDS[:-1]]  # derivative: scalars
SAME_IDS = [f"{k}-{'seed-3' if b is SEED_3 else 'tensor'}" for k, b in SAME]


@pytest.mark.parametrize(("kind", "body"), SAME, ids=SAME_IDS)
def test_a_registered_graph_answers_as_the_inline_graph(client, kind, body):
    gid = register(client, body)
    extra = {"order": 2} if kind == "derivative" else {}
    for values in ({}, {"x": 1.5} if body is SEED_3 else {"x": [[0.1, 0.2]]}):
        inline = post(client, kind, {**body, "values": values, **extra})
        by_id = post(client, kind, {"graph_id": gid, "values": values, **extra})
        assert by_id == {**inline, "check": by_id["check"]}
        assert by_id["check"]["status"] == inline["check"]["status"] == "agree"


def test_the_seed_example_by_id_gives_4_and_27_then_new_values(client):
    gid = register(client, {"expression": "x**2 + y**3"})
    out = post(client, "gradient", {"graph_id": gid, "values": {"x": 2.0, "y": 3.0}})
    assert out["gradients"] == {"x": 4.0, "y": 27.0}
    out = post(client, "gradient", {"graph_id": gid, "values": {"x": 1.0, "y": 1.0}})
    assert out["gradients"] == {"x": 2.0, "y": 3.0}


@pytest.mark.parametrize("other", [{"graph": SEED_3["graph"]}, {"expression": "x"}, {}])
def test_graph_id_with_graph_or_expression_or_neither_is_a_422(client, other):
    gid = register(client, SEED_3)
    body = {**other, "graph_id": gid} if other else {}
    r = client.post("/v1/gradient", json=body)
    assert r.status_code == 422
    assert "exactly one of `graph`, `expression` or `graph_id`" in r.json()["detail"]


@pytest.mark.parametrize("gid", ["g_123", "G_" + "0" * 64, "g_" + "x" * 64, 7])
def test_a_malformed_graph_id_is_a_422_naming_it(client, gid):
    r = client.post("/v1/gradient", json={"graph_id": gid})
    assert r.status_code == 422 and r.json()["field"] == "graph_id"


def test_an_unknown_graph_id_is_a_404_problem_telling_to_register_again(client):
    gid = "g_" + "0" * 64
    r = client.post("/v1/gradient", json={"graph_id": gid})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/graph-not-found")
    assert problem["title"] == "Graph not found" and problem["status"] == 404
    assert problem["field"] == "graph_id"
    assert gid in problem["detail"] and "POST /v1/graphs" in problem["detail"]


# ------------------------------------------------------------------ the cache


def test_the_least_recently_used_graph_is_evicted_at_the_size_limit(make_client):
    client = make_client(graph_cache_size=2)
    a, b = register(client, chain(0)), register(client, chain(1))
    post(client, "gradient", {"graph_id": a})  # a is now the most recently used
    c = register(client, chain(2))
    assert client.post("/v1/gradient", json={"graph_id": b}).status_code == 404
    for gid in (a, c):
        assert client.post("/v1/gradient", json={"graph_id": gid}).status_code == 200
    assert register(client, chain(1), status=201) == b  # registering again restores it
    assert post(client, "gradient", {"graph_id": b})["gradients"] == {"x": 3.0}


def test_the_node_bound_evicts_too(make_client):
    client = make_client(graph_cache_nodes=5)
    a = register(client, chain(0))  # 2 nodes
    b = register(client, chain(1))
    c = register(client, chain(2))  # 6 nodes in all: a goes
    assert client.post("/v1/gradient", json={"graph_id": a}).status_code == 404
    assert {client.get(f"/v1/graphs/{g}").status_code for g in (b, c)} == {200}


def test_get_returns_the_validated_nodes_and_they_register_again_to_the_same_id(client):
    gid = register(client, TENSOR)
    r = client.get(f"/v1/graphs/{gid}")
    assert r.status_code == 200
    stored = r.json()
    assert stored["graph_id"] == gid and stored["nodes"] == 5 and stored["last"] == "s"
    assert [n["id"] for n in stored["graph"]["nodes"]] == ["x", "w", "h", "m", "s"]
    assert stored["graph"]["nodes"][0] == {"id": "x", "op": "variable", "value": [[0.5, -1.0]]}
    assert register(client, {"graph": stored["graph"]}, status=200) == gid


def test_delete_forgets_the_graph(make_client):
    client = make_client()
    gid = register(client, SEED_3)
    assert client.delete(f"/v1/graphs/{gid}").status_code == 204
    assert client.get(f"/v1/graphs/{gid}").status_code == 404
    assert client.post("/v1/gradient", json={"graph_id": gid}).status_code == 404
    r = client.delete(f"/v1/graphs/{gid}")
    assert r.status_code == 404 and r.json()["type"].endswith("/graph-not-found")


def test_the_store_is_thread_safe_and_keeps_its_bounds():
    store = GraphStore(max_graphs=8, max_nodes=40)

    def work(k: int) -> None:
        for i in range(200):
            gid = f"g_{(k * 1000 + i) % 24:064x}"
            store.put(StoredGraph(gid, None, ("a",) * (1 + i % 5), (), "a"))
            try:
                store.get(gid)
            except GraphNotFound:
                pass  # evicted by another thread in between: allowed

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) <= 8
    assert sum(store.get(g).size for g in list(store._graphs)) == store._nodes <= 40
