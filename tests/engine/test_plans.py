"""Inline graphs sent again are built once (engine.graphs.plans): bounded, exact, and a
build that fails keeps nothing."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import GraphError
from engine.graphs.build import build_graph
from engine.graphs.plans import PlanCache
from engine.graphs.reusable import ReusableGraph


def chain(n: int, first: float = 0.5) -> list[dict]:
    nodes = [{"id": "x", "op": "variable", "value": first}]
    nodes += [
        {"id": f"s{i}", "op": "sin", "inputs": [nodes[-1]["id"] if i == 0 else f"s{i - 1}"]}
        for i in range(n - 1)
    ]
    return nodes


def counting(nodes: list[dict]) -> tuple[list[int], object]:
    calls: list[int] = []

    def build():
        calls.append(1)
        return build_graph(nodes)

    return calls, build


def test_a_key_seen_before_is_not_built_again():
    cache = PlanCache()
    calls, build = counting(chain(4))
    first = cache.get("k", build)
    again = cache.get("k", build)
    assert isinstance(first, ReusableGraph)
    assert again is first and len(calls) == 1
    other = cache.get("other", build)
    assert other is not first and len(calls) == 2


def test_the_least_recently_used_graph_goes_first():
    cache = PlanCache(max_graphs=2)
    graphs = {k: cache.get(k, counting(chain(3))[1]) for k in ("a", "b")}
    assert cache.get("a", counting(chain(3))[1]) is graphs["a"]  # "a" used last
    cache.get("c", counting(chain(3))[1])
    assert len(cache) == 2
    calls, build = counting(chain(3))
    assert cache.get("a", build) is graphs["a"] and not calls  # kept
    cache.get("b", build)
    assert calls == [1]  # "b" was the one dropped


def test_nodes_held_stay_within_the_bound():
    cache = PlanCache(max_graphs=10, max_nodes=10)
    cache.get("a", counting(chain(6))[1])
    cache.get("b", counting(chain(6))[1])
    assert cache.nodes <= 10 and len(cache) == 1
    calls, build = counting(chain(11))
    cache.get("big", build)
    cache.get("big", build)
    assert calls == [1, 1]  # too big to hold: built each time, never kept
    assert cache.nodes <= 10


def test_a_failed_build_keeps_nothing():
    cache = PlanCache()
    bad = [
        {"id": "x", "op": "variable", "value": 1.0},
        {"id": "y", "op": "sin", "inputs": ["nope"]},
    ]
    for _ in range(2):
        with pytest.raises(GraphError) as err:
            cache.get("bad", lambda: build_graph(bad))
        assert err.value.node == "y"
    assert len(cache) == 0 and cache.nodes == 0


def test_a_kept_graph_remembers_its_costs_per_leaf_shapes():
    graph = PlanCache().get("k", lambda: build_graph(chain(3)))
    calls: list[int] = []

    def cost() -> object:
        calls.append(1)
        return object()

    shapes = graph.infer_shapes({"x": 0.5}, graph.limits)
    first = graph.remembered("cost", shapes, None, cost)
    assert graph.remembered("cost", shapes, None, cost) is first and calls == [1]
    wider = graph.infer_shapes({"x": np.zeros(3)}, graph.limits)
    assert graph.remembered("cost", wider, None, cost) is not first and calls == [1, 1]


def _at_once(count: int, call) -> list:
    """``call()`` from ``count`` threads released together; their answers or errors."""
    import threading

    start = threading.Barrier(count)
    out: list = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = call()
        except Exception as exc:  # noqa: BLE001 - the answer under test
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_clients_sending_one_new_graph_at_once_build_it_once():
    import time

    cache = PlanCache()
    nodes = chain(200)
    calls: list[int] = []

    def slow_build():
        calls.append(1)
        time.sleep(0.2)  # long enough that every other thread asks meanwhile
        return build_graph(nodes)

    graphs = _at_once(8, lambda: cache.get("k", slow_build))
    assert len(calls) == 1
    assert all(g is graphs[0] for g in graphs) and isinstance(graphs[0], ReusableGraph)


def test_when_the_shared_build_fails_each_waiter_raises_its_own_error():
    import time

    cache = PlanCache()
    calls: list[int] = []

    def failing():
        calls.append(1)
        time.sleep(0.1)
        return build_graph([{"id": "y", "op": "sin", "inputs": ["nowhere"]}])

    errors = _at_once(4, lambda: cache.get("bad", failing))
    assert all(isinstance(e, GraphError) for e in errors)
    assert len(calls) == 4 and len(cache) == 0
    assert not cache._building  # nothing left pending: a later request builds afresh


def test_when_the_builder_fails_for_its_own_reasons_the_next_one_builds_and_keeps_it():
    """A build may fail for its request's sake (its client gone, its budget spent): the
    waiters do not all build at once; one does, and keeps the graph for the rest."""
    import time

    cache = PlanCache()
    nodes = chain(50)
    calls: list[int] = []

    def build():
        calls.append(1)
        time.sleep(0.1)
        if len(calls) == 1:
            raise TimeoutError("the first request's budget is spent")
        return build_graph(nodes)

    answers = _at_once(5, lambda: cache.get("k", build))
    errors = [a for a in answers if isinstance(a, Exception)]
    graphs = [a for a in answers if not isinstance(a, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], TimeoutError)
    assert len(graphs) == 4 and all(g is graphs[0] for g in graphs)
    assert len(calls) == 2 and cache.get("k", build) is graphs[0]
