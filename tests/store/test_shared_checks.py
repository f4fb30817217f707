"""SymPy's derivative of a structure derived once, shared through Redis, evaluated locally."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import redis

from engine.check import shared_checks, sympy_pool
from tests.api.support import SEED_3

SECRET = "test-secret"


@pytest.fixture
def replicas(fresh_redis, make_client):
    a = make_client(graph_store_url=fresh_redis.url, graph_store_secret=SECRET)
    b = make_client(graph_store_url=fresh_redis.url, graph_store_secret=SECRET)
    yield a, b
    shared_checks.configure(None)


def no_worker(monkeypatch) -> list[dict]:
    """Make every SymPy worker job fail loudly; the list records those asked for."""
    asked: list[dict] = []

    def refuse(self, job, seconds, admission=None):
        asked.append(job)
        raise sympy_pool.WorkerError("the worker was asked")

    monkeypatch.setattr(sympy_pool.Pool, "run", refuse)
    return asked


@contextmanager
def worker_jobs() -> Iterator[list[dict]]:
    """The SymPy worker jobs run inside the block, which still run."""
    jobs: list[dict] = []
    real = sympy_pool.Pool.run

    def spy(self, job, seconds, *args):
        jobs.append(job)
        return real(self, job, seconds, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sympy_pool.Pool, "run", spy)
        yield jobs


def gradient(client, expression: str, **values: float) -> dict:
    r = client.post("/v1/gradient", json={"expression": expression, "values": values})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_structure_derived_on_one_replica_is_evaluated_on_another(
    replicas, fresh_redis, monkeypatch
):
    a, b = replicas
    first = a.post("/v1/gradient", json=SEED_3).json()["check"]
    assert (first["method"], first["status"]) == ("sympy", "agree")
    keys = redis.Redis.from_url(fresh_redis.url).keys("deriv:check:*")
    assert len(keys) == 1

    shared_checks.configure(shared_checks._shared)  # forget what this process compiled
    asked = no_worker(monkeypatch)
    body = {**SEED_3, "values": {"x": -1.5, "y": 0.25}}
    check = b.post("/v1/gradient", json=body).json()["check"]
    assert asked == []
    assert (check["method"], check["status"]) == ("sympy", "agree"), check
    assert check["symbolic"] == first["symbolic"] and check["compared"] == 2


def test_local_evaluation_matches_the_worker(replicas, monkeypatch):
    a, _ = replicas
    expression = "exp(sin(x) * y) / (1 + x**2) + atan2(y, x) - tanh(x * y)"
    worker = gradient(a, expression, x=0.7, y=-1.3)["check"]  # derives and exports
    assert worker["status"] == "agree"
    asked = no_worker(monkeypatch)
    here = gradient(a, expression, x=0.7, y=-1.3)["check"]
    assert asked == []
    assert here["status"] == "agree" and here["symbolic"] == worker["symbolic"]
    assert np.isclose(here["max_abs_error"], worker["max_abs_error"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("expression", "first", "edge"),
    [
        ("log(x) * y", {"x": 2.0, "y": 3.0}, {"x": -2.0, "y": 3.0}),  # a domain edge
        ("abs(x) * y", {"x": 2.0, "y": 3.0}, {"x": 0.0, "y": 3.0}),  # a kink: never local
    ],
)
def test_kinks_and_domain_edges_go_to_the_worker(replicas, expression, first, edge):
    a, _ = replicas
    gradient(a, expression, **first)
    with worker_jobs() as calls:
        check = gradient(a, expression, **edge)["check"]
    assert len(calls) == 1
    assert check["method"] == "sympy"
    assert check["status"] in ("agree", "skipped") or check["notes"], check


def test_redis_down_checks_still_run(fresh_redis, make_client):
    client = make_client(
        graph_store_url=fresh_redis.url, graph_store_timeout_seconds=0.2, graph_store_secret=SECRET
    )
    fresh_redis.stop()
    try:
        check = gradient(client, "x**5 + cos(y)", x=1.0, y=2.0)["check"]
        assert (check["method"], check["status"]) == ("sympy", "agree")
    finally:
        shared_checks.configure(None)


@pytest.mark.parametrize(
    "blob",
    [b"garbage", b"\x80\x04K\x01.", b"x" * (2 << 20), "resigned-elsewhere", "unsigned"],
    ids=["garbage", "not-signed", "oversized", "other-secret", "valid-but-unsigned"],
)
def test_an_unreadable_shared_structure_is_derived_again(replicas, fresh_redis, blob):
    a, b = replicas
    a.post("/v1/gradient", json=SEED_3)
    store = redis.Redis.from_url(fresh_redis.url)
    (key,) = store.keys("deriv:check:*")
    body = store.get(key)[32:]  # a real structure, as this service's workers export it
    if blob == "unsigned":
        blob = body
    elif blob == "resigned-elsewhere":
        name = key.decode().removeprefix("deriv:")
        blob = hmac.new(b"another-secret", name.encode() + b"\0" + body, "sha256").digest() + body
    store.set(key, blob)
    shared_checks.configure(shared_checks._shared)  # forget what this process compiled
    with worker_jobs() as calls:
        check = b.post("/v1/gradient", json=SEED_3).json()["check"]
    assert len(calls) == 1
    assert (check["method"], check["status"]) == ("sympy", "agree")


def test_without_a_secret_derivatives_are_not_shared(fresh_redis, make_client):
    client = make_client(graph_store_url=fresh_redis.url)
    try:
        check = client.post("/v1/gradient", json=SEED_3).json()["check"]
        assert (check["method"], check["status"]) == ("sympy", "agree")
        store = redis.Redis.from_url(fresh_redis.url)
        assert store.keys("deriv:check:*") == []
    finally:
        shared_checks.configure(None)
