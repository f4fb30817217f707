"""A reused graph's dense Hessian from a few coloured seeds (engine.derive.coloured_hessian):
the same numbers as the n-seed sweep, and the n-seed sweep wherever colours would not do."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.examples import rosenbrock
from bench.rosenbrock import exact_hessian
from engine import cost
from engine.derive import coloured_hessian, derivatives, sparse
from engine.derive.query import Query
from engine.errors import CostError
from engine.graphs.build import build_graph
from engine.graphs.reusable import ReusableGraph


@pytest.fixture(autouse=True)
def _fresh_plans():
    coloured_hessian._PLANS.clear()
    yield
    coloured_hessian._PLANS.clear()


def node(nid: str, op: str, *inputs: Any, **attrs: Any) -> dict[str, Any]:
    return {"id": nid, "op": op, "inputs": list(inputs), **({"attrs": attrs} if attrs else {})}


def var(nid: str, value: Any) -> dict[str, Any]:
    return {"id": nid, "op": "variable", "value": value}


def both(nodes: list[dict[str, Any]], times: int = 3, **query: Any) -> tuple[Any, list[Any]]:
    """The Hessian of a graph never reused (the n-seed sweep), and of one graph asked
    ``times`` times."""
    once = derivatives.hessian(Query(graph=build_graph(nodes), **query))
    reused = ReusableGraph.of(build_graph(nodes))
    return once, [derivatives.hessian(Query(graph=reused, **query)) for _ in range(times)]


def assert_same(a: Any, b: Any) -> None:
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert a.hessian.keys() == b.hessian.keys()
    for i, row in a.hessian.items():
        for j, block in row.items():
            other = b.hessian[i][j]
            assert (block is None) == (other is None), (i, j)
            if block is not None:
                np.testing.assert_array_equal(block, other)


def test_rosenbrock_second_sight_takes_three_seeds_and_gives_the_exact_hessian(coloured_sweeps):
    n = 64
    nodes = rosenbrock(n)["graph"]["nodes"]
    once, (first, second, third) = both(nodes)
    assert coloured_sweeps == [3, 3]  # the first sight is the n-seed sweep; then 3 colours
    want = exact_hessian(np.asarray(nodes[0]["value"]))
    np.testing.assert_allclose(second.matrix, want, rtol=1e-12, atol=1e-9)
    for got in (first, second, third):
        assert_same(got, once)


def test_several_sources_an_unconnected_one_and_weights(coloured_sweeps):
    """Blocks between sources, a source with no path (None blocks), output_gradients:
    block by block as the n-seed sweep gives them."""
    nodes = [
        var("a", [0.3, -0.7, 1.1, 0.5, 2.0, -1.3, 0.9, 0.2]),
        var("b", [1.5, 0.4, -0.6, 0.8, 1.2, -0.9, 0.1, 0.7]),
        var("c", [2.0, 3.0]),
        node("ab", "mul", "a", "b"),
        node("s", "sin", "ab"),
        node("e", "exp", "a"),
        node("t", "add", "s", "e"),
        node("f", "sum", "t"),
    ]
    for unconnected in ("none", "zero"):
        coloured_sweeps.clear()
        coloured_hessian._PLANS.clear()
        once, runs = both(nodes, sources=["a", "c", "b"], unconnected_gradients=unconnected,
                          output_gradients={"f": 2.5})
        assert coloured_sweeps and all(k < 18 for k in coloured_sweeps)
        for got in runs:
            assert_same(got, once)
        assert (runs[-1].hessian["a"]["c"] is None) == (unconnected == "none")


def test_a_number_that_is_not_finite_takes_the_n_seed_sweep(coloured_sweeps):
    """x^1.5 at 0: a finite gradient, but an infinite second derivative, which would
    be spread over its colour."""
    x = [0.0] + [float(v) for v in np.linspace(0.5, 2.0, 15)]
    nodes = [var("x", x), node("r", "pow", "x", 1.5), node("f", "sum", "r")]
    once, runs = both(nodes)
    assert coloured_sweeps == [1]  # a diagonal pattern: one colour, tried once, then not again
    assert np.isinf(once.matrix[0, 0])
    for got in runs:
        np.testing.assert_array_equal(got.matrix, once.matrix)


def test_a_dense_pattern_keeps_the_n_seed_sweep(coloured_sweeps):
    nodes = [var("x", [float(v) for v in range(1, 17)]), node("s", "sum", "x"),
             node("f", "square", "s")]
    once, runs = both(nodes)
    assert coloured_sweeps == []
    for got in runs:
        assert_same(got, once)


def test_plans_are_bounded_in_number_and_size(monkeypatch):
    monkeypatch.setattr(coloured_hessian, "_PLANS", coloured_hessian.LRU(2))
    for n in (40, 48, 56):
        both(rosenbrock(n)["graph"]["nodes"], times=2)
    assert len(coloured_hessian._PLANS) == 2
    monkeypatch.setattr(coloured_hessian, "PLAN_MAX_BYTES", 1024)
    reused = ReusableGraph.of(build_graph(rosenbrock(64)["graph"]["nodes"]))
    for _ in range(3):
        derivatives.hessian(Query(graph=reused))
    kept = [coloured_hessian._PLANS.get(k) for k in list(coloured_hessian._PLANS._items)]
    assert coloured_hessian._TOO_LARGE in kept  # used once, not kept


def test_detection_is_paid_only_where_it_costs_less_than_the_sweep():
    small, large = (cost.graph_cost(g, g.infer_shapes(g.leaf_values({}), g.limits))
                    for g in (build_graph(rosenbrock(n)["graph"]["nodes"]) for n in (4, 100)))
    assert not coloured_hessian.worth_detecting(small, 4)
    assert coloured_hessian.worth_detecting(large, 100)
    assert coloured_hessian.worth_detecting(None, 4)  # the library, unpriced


def test_the_sparse_format_reads_the_same_numbers():
    """format coo and the coloured dense matrix share one colouring and one sweep."""
    nodes = rosenbrock(50)["graph"]["nodes"]
    _, runs = both(nodes)
    coo = derivatives.hessian(Query(graph=build_graph(nodes), format="coo")).sparse
    assert isinstance(coo, sparse.SparseResult)
    np.testing.assert_array_equal(coo.todense(), runs[-1].matrix)


# ------------------------------------------------ over the limits of the n-seed sweep


def limited(graph: Any, **query: Any) -> Query:
    """A query under the service's default cost limits."""
    from app.limits import cost_limits
    from app.settings import Settings

    return Query(graph=graph, cost_limits=cost_limits(Settings()), **query)


def n_seed_estimate(graph: Any, n: int) -> cost.Estimate:
    return cost.hessian(cost.graph_cost(graph, graph.infer_shapes(
        graph.leaf_values({}), graph.limits)), n)


def test_a_dense_hessian_past_the_sweeps_limits_comes_from_its_colours(coloured_sweeps):
    """1,000 sources: the n-seed sweep is over the default limits (its working memory),
    its 3 colours are not."""
    nodes = rosenbrock(1000)["graph"]["nodes"]
    graph = build_graph(nodes)
    with pytest.raises(CostError):
        cost.enforce(n_seed_estimate(graph, 1000), limited(graph).cost_limits, "Hessian")
    got = derivatives.hessian(limited(graph))
    assert coloured_sweeps == [3]
    want = exact_hessian(np.asarray(nodes[0]["value"]))
    np.testing.assert_allclose(got.matrix, want, rtol=1e-12, atol=1e-9)
    assert got.hessian["x"]["x"].shape == (1000, 1000)
    reused = ReusableGraph.of(build_graph(nodes))
    for _ in range(2):
        np.testing.assert_array_equal(derivatives.hessian(limited(reused)).matrix, got.matrix)


def test_past_the_limits_a_dense_pattern_or_a_number_not_finite_keeps_the_refusal(coloured_sweeps):
    n = 1000
    x = np.linspace(0.5, 1.5, n).tolist()
    dense = [var("x", x), node("a", "sin", "x"), node("b", "mul", "a", "x"),
             node("c", "exp", "b"), node("d", "tanh", "c"), node("e", "mul", "d", "a"),
             node("s", "sum", "e"), node("f", "square", "s")]
    reused = ReusableGraph.of(build_graph(dense))
    with pytest.raises(CostError):
        cost.enforce(n_seed_estimate(reused, n), limited(reused).cost_limits, "Hessian")
    for _ in range(2):  # the second time without recording: the pattern is known
        with pytest.raises(CostError, match="Hessian is estimated"):
            derivatives.hessian(limited(reused))
    assert coloured_hessian.known_not_to_pay(
        reused.remembered, reused.infer_shapes(reused.leaf_values({}), reused.limits),
        (("x",), ("f",), (), True))
    at_zero = [var("x", [0.0, *x[1:]]), node("r", "pow", "x", 1.5), node("a", "sin", "x"),
               node("b", "mul", "a", "x"), node("c", "exp", "b"), node("d", "tanh", "c"),
               node("e", "add", "r", "d"), node("f", "sum", "e")]
    graph = build_graph(at_zero)
    with pytest.raises(CostError):
        cost.enforce(n_seed_estimate(graph, n), limited(graph).cost_limits, "Hessian")
    with pytest.raises(CostError, match="Hessian is estimated"):
        derivatives.hessian(limited(graph))
    assert coloured_sweeps == [1]  # one colour (diagonal), swept, then refused: inf at x[0]


def _wide_chain(n: int, steps: int) -> list[dict[str, Any]]:
    """32 elements that each depend on all n sources, carried through ``steps`` adds:
    every step's pattern holds 32 n indices, and the Hessian is diagonal (square(x))."""
    nodes = [var("x", np.linspace(0.5, 1.5, n).tolist()), node("s", "sum", "x"),
             node("a0", "broadcast_to", "s", shape=[32])]
    nodes += [node(f"a{k + 1}", "add", f"a{k}", 1.0) for k in range(steps)]
    return nodes + [node("q", "square", "x"), node("sq", "sum", "q"),
                    node("sa", "sum", f"a{steps}"), node("f", "add", "sq", "sa")]


@pytest.mark.parametrize("steps", [1000, 2000])
def test_detection_holds_a_frontier_and_gathers_no_more_than_it_was_allowed(steps):
    """A pattern carried through a long chain: detection keeps only the patterns still
    to be read, and stops past the work its request was admitted for. With 1,000 steps
    the n-seed sweep is over the limits and detection over its allowance: refused; with
    2,000 it is within them: detection stops, and the n-seed sweep answers."""
    import tracemalloc

    graph = ReusableGraph.of(build_graph(_wide_chain(1000, steps)))
    over = steps == 1000
    tracemalloc.start()
    try:
        if over:
            with pytest.raises(CostError):
                derivatives.hessian(limited(graph, target="f"))
        else:
            first, second = (derivatives.hessian(limited(graph, target="f")) for _ in range(2))
            np.testing.assert_array_equal(first.matrix, second.matrix)
            np.testing.assert_array_equal(np.diag(second.matrix), np.full(1000, 2.0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 96 * 2**20  # holding every step's pattern took 250 MB to 500 MB
    # remembered as not paying: the next request over the limits is refused before it
    # records, and one within them takes the n-seed sweep without detecting again
    assert list(coloured_hessian._PLANS._items.values()) == [None]


def test_many_elementwise_terms_are_not_taken_for_a_dense_pattern(coloured_sweeps):
    """300 terms sin(k x), all held until they are added up: 300,000 indices at once,
    past 8 steps' worth of detection's small per-step bound, yet a diagonal Hessian."""
    n, terms = 1000, 300
    nodes = [var("x", np.linspace(0.1, 1.0, n).tolist())]
    for k in range(1, terms + 1):
        nodes += [node(f"m{k}", "mul", "x", float(k)), node(f"s{k}", "sin", f"m{k}")]
    nodes.append(node("a1", "add", "s1", 0.0))
    nodes += [node(f"a{k}", "add", f"a{k - 1}", f"s{k}") for k in range(2, terms + 1)]
    nodes.append(node("f", "sum", f"a{terms}"))
    got = derivatives.hessian(limited(ReusableGraph.of(build_graph(nodes)), target="f"))
    assert coloured_sweeps == [1]
    x = np.linspace(0.1, 1.0, n)
    k = np.arange(1, terms + 1)[:, None]
    np.testing.assert_allclose(got.matrix, np.diag(-(k**2 * np.sin(k * x)).sum(axis=0)),
                               rtol=1e-10, atol=1e-8)


def test_a_sparse_hessian_whose_pattern_costs_more_than_its_estimate_is_refused_early():
    """Sets of 1,000 sources carried by 512 elements through 400 steps: about 2 x 10^8
    indices to gather, priced by elements as a few milliseconds. Detection stops at its
    allowance: a 422 (compute limit, field format) within a fraction of a second."""
    import time

    from engine.errors import ComputeLimitError

    nodes = [var("x", np.linspace(0.5, 1.5, 1000).tolist()), node("s", "sum", "x"),
             node("a0", "broadcast_to", "s", shape=[512])]
    nodes += [node(f"a{k + 1}", "add", f"a{k}", 1.0) for k in range(400)]
    nodes += [node("q", "square", "x"), node("sq", "sum", "q"),
              node("sa", "sum", "a400"), node("f", "add", "sq", "sa")]
    started = time.perf_counter()
    with pytest.raises(ComputeLimitError, match="more work than it was allowed") as refused:
        derivatives.hessian(limited(build_graph(nodes), target="f", format="coo"))
    assert refused.value.field == "format"
    assert time.perf_counter() - started < 5.0  # it took 1.05 s to answer before; now ~0.1 s
