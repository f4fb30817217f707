"""Client and AsyncClient against a live service: typed results, problems, registration."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from derivative_client import (
    AsyncClient,
    Client,
    GradientResult,
    Graph,
    GraphInfo,
    HessianResult,
    ProblemError,
)
from derivative_client.values import np

SEED_3 = "x**2 + y**3"
AT = {"x": 2.0, "y": 3.0}


@pytest.fixture(scope="module")
def client(base_url: str):
    with Client(base_url, timeout=30, retries=2) as c:
        yield c


def seed_graph() -> tuple[Graph, object]:
    g = Graph()
    x = g.variable("x", 2.0)
    y = g.variable("y", 3.0)
    return g, x**2 + y**3


def as_lists(value):
    return value.tolist() if hasattr(value, "tolist") else value


def test_the_seed_example_from_a_graph(client):
    g, z = seed_graph()
    result = client.gradient(g, target=z)
    assert isinstance(result, GradientResult)
    assert result.gradients == {"x": 4.0, "y": 27.0}
    assert result.outputs == {z.id: 31.0}
    assert result.check.method == "sympy" and result.check.agrees
    assert result.notes == []


def test_the_seed_examples_as_expressions(client):
    assert client.gradient("x**2", values={"x": 3}).gradients == {"x": 6.0}
    third = client.derivative("x**3", values={"x": 3}, order=2)
    assert third.sources == ["x"] and third.order == 2
    assert [float(d) for d in third.derivatives] == [27.0, 18.0]
    assert client.gradient(SEED_3, values=AT).gradients == {"x": 4.0, "y": 27.0}


def test_hessian_matrix_is_an_array(client):
    result = client.hessian(SEED_3, values=AT)
    assert isinstance(result, HessianResult)
    assert as_lists(result.matrix) == [[2.0, 0.0], [0.0, 18.0]]
    if np is not None:
        assert isinstance(result.matrix, np.ndarray) and result.matrix.shape == (2, 2)
    else:
        assert isinstance(result.matrix, list)
    assert result.hessian["y"]["y"] == 18.0 and result.hessian["x"]["x"] == 2.0
    assert result.gradients == {"x": 4.0, "y": 27.0}


def test_tensors_sources_and_keywords(client):
    g = Graph()
    v = g.variable("v", [1.0, 2.0, 3.0])
    w = g.variable("w", 2.0, trainable=False)
    total = g.sum(v * w, axis=0)
    result = client.gradient(g, target=total, sources=[v, w], watch=[w])
    assert as_lists(result.gradients["v"]) == [2.0, 2.0, 2.0]
    assert result.gradients["w"] == 6.0
    jac = client.jacobian(g, target=v * w, sources=[v], check="none")
    assert as_lists(jac.jacobian[g.last.id]["v"]) == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    values = client.evaluate(g, target=total, values={v: [0.0, 0.0, 1.0]})
    assert values.outputs == {total.id: 2.0}
    unwatched = client.gradient(g, target=total, sources=[w])
    assert unwatched.gradients == {"w": None}
    assert [n.reason for n in unwatched.notes] == ["not_watched"]


def test_points_batch(client):
    result = client.gradient(SEED_3, points=[{"x": 2, "y": 3}, {"x": 1, "y": 1}])
    assert as_lists(result.gradients["x"]) == [4.0, 2.0]
    assert as_lists(result.gradients["y"]) == [27.0, 3.0]


def test_problems_raise_with_the_culprit(client):
    with pytest.raises(ProblemError) as bad_text:
        client.gradient("x +", values={"x": 1})
    problem = bad_text.value
    assert problem.status == 422 and problem.field == "expression"
    assert problem.title and problem.detail and problem.type.endswith("invalid-expression")
    assert problem.request_id and len(problem.request_id) >= 16
    g = Graph()
    x = g.variable("x", 1.0)
    g.apply("log", x, name="l")
    g.nodes[-1]["inputs"] = ["missing"]  # a dangling reference: the engine names the node
    with pytest.raises(ProblemError) as dangling:
        client.gradient(g)
    assert dangling.value.status == 422 and dangling.value.node == "l"
    with pytest.raises(ProblemError) as unknown_field:
        client.gradient(SEED_3, values=AT, tolerance=3)
    assert unknown_field.value.field == "tolerance"


def test_registered_graphs_come_back_after_an_eviction(client, base_url):
    g, z = seed_graph()
    info = client.register(g)
    assert isinstance(info, GraphInfo) and info.graph_id.startswith("g_")
    assert info.last == z.id and info.leaves == ["x", "y"]
    assert client.gradient(info, values={"x": 1, "y": 1}).gradients == {"x": 2.0, "y": 3.0}
    # Evicted behind the client's back (another replica, a full cache): it registers again.
    assert httpx.delete(f"{base_url}/v1/graphs/{info.graph_id}").status_code == 204
    assert client.gradient(info, values=AT).gradients == {"x": 4.0, "y": 27.0}
    assert client.gradient(info.graph_id, values=AT).gradients == {"x": 4.0, "y": 27.0}
    client.forget(info)
    with pytest.raises(ProblemError) as gone:  # forgotten on purpose: not registered again
        client.gradient(info, values=AT)
    assert gone.value.status == 404 and gone.value.slug == "graph-not-found"
    assert gone.value.field == "graph_id"


def test_a_graph_id_this_client_never_registered_is_a_404(client):
    with pytest.raises(ProblemError) as missing:
        client.gradient("g_" + "0" * 64, values=AT)
    assert missing.value.status == 404 and missing.value.slug == "graph-not-found"


def test_symbolic_formulas_and_their_values(client):
    result = client.symbolic("x**2*y", values=AT, order=2)
    assert result.sources == ["x", "y"] and result.order == 2
    assert result.derivatives[0] == ["2*x*y", "x**2"]
    assert as_lists(result.values["derivatives"][0]) == [12.0, 4.0]
    assert result.values["function"] == 12.0
    assert result.latex["function"]


def test_async_client_gives_the_same_answers(base_url):
    async def main() -> tuple[GradientResult, GradientResult]:
        async with AsyncClient(base_url, timeout=30) as client:
            g, z = seed_graph()
            info = await client.register(g)
            httpx.delete(f"{base_url}/v1/graphs/{info.graph_id}")
            return await asyncio.gather(
                client.gradient(g, target=z), client.gradient(info, values=AT)
            )

    by_graph, by_id = asyncio.run(main())
    assert by_graph.gradients == by_id.gradients == {"x": 4.0, "y": 27.0}


def test_the_client_catalogue_is_the_served_one(client):
    from derivative_client import OPS

    served = {op["name"]: (op["arity"], tuple(op["attrs"])) for op in client.ops()}
    kept = {spec.name: (spec.arity, spec.attrs) for spec in OPS}
    assert kept == served, {
        "missing here": sorted(set(served) - set(kept)),
        "gone there": sorted(set(kept) - set(served)),
        "changed": sorted(n for n in set(kept) & set(served) if kept[n] != served[n]),
    }


def test_named_expressions(client):
    result = client.jacobian({"u": "x*y", "v": "x + y"}, values=AT)
    assert result.outputs == {"u": 6.0, "v": 5.0}
    assert result.jacobian == {"u": {"x": 3.0, "y": 2.0}, "v": {"x": 1.0, "y": 1.0}}
