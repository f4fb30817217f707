"""Registered graphs shared through a real Redis: two apps stand for two replicas."""

from __future__ import annotations

import time
import zlib

import pytest
import redis

from app import graph_codec, redis_store
from app.redis_store import graph_key
from tests.api.support import SEED_3, graph, op, var

TTL = 600


@pytest.fixture
def replicas(fresh_redis, make_client):
    """Two apps on one Redis, as two replicas behind the gateway."""

    def make():
        return make_client(graph_store_url=fresh_redis.url, graph_store_ttl_seconds=TTL)

    return make(), make()


@pytest.fixture
def store(fresh_redis):
    return redis.Redis.from_url(fresh_redis.url)


def register(client, body=SEED_3) -> str:
    r = client.post("/v1/graphs", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["graph_id"]


def by_id(client, gid: str):
    return client.post("/v1/gradient", json={"graph_id": gid, "values": {"x": 1.0, "y": 2.0}})


def test_a_graph_registered_on_one_replica_computes_on_the_other(replicas, store):
    a, b = replicas
    first = a.post("/v1/graphs", json=SEED_3)
    assert first.status_code == 201
    gid = first.json()["graph_id"]
    assert store.ttl(graph_key(gid)) in range(TTL - 5, TTL + 1)

    r = by_id(b, gid)
    assert r.status_code == 200, r.text
    assert r.json()["gradients"] == {"x": 2.0, "y": 12.0}
    assert b.get(f"/v1/graphs/{gid}").json() == a.get(f"/v1/graphs/{gid}").json()
    again = b.post("/v1/graphs", json=SEED_3)
    assert again.status_code == 200 and again.json()["graph_id"] == gid


def test_stored_form_is_versioned_and_compact(replicas, store):
    a, _ = replicas
    nodes = [var("x", [float(i) for i in range(2000)])] + [
        op(f"y{i}", "sin", "x" if i == 0 else f"y{i - 1}") for i in range(50)
    ]
    gid = register(a, {"graph": {"nodes": nodes}})
    blob = store.get(graph_key(gid))
    assert blob.startswith(graph_codec.VERSION)
    sent = len(str(nodes))
    assert len(blob) < sent / 2, (len(blob), sent)


def test_a_delete_on_one_replica_is_seen_by_the_other(replicas):
    a, b = replicas
    gid = register(a)
    assert by_id(b, gid).status_code == 200  # b now holds a decoded copy
    assert a.delete(f"/v1/graphs/{gid}").status_code == 204
    gone = by_id(b, gid)
    assert gone.status_code == 404
    assert gone.json()["type"].endswith("/graph-not-found")
    assert b.delete(f"/v1/graphs/{gid}").status_code == 404


def test_an_evicted_graph_is_a_404_and_registering_restores_it(replicas, store):
    a, b = replicas
    gid = register(a)
    assert by_id(b, gid).status_code == 200
    store.delete(graph_key(gid))  # what allkeys-lru or the TTL does
    assert by_id(b, gid).status_code == 404
    assert register(b) == gid
    assert by_id(a, gid).status_code == 200


@pytest.mark.parametrize(
    "blob",
    [
        b"not a graph",
        graph_codec.VERSION + b"\x00\x01garbage",
        graph_codec.VERSION + zlib.compress(b'{"nodes": 1}'),
        graph_codec.VERSION + zlib.compress(b'[{"id": "x", "op": "no-such-op"}]'),
        # a valid graph under another graph's id
        graph_codec.VERSION + zlib.compress(b'[{"id": "x", "op": "variable", "value": 1.0}]'),
        # inflates far past any graph: refused without inflating it all
        graph_codec.VERSION + zlib.compress(b" " * (graph_codec.MAX_INFLATED_BYTES + 1), 9),
    ],
    ids=["unversioned", "not-zlib", "not-a-list", "bad-op", "wrong-hash", "zip-bomb"],
)
def test_unreadable_stored_bytes_are_dropped_never_run(replicas, store, blob):
    a, _ = replicas
    gid = "g_" + "ab" * 32
    store.set(graph_key(gid), blob)
    r = by_id(a, gid)
    assert r.status_code == 404, r.text
    assert store.exists(graph_key(gid)) == 0


def test_graph_over_the_stored_byte_bound_is_a_413(fresh_redis, make_client):
    client = make_client(graph_store_url=fresh_redis.url, graph_store_max_bytes=200)
    nodes = [var("x", [float(i) * 0.37 for i in range(500)]), op("y", "sum", "x", axis=None)]
    r = client.post("/v1/graphs", json=graph(*nodes))
    assert r.status_code == 413, r.text
    assert r.json()["limit"] == "graph_store_max_bytes"
    assert client.post("/v1/graphs", json=SEED_3).status_code == 201


def test_redis_down_then_back(fresh_redis, make_client, monkeypatch):
    monkeypatch.setattr(redis_store, "RETRY_SECONDS", 0.2)
    monkeypatch.setattr(redis_store, "PING_SECONDS", 0.0)

    def make():
        return make_client(graph_store_url=fresh_redis.url, graph_store_timeout_seconds=0.3)

    warm, cold = make(), make()
    gid = register(warm)
    assert by_id(warm, gid).status_code == 200
    assert warm.get("/readyz").json() == {"status": "ready"}

    fresh_redis.stop()
    inline = warm.post("/v1/gradient", json=SEED_3)
    assert inline.status_code == 200 and inline.json()["gradients"] == {"x": 4.0, "y": 27.0}
    assert by_id(warm, gid).status_code == 200  # its own copy
    for attempt in (
        by_id(cold, gid),
        cold.post("/v1/graphs", json=SEED_3),
        cold.delete(f"/v1/graphs/{gid}"),
    ):
        assert attempt.status_code == 503, attempt.text
        assert attempt.headers["retry-after"] == "2"
        assert attempt.json()["type"].endswith("/store-unavailable")
        assert "inline" in attempt.json()["detail"]
    assert cold.get("/readyz").json() == {"status": "degraded"}
    assert cold.get("/readyz").status_code == 200

    fresh_redis.start()  # empty: nothing was persisted
    time.sleep(0.3)
    assert cold.get("/readyz").json() == {"status": "ready"}
    assert by_id(cold, gid).status_code == 404
    assert cold.post("/v1/graphs", json=SEED_3).status_code == 201
    assert by_id(cold, gid).status_code == 200
    assert by_id(warm, gid).status_code == 200


def test_codec_round_trips_the_wire_nodes(replicas, store):
    a, _ = replicas
    body = graph(
        var("x", [[1.0, "NaN"], [2.5, "-Infinity"]]),
        op("s", "sum", "x", axis=None),
        op("t", "pow", "s", 2),
    )
    gid = register(a, body)
    assert (
        graph_codec.decode(store.get(graph_key(gid)))
        == a.get(f"/v1/graphs/{gid}").json()["graph"]["nodes"]
    )
