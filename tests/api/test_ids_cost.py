"""A request pays for the ids it names (``engine.cost``: ``ID_WORK``, ``CALL_WORK``,
``PAIR_WORK``, ``BLOCK_WORK``).

Before, the estimate counted elements, not ids: a Jacobian of 10,000 scalar targets was
priced at 2e4 work units, ran on the event loop as tiny, and took 0.6 s; 400 x 400 scalar
(target, source) pairs priced at 5e6 took 1 s. Here the estimate grows with the ids, a
Jacobian past the work limit by its pairs is refused before it runs, such a request
leaves the event loop, and an id named twice in a Jacobian is computed once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app.endpoints import ENDPOINTS
from app.service import INLINE_MAX_WORK, Service
from app.settings import Settings
from engine import cost

SEED = {"expression": "x*y", "values": {"x": 1.5, "y": -2.0}, "check": "none"}


def scalar_pairs(n: int, targets: int, sources: int) -> dict[str, Any]:
    """n scalar variables and n products of neighbours; the first ids of each named."""
    nodes = [{"id": f"x{i}", "op": "variable", "value": 0.1 * i} for i in range(n)]
    nodes += [{"id": f"y{i}", "op": "mul", "inputs": [f"x{i}", f"x{(i + 1) % n}"]}
              for i in range(n)]
    return {"graph": {"nodes": nodes}, "target": [f"y{i}" for i in range(targets)],
            "sources": [f"x{i}" for i in range(sources)], "check": "none"}


@pytest.fixture(scope="module")
def service() -> Service:
    return Service(Settings())


def work(service: Service, kind: str, body: dict[str, Any]) -> float:
    endpoint = ENDPOINTS[kind]
    return service.estimate(endpoint, endpoint.request.model_validate(body)).work


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, field) for kind in ("evaluate", "gradient", "jacobian", "hessian")
     for field in ("target", "sources", "watch")
     if (kind, field) != ("evaluate", "sources")],  # evaluate reads no sources
)
def test_every_id_named_is_paid_for(service, kind, field):
    item = "f" if field == "target" else "x"
    one = work(service, kind, {**SEED, field: [item]})
    many = work(service, kind, {**SEED, field: [item] * 1001})
    assert many - one >= 1000 * cost.ID_WORK


def test_a_jacobian_pays_per_target_call_and_per_pair(service):
    base = work(service, "jacobian", scalar_pairs(40, 1, 1))
    wide = work(service, "jacobian", scalar_pairs(40, 40, 40))
    assert wide - base >= 39 * cost.CALL_WORK + (40 * 40 - 1) * cost.PAIR_WORK


def test_a_hessian_pays_per_block(service):
    base = work(service, "hessian", scalar_pairs(40, 1, 1))
    wide = work(service, "hessian", scalar_pairs(40, 1, 40))
    assert wide - base >= (40 * 40 - 1) * cost.BLOCK_WORK


def test_a_jacobian_of_a_million_scalar_pairs_is_refused_before_it_runs(client):
    """1,000 x 1,000 scalar ids is within the entry limit (10^6); at about 6 us a pair (400
    x 400 took 1 s) its work is past the limit, not only its memory."""
    r = client.post("/v1/jacobian", json=scalar_pairs(1000, 1000, 1000))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("/cost-limit") and problem["limit"] == "max_work"


def test_many_targets_leave_the_event_loop(client, monkeypatch):
    ran: list[str] = []
    run = client.app.state.service.run

    def spy(kind, request, **how):
        ran.append(threading.current_thread().name)
        return run(kind, request, **how)

    monkeypatch.setattr(client.app.state.service, "run", spy)
    r = client.post("/v1/jacobian", json={**SEED, "target": ["f"] * 5000})
    assert r.status_code == 200, r.text
    small = client.post("/v1/jacobian", json=SEED)
    assert small.status_code == 200
    # the seed alone runs inline (once, on the loop); the 5,000 targets were refused there
    # (their estimate is over INLINE_MAX_WORK) and ran in a thread
    assert work(client.app.state.service, "jacobian", {**SEED, "target": ["f"] * 5000}) \
        > INLINE_MAX_WORK
    assert len(set(ran[:-1])) == 2 and ran[-1] == ran[0], ran


@pytest.mark.parametrize("field", ["target", "sources"])
def test_an_id_named_twice_in_a_jacobian_is_computed_once(client, field, monkeypatch):
    from engine.tape.gradient_tape import GradientTape

    calls: list[int] = []
    jacobian = GradientTape.jacobian

    def counted(self, target, sources, *args, **kwargs):
        calls.append(len(sources))
        return jacobian(self, target, sources, *args, **kwargs)

    monkeypatch.setattr(GradientTape, "jacobian", counted)
    item = "f" if field == "target" else "x"
    once = client.post("/v1/jacobian", json={**SEED, field: [item]}).json()
    first = list(calls)
    twice = client.post("/v1/jacobian", json={**SEED, field: [item] * 3}).json()
    assert calls[len(first):] == first  # the same calls, with the same sources
    assert twice["jacobian"] == once["jacobian"] and twice["notes"] == once["notes"]
    assert twice["outputs"] == once["outputs"]


def expressions(outputs: int, size: int) -> dict[str, Any]:
    """``outputs`` named expressions over a shared vector: each its own part of the graph."""
    return {"expressions": {f"f{i}": f"sum(sin(d*x + {i}) * y)" for i in range(outputs)},
            "values": {"x": 0.5, "y": 1.5, "d": [0.001 * k for k in range(size)]},
            "sources": ["x", "y"], "check": "none"}


def test_each_target_of_a_jacobian_is_priced_over_its_own_nodes(service):
    """40 outputs of one request share their variables, not their sweeps: priced as if
    each swept the whole graph, 40 outputs over 20,000 numbers were refused (3.6e9 work
    units) though they take about 0.1 s."""
    one, forty = work(service, "jacobian", expressions(1, 20_000)), \
        work(service, "jacobian", expressions(40, 20_000))
    assert forty < 60 * one  # about 40 times one output's, not 40 x 40
    body = expressions(40, 20_000)
    estimate = service.estimate(ENDPOINTS["jacobian"],
                                ENDPOINTS["jacobian"].request.model_validate(body))
    assert estimate.work < Settings().max_work and estimate.bytes < Settings().max_request_bytes


def test_a_chain_of_targets_is_priced_over_every_node_each_depends_on(service):
    """The other end: each target of a chain depends on all before it."""
    n = 200
    nodes = [{"id": "x", "op": "variable", "value": 0.5}]
    nodes += [{"id": f"c{i}", "op": "sin", "inputs": ["x" if i == 0 else f"c{i - 1}"]}
              for i in range(n)]
    chain = {"graph": {"nodes": nodes}, "check": "none"}
    every = work(service, "jacobian", {**chain, "target": [f"c{i}" for i in range(n)]})
    # target c{i} sweeps i + 1 ops: their overhead alone, summed, besides the calls
    assert every - n * cost.CALL_WORK >= sum(range(1, n + 1)) * cost.SWEEP_OVERHEAD


def test_targets_of_many_sizes_are_priced_in_a_few_passes():
    """One pass over the graph per target size: 5,000 sizes took 2.2 s to estimate. Past
    MAX_SWEEP_GROUPS sizes, every target is priced at the costliest, in one pass."""
    from engine.graphs.build import build_graph

    n = cost.MAX_SWEEP_GROUPS + 2
    nodes = [{"id": "x", "op": "variable", "value": [0.5] * n}]
    nodes += [{"id": f"s{i}", "op": "slice", "inputs": ["x"], "attrs": {"begin": [0],
                                                                     "end": [i + 1]}}
              for i in range(n)]
    graph = build_graph(nodes)
    shapes = graph.infer_shapes(graph.leaf_values({}), graph.limits)
    g = cost.graph_cost(graph, shapes)
    sizes = {f"s{i}": (1.0, float(i + 1)) for i in range(n)}
    costliest = {t: (1.0, float(n)) for t in sizes}
    assert cost._ancestor_sweeps(g, graph, sizes) == cost._ancestor_sweeps(g, graph, costliest)
    few = dict(list(sizes.items())[: cost.MAX_SWEEP_GROUPS])
    exact = sum(cost.SWEEP_OVERHEAD + (s + 1) * g.node_backward[graph.order.index(t)]
                for t, (_f, s) in few.items())
    assert cost._ancestor_sweeps(g, graph, few) == pytest.approx(exact)
