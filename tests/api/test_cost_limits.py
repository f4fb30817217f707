"""Requests of a few hundred bytes that would cost seconds, gigabytes or a huge answer are
refused before anything runs, with a 422 naming the limit, the estimate and the node;
requests of the same shape within the limits are answered right."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.endpoints import GRADIENT
from app.main import create_app
from app.wire.requests import ComputeRequest
from engine.errors import CostError
from tests.api.support import (
    SEED_3,
    ValidatingClient,
    broadcast_sines,
    const,
    graph,
    op,
    post,
    var,
)
from tests.conftest import make_settings

FAST = 1.0  # seconds: a refusal is made from shapes, before any computation


def broadcast_solve(batch: int, n: int = 1000) -> dict:
    """The attack: an identity n x n built from x, b = x broadcast to [batch, n, 1], solve
    factorises A once per batch element (536 bytes at n = 1000)."""
    return graph(
        var("x", 1.0),
        const("e", np.eye(n).tolist() if n <= 50 else 1.0),
        op("A", "mul", "e", "x") if n <= 50 else op("A", "broadcast_to", "x", shape=[n, n]),
        op("b", "broadcast_to", "x", shape=[batch, n, 1]),
        op("s", "solve", "A", "b"),
        op("t", "sum", "s"),
        check="none",
    )


WORK_OR_MEMORY = ("max_work", "max_request_bytes")
MEMORY_OR_ANSWER = ("max_request_bytes", "max_response_bytes")


def refused(client: TestClient, kind: str, body: dict, *limits: str) -> dict:
    """A 422 cost-limit problem within FAST, naming one of ``limits``."""
    start = time.monotonic()
    r = client.post(f"/v1/{kind}", json=body)
    assert r.status_code == 422, r.text[:300]
    problem = r.json()
    assert time.monotonic() - start < FAST
    assert problem["type"].endswith("cost-limit"), problem
    assert problem["limit"] in limits, problem
    assert problem["estimate"] > 0
    return problem


def test_a_broadcast_solve_is_refused_naming_the_solve(client):
    problem = refused(client, "gradient", broadcast_solve(800), "max_work")
    assert problem["node"] == "s"
    assert "solve" not in problem["detail"] or "'s'" in problem["detail"]
    assert client.get("/healthz").status_code == 200


def test_the_same_solve_within_the_limits_is_answered_right(client):
    body = broadcast_solve(3, n=4)
    answer = post(client, "gradient", body)
    # x * I solved against x: every entry is 1, so the sum is 12 and d/dx is 0
    assert answer["outputs"]["t"] == pytest.approx(12.0)
    assert answer["gradients"]["x"] == pytest.approx(0.0, abs=1e-9)


def test_a_high_order_derivative_of_big_broadcast_tensors_is_refused_for_memory(client):
    body = {"graph": {"nodes": broadcast_sines(8, [1000, 1000])}, "order": 4, "check": "none"}
    refused(client, "derivative", body, *WORK_OR_MEMORY)


def test_a_hessian_through_big_broadcast_tensors_is_refused(client):
    body = graph(*broadcast_sines(18, [1000, 1000]), check="none")
    refused(client, "hessian", body, *WORK_OR_MEMORY)


def test_an_answer_larger_than_the_response_limit_is_refused_before_computing(client):
    nodes = [var("x", 0.5), op("b", "broadcast_to", "x", shape=[1000, 1000]),
             op("c", "cumprod", "b")]
    nodes += [op(f"e{i}", "sin", "c") for i in range(13)]
    body = {"graph": {"nodes": nodes}, "target": ["c", *[f"e{i}" for i in range(13)]],
            "check": "none"}
    refused(client, "evaluate", body, *MEMORY_OR_ANSWER)


def test_a_trace_of_big_tensors_is_refused_for_its_size(client):
    body = graph(*broadcast_sines(6, [1000, 1000]), check="none", trace=True)
    refused(client, "gradient", body, *MEMORY_OR_ANSWER)
    small = graph(*broadcast_sines(3, [4]), check="none", trace=True)
    assert post(client, "gradient", small)["trace"]["entries"]


def test_points_multiply_the_cost():
    settings = make_settings(max_work=1e8)
    nodes = broadcast_sines(4, [1000])
    with ValidatingClient(create_app(settings)) as client:
        few = post(client, "gradient", {**graph(*nodes), "check": "none",
                                        "points": {"x": [0.1, 0.2]}})
        assert np.shape(few["gradients"]["x"]) == (2,)
        refused(client, "gradient", {**graph(*nodes), "check": "none",
                                     "points": {"x": np.linspace(0, 1, 500).tolist()}},
                "max_work")


def test_a_sparse_hessian_with_too_many_colours_is_refused_before_its_sweep():
    """The colours are known only once the pattern is found: the compressed sweep is
    priced then, before it runs. A dense Hessian asked as coordinates needs n colours."""
    n = 400
    nodes = [var("x", np.linspace(0.1, 1, n).tolist()), op("s", "sum", "x"),
             op("q", "mul", "s", "s")]
    body = {**graph(*nodes), "format": "coo", "check": "none"}
    with ValidatingClient(create_app(make_settings(max_work=1e6))) as client:
        problem = refused(client, "hessian", body, "max_work")
        assert "colours" in problem["detail"]
    with ValidatingClient(create_app(make_settings())) as client:
        r = client.post("/v1/hessian", json=body)
        assert r.status_code == 200, r.text[:300]
        assert r.json()["structure"]["colours"] == n


def test_each_limit_is_a_setting(client):
    """The defaults let the seed's examples and the benchmarks' requests through."""
    assert post(client, "gradient", SEED_3)["gradients"] == {"x": 4.0, "y": 27.0}
    tight = make_settings(max_work=1e3)
    with ValidatingClient(create_app(tight)) as small:
        problem = refused(small, "gradient", {**SEED_3, "check": "none"}, "max_work")
        assert "1e+03" in problem["detail"]


# ------------------------------------------------------------- admission control


def test_a_saturated_replica_answers_503_with_retry_after():
    """One computation at a time and no waiting: a second concurrent one is turned away
    with 503 and Retry-After; the first still finishes, and the next is served."""
    settings = make_settings(max_running=1, admission_wait_seconds=0.0)
    slow = {"graph": {"nodes": broadcast_sines(60, [200_000])}, "check": "none"}
    with ValidatingClient(create_app(settings)) as client:
        first: dict = {}
        worker = threading.Thread(
            target=lambda: first.update(r=client.post("/v1/gradient", json=slow)))
        worker.start()
        deadline = time.monotonic() + 5
        while not client.app.state.service.admission.saturated():
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.005)
        assert client.get("/readyz").json() == {"status": "saturated"}
        r = client.post("/v1/gradient", json=slow)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert r.json()["type"].endswith("saturated")
        worker.join()
        assert first["r"].status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}
        assert post(client, "gradient", {**SEED_3, "check": "none"})["gradients"]["y"] == 27.0


# --------------------------------------------------------------- registered graphs


def test_the_registry_is_bounded_in_bytes():
    """Graphs of few nodes and one large leaf: the store drops the oldest to stay under
    its bytes, and one graph larger than all of it is a 413."""
    settings = make_settings(graph_cache_bytes=3 * 8 * 100_000)
    with ValidatingClient(create_app(settings)) as client:
        store = client.app.state.service.graphs
        ids = []
        for i in range(6):
            body = graph(var("x", [float(i)] * 100_000), op("s", "sum", "x"))
            r = client.post("/v1/graphs", json=body)
            assert r.status_code == 201, r.text
            ids.append(r.json()["graph_id"])
            assert store.nbytes <= settings.graph_cache_bytes
        assert len(store) == 2
        assert client.get(f"/v1/graphs/{ids[0]}").status_code == 404
        assert client.get(f"/v1/graphs/{ids[-1]}").status_code == 200
        big = graph(var("x", [1.0] * 400_000), op("s", "sum", "x"))
        r = client.post("/v1/graphs", json=big)
        assert r.status_code == 413 and r.json()["limit"] == "graph_cache_bytes", r.text


def test_large_bodies_take_room_before_they_are_decoded():
    """A body over 64 KiB is admitted when it has arrived, before it is decoded or built:
    with every body slot taken it is a 503 at once, and served once one is given back."""
    settings = make_settings(max_running=1, admission_wait_seconds=0.0)
    body = graph(var("x", [0.5] * 20_000), op("s", "sum", "x"), check="none")
    with ValidatingClient(create_app(settings)) as client:
        admission = client.app.state.service.admission
        assert admission.max_bodies == 2
        for _ in range(admission.max_bodies):
            asyncio.run(admission.enter_body(1.0))
        r = client.post("/v1/gradient", json=body)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text[:300]
        assert "large bodies" in r.json()["detail"]
        assert post(client, "gradient", {**SEED_3, "check": "none"})["gradients"]["x"] == 4.0
        admission.leave_body(1.0)
        assert post(client, "gradient", body)["gradients"]["x"] == [1.0] * 20_000
        admission.leave_body(1.0)
        assert admission.load().bytes == 0.0


def test_admitted_room_is_given_back_after_each_answer(client):
    """Every path gives its room back: answered, refused, failed inside the engine."""
    admission = client.app.state.service.admission
    big = graph(var("x", [0.5] * 20_000), op("s", "sin", "x"), op("t", "sum", "s"))
    post(client, "gradient", {**big, "check": "none"})
    post(client, "gradient", broadcast_solve(800), status=422)
    bad = graph(var("x", [0.5] * 20_000), op("s", "reshape", "x", shape=[3, 7]))
    post(client, "evaluate", {**bad, "check": "none"}, status=422)
    load = admission.load()
    assert (load.running, load.bytes, load.waiting) == (0, 0.0, 0)


def test_a_dry_run_estimates_without_computing(client):
    """``Service.estimate``: the same estimate the request would be held to, at once."""
    service = client.app.state.service
    seed = service.estimate(GRADIENT, ComputeRequest.model_validate(SEED_3))
    assert 0 < seed.work < 1e6 and seed.response_bytes < 4096
    start = time.monotonic()
    allowed = service.estimate(GRADIENT, ComputeRequest.model_validate(broadcast_solve(4)))
    assert allowed.work > 1e9  # seconds of work, estimated in far less
    assert time.monotonic() - start < FAST
    with pytest.raises(CostError) as refused:
        service.estimate(GRADIENT, ComputeRequest.model_validate(broadcast_solve(800)))
    assert refused.value.limit == "max_work" and refused.value.node == "s"
    assert service.admission.load().running == 0


def test_a_sparse_hessians_colours_are_admitted_as_they_become_known(client, monkeypatch):
    """The first estimate of a sparse Hessian has one colour; once the pattern gives 400,
    the difference in memory is admitted too, and all of it given back after the answer."""
    admission = client.app.state.service.admission
    taken: list[tuple[str, float]] = []
    for name in ("enter", "grow"):
        real = getattr(admission, name)
        monkeypatch.setattr(admission, name,
                            lambda nbytes, name=name, real=real: (taken.append((name, nbytes)),
                                                                  real(nbytes))[1])
    n = 400
    nodes = [var("x", np.linspace(0.1, 1, n).tolist()), op("s", "sum", "x"),
             op("q", "mul", "s", "s")]
    assert post(client, "hessian", {**graph(*nodes), "format": "coo",
                                    "check": "none"})["structure"]["colours"] == n
    assert [name for name, _ in taken] == ["enter", "grow"] and taken[1][1] > 0
    load = admission.load()
    assert (load.running, load.bytes) == (0, 0.0)


def _long(prefix: str, i: int) -> str:
    return f"{prefix}{i}_".ljust(128, "a")


def _traced_inline_constants(m: int, k: int) -> dict:
    """m add_n nodes of 128-byte ids reading x and k - 1 inline constants each: a trace
    names every constant ``<node id>.inputs[i]``, several times."""
    nodes = [{"id": "x", "op": "variable", "value": 0.5}]
    nodes += [{"id": _long("s", j), "op": "add_n", "inputs": ["x"] + [1] * (k - 1)}
              for j in range(m)]
    nodes.append({"id": "t", "op": "add_n", "inputs": [n["id"] for n in nodes[1:]]})
    return {"graph": {"nodes": nodes}, "trace": True, "check": "none"}


def _unconnected_pairs(k: int) -> dict:
    """k targets by k sources of 128-byte ids, no source read: a note for every pair."""
    sources, targets = [_long("u", i) for i in range(k)], [_long("t", i) for i in range(k)]
    nodes = [{"id": "y", "op": "variable", "value": 0.5}]
    nodes += [{"id": s, "op": "variable", "value": 0.5} for s in sources]
    nodes += [{"id": t, "op": "mul", "inputs": ["y", float(i)]} for i, t in enumerate(targets)]
    return {"graph": {"nodes": nodes}, "target": targets, "sources": sources, "check": "none"}


@pytest.mark.parametrize(("path", "body"), [
    ("evaluate", _traced_inline_constants(4, 500)),
    ("gradient", _traced_inline_constants(4, 500)),
    ("jacobian", _unconnected_pairs(60)),
], ids=["evaluate trace", "gradient trace", "jacobian notes"])
def test_the_names_an_answer_repeats_are_priced(client, path, body):
    """A trace's names and a Jacobian's notes grow with the ids they repeat: the estimate
    covers the answer (once 76.5 MB answered an estimate of 279 KB, and 176 MB one of
    62.5 MB)."""
    from app import endpoints

    endpoint = endpoints.ENDPOINTS[path]
    estimate = client.app.state.service.estimate(endpoint, endpoint.request.model_validate(body))
    r = client.post(f"/v1/{path}", json=body)
    assert r.status_code == 200, r.text
    assert len(r.content) <= estimate.response_bytes, (len(r.content), estimate)
    assert len(r.content) >= estimate.response_bytes / 3, (len(r.content), estimate)
