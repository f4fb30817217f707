"""Points: one batched pass over B points equals one plain run per point, for every op of
the table (values, gradients, per-point Hessians), with batched and unbatched inputs mixed;
hostile points raise the engine's typed errors naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine import OPS, GradientTape
from engine.derive import derivatives
from engine.derive.derivatives import evaluate, gradient, hessian
from engine.derive.points import batch_points, first_point, run
from engine.derive.query import Query, Result
from engine.errors import EngineError, GraphError, LimitError, ShapeError
from engine.graphs.build import build_graph
from engine.graphs.graph import Graph, Limits
from engine.ops.registry import Case, OpDef
from tests.engine.op_cases import op_cases, rng_for
from tests.engine.seed_graph import SEED
from tests.gradcheck import sample_inputs

# How each input of the op under test gets its value: "point" (a variable named in the
# points), "shared" (a variable with one value for all points: a source, so batched by
# broadcasting) or "const" (a constant, left unbatched).
MODES = {
    "points": lambda n: ["point"] * n,
    "shared": lambda n: ["point"] + ["shared"] * (n - 1) if n > 1 else ["shared"],
    "const": lambda n: ["point"] + ["const"] * (n - 1),
    "const-first": lambda n: ["const"] + ["point"] * (n - 1),
}
TOL = {"rtol": 1e-9, "atol": 1e-11}


def _params() -> list:
    out = []
    for p in op_cases():
        op, case = p.values
        for mode in MODES if len(case.shapes) > 1 else ("points", "shared"):
            for size in (1, 3):
                out.append(pytest.param(op, case, mode, size, id=f"{p.id}-{mode}-B{size}"))
    return out


def _setup(op: OpDef, case: Case, mode: str, size: int) -> tuple[Graph, list[dict], Any]:
    """The graph y = op(x0, ...), t = sum(y * y); each point's values; a weight for y."""
    rng = rng_for(op, case, "points")
    samples = [sample_inputs(op, case, rng) for _ in range(size)]
    kinds = MODES[mode](len(case.shapes))
    nodes: list[dict[str, Any]] = [
        {"id": f"x{i}", "op": "constant" if k == "const" else "variable",
         "value": np.asarray(samples[0][i]).tolist()}
        for i, k in enumerate(kinds)
    ]
    nodes += [
        {"id": "y", "op": op.name, "inputs": [f"x{i}" for i in range(len(kinds))],
         "attrs": dict(case.attrs)},
        {"id": "yy", "op": "mul", "inputs": ["y", "y"]},
        {"id": "t", "op": "sum", "inputs": ["yy"]},
    ]
    points = [
        {f"x{i}": np.asarray(s[i]).tolist() for i, k in enumerate(kinds) if k == "point"}
        for s in samples
    ]
    graph = build_graph(nodes)
    shape = derivatives.evaluate(Query(graph, target="y")).outputs["y"].shape
    return graph, points, rng.standard_normal(shape)


def _as_map(points: list[dict]) -> dict[str, np.ndarray] | list[dict]:
    """The same points as one {leaf: array with a leading axis of points}, when it can be."""
    if not points[0]:
        return points
    return {k: np.stack([np.asarray(p[k], dtype=float) for p in points]) for k in points[0]}


def _keys(notes: list) -> set:
    return {(n.reason, n.node, n.source) for n in notes}


def _same(batched: dict, plain: list[dict], b: int) -> None:
    assert batched.keys() == plain[b].keys()
    for k, v in plain[b].items():
        if v is None:
            assert batched[k] is None, k
        else:
            assert batched[k] is not None, k
            np.testing.assert_allclose(batched[k][b], v, err_msg=k, **TOL)


def _check(batched: Result, plain: list[Result], size: int) -> None:
    for b in range(size):
        _same(batched.outputs, [p.outputs for p in plain], b)
        assert batched.outputs[next(iter(batched.outputs))].shape[0] == size
        if plain[0].gradients is not None:
            _same(batched.gradients, [p.gradients for p in plain], b)
        if plain[0].matrix is not None:
            np.testing.assert_allclose(batched.matrix[b], plain[b].matrix, **TOL)
            for si in plain[b].hessian:
                _same(batched.hessian[si], [p.hessian[si] for p in plain], b)
    assert _keys(batched.notes) == set().union(*(_keys(p.notes) for p in plain))


@pytest.mark.parametrize(("op", "case", "mode", "size"), _params())
def test_points_equal_one_run_per_point(op: OpDef, case: Case, mode: str, size: int) -> None:
    graph, points, w = _setup(op, case, mode, size)
    given = points if size == 1 else _as_map(points)
    plain_q = [Query(graph, values=p, target="y", output_gradients={"y": w}) for p in points]
    q = Query(graph, target="y", output_gradients={"y": w})
    _check(evaluate(q, given), [derivatives.evaluate(p) for p in plain_q], size)
    _check(gradient(q, given), [derivatives.gradient(p) for p in plain_q], size)
    hq = [Query(graph, values=p, target="t") for p in points]
    _check(hessian(Query(graph, target="t"), given),
           [derivatives.hessian(p) for p in hq], size)


@pytest.mark.parametrize("op", [pytest.param(op, id=name) for name, op in OPS.items()])
def test_every_op_that_is_not_elementwise_has_a_batch_rule(op: OpDef) -> None:
    elementwise = op.family in ("elementwise", "binary")
    assert (op.batch is None) == elementwise, op.family


def test_points_run_once_not_once_per_point() -> None:
    graph, _, _ = _setup(OPS["matmul"], OPS["matmul"].cases[0], "points", 1)
    entries = []
    for size in (1, 50):
        q = Query(graph)
        prep = batch_points(q, {"x0": np.ones((size, 3)), "x1": np.ones((size, 3))}, ["x0", "x1"])
        with GradientTape() as tape:
            tensors = run(graph, prep)
        assert tensors["t"].shape == (size,)
        entries.append(len(tape.entries))
    assert entries[0] == entries[1]


# ------------------------------------------------------------------ seed example 3

def test_seed_example_3_at_its_point() -> None:
    r = gradient(Query(build_graph(SEED)), [{"x": 2.0, "y": 3.0}])
    assert r.gradients["x"].tolist() == [4.0]
    assert r.gradients["y"].tolist() == [27.0]


def test_seed_example_3_at_many_points_matches_the_formula() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-3, 3, 5000), rng.uniform(-3, 3, 5000)
    q = Query(build_graph(SEED))
    value = evaluate(q, {"x": x, "y": y}).outputs["z"]
    np.testing.assert_allclose(value, x**2 + y**3, rtol=1e-14)
    g = gradient(q, {"x": x, "y": y})
    np.testing.assert_allclose(g.outputs["z"], x**2 + y**3, rtol=1e-14)
    np.testing.assert_allclose(g.gradients["x"], 2 * x, rtol=1e-14)
    np.testing.assert_allclose(g.gradients["y"], 3 * y**2, rtol=1e-14)
    h = hessian(q, {"x": x[:500], "y": y[:500]})
    want = np.zeros((500, 2, 2))
    want[:, 0, 0], want[:, 1, 1] = 2.0, 6 * y[:500]
    np.testing.assert_allclose(h.matrix, want, rtol=1e-13, atol=1e-13)
    assert h.hessian["x"]["y"] is None and h.hessian["y"]["x"] is None


def test_a_shared_value_is_used_at_every_point_and_still_differentiated_per_point() -> None:
    q = Query(build_graph(SEED), values={"y": 2.0})
    r = gradient(q, [{"x": 1.0}, {"x": -1.0}])
    assert r.outputs["z"].tolist() == [9.0, 9.0]
    assert r.gradients["x"].tolist() == [2.0, -2.0]
    assert r.gradients["y"].tolist() == [12.0, 12.0]


def test_first_point_is_the_query_and_result_of_the_first_point() -> None:
    q = Query(build_graph(SEED))
    pts = {"x": [1.0, 3.0], "y": [2.0, 4.0]}
    r = hessian(q, pts)
    assert r.points == 2
    one_q, one = first_point(q, pts, r)
    plain = derivatives.hessian(one_q)
    assert one.points is None
    np.testing.assert_array_equal(one.matrix, plain.matrix)
    assert one.gradients == plain.gradients and one.outputs == plain.outputs
    assert one.hessian["x"]["y"] is None and one.hessian["y"]["y"] == plain.hessian["y"]["y"]


def test_a_leaf_with_a_value_takes_points_of_its_shape() -> None:
    with pytest.raises(ShapeError) as e:  # two scalar points, never one vector point
        gradient(Query(build_graph(SEED)), [{"x": [1.0, 2.0]}])
    assert (e.value.node, e.value.field) == ("x", "points")
    free = build_graph([{"id": "x", "op": "variable"}, {"id": "y", "op": "sum", "inputs": ["x"]}])
    r = gradient(Query(free), [{"x": [1.0, 2.0]}])  # no value of its own: any shape
    assert r.gradients["x"].tolist() == [[1.0, 1.0]]


def test_list_and_map_forms_agree() -> None:
    q = Query(build_graph(SEED))
    a = gradient(q, [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}])
    b = gradient(q, {"x": [1.0, 3.0], "y": np.array([2.0, 4.0])})
    for k in ("x", "y"):
        np.testing.assert_array_equal(a.gradients[k], b.gradients[k])


# ------------------------------------------------------------------ query options


def _graph(*nodes: dict) -> Graph:
    return build_graph(list(nodes))


def test_output_gradients_apply_to_every_point() -> None:
    g = _graph({"id": "x", "op": "variable", "value": [1.0, 2.0]},
               {"id": "y", "op": "mul", "inputs": ["x", "x"]})
    q = Query(g, output_gradients={"y": [1.0, -1.0]})
    r = gradient(q, {"x": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]})
    np.testing.assert_array_equal(r.gradients["x"], [[2.0, -4.0], [6.0, -8.0], [10.0, -12.0]])
    with pytest.raises(ShapeError) as e:
        gradient(Query(g, output_gradients={"y": [1.0]}), {"x": [[1.0, 2.0]]})
    assert e.value.field == "output_gradients"


def test_unconnected_and_unwatched_sources_give_the_plain_notes() -> None:
    g = _graph({"id": "x", "op": "variable", "value": 1.0},
               {"id": "u", "op": "variable", "value": 1.0},
               {"id": "c", "op": "constant", "value": 2.0},
               {"id": "y", "op": "mul", "inputs": ["x", "c"]})
    q = Query(g, sources=["x", "u", "c"])
    r = gradient(q, {"x": [1.0, 2.0]})
    assert r.gradients["u"] is None and r.gradients["c"] is None
    plain = derivatives.gradient(Query(g, values={"x": 1.0}, sources=["x", "u", "c"]))
    assert r.notes == plain.notes
    assert {(n.reason, n.source) for n in r.notes} == {("not_watched", "u"), ("not_watched", "c")}
    z = gradient(Query(g, sources=["u"], unconnected_gradients="zero"), {"x": [1.0, 2.0]})
    assert z.gradients["u"].tolist() == [0.0, 0.0]
    w = gradient(Query(g, watch=["c"], sources=["c"]), {"x": [1.0, 2.0]})
    assert w.gradients["c"].tolist() == [1.0, 2.0]


def test_a_source_that_is_not_a_leaf_gets_its_gradient_per_point() -> None:
    # s reads only a watched constant no point changes: it is repeated for every point
    # so that each point gets its own d y / d s, not their sum
    g = _graph({"id": "c", "op": "constant", "value": 3.0},
               {"id": "x", "op": "variable", "value": 1.0},
               {"id": "s", "op": "sin", "inputs": ["c"]},
               {"id": "y", "op": "mul", "inputs": ["s", "x"]})
    r = gradient(Query(g, watch=["c"], sources=["s", "x"]), {"x": [1.0, 2.0, 4.0]})
    np.testing.assert_allclose(r.gradients["s"], [1.0, 2.0, 4.0])
    np.testing.assert_allclose(r.gradients["x"], np.full(3, np.sin(3.0)))
    unwatched = gradient(Query(g, sources=["s"]), {"x": [1.0, 2.0]})
    assert unwatched.gradients["s"] is None  # as the plain path: c is not watched


def test_a_target_no_point_changes_is_repeated_for_every_point() -> None:
    g = _graph({"id": "x", "op": "variable", "value": 1.0},
               {"id": "c", "op": "constant", "value": [1.0, 2.0]},
               {"id": "k", "op": "exp", "inputs": ["c"]},
               {"id": "y", "op": "mul", "inputs": ["x", "k"]})
    r = evaluate(Query(g, target=["k", "y"]), {"x": [1.0, 2.0]})
    np.testing.assert_allclose(r.outputs["k"], np.exp([[1.0, 2.0], [1.0, 2.0]]))
    np.testing.assert_allclose(r.outputs["y"], [np.exp([1.0, 2.0]), 2 * np.exp([1.0, 2.0])])


def test_notes_name_the_nodes_where_some_point_goes_wrong() -> None:
    g = _graph({"id": "x", "op": "variable", "value": 1.0},
               {"id": "l", "op": "log", "inputs": ["x"]},
               {"id": "r", "op": "relu", "inputs": ["x"]},
               {"id": "y", "op": "add", "inputs": ["l", "r"]})
    r = gradient(Query(g), {"x": [1.0, -1.0, 0.0]})
    got = {(n.reason, n.node, n.source) for n in r.notes}
    assert got == {("non_finite", "l", None), ("kink", "r", None), ("non_finite", None, "x")}
    kink = next(n for n in r.notes if n.reason == "kink")
    assert kink.detail.endswith("(at point 2 of 3)")  # relu's kink at x = 0, the third
    log = next(n for n in r.notes if n.node == "l")
    assert log.detail.endswith("(at points 1, 2 of 3)")  # log(-1) and log(0)
    grad = next(n for n in r.notes if n.source == "x")
    assert grad.detail.endswith("(at point 2 of 3)")  # 1/x at 0


def test_kinks_are_counted_per_point_when_a_batched_scalar_meets_a_shared_vector() -> None:
    g = _graph({"id": "x", "op": "variable", "value": 1.0},
               {"id": "c", "op": "constant", "value": [0.0, 2.0]},
               {"id": "m", "op": "maximum", "inputs": ["x", "c"]})
    r = evaluate(Query(g), {"x": [0.0, 1.0, 2.0]})  # ties at the first and last
    kink = next(n for n in r.notes if n.reason == "kink")
    assert kink.node == "m" and kink.detail.endswith("(at points 0, 2 of 3)")


def test_squeeze_never_drops_the_batch_axis_of_one_point() -> None:
    g = _graph({"id": "x", "op": "variable", "value": [[1.0]]},
               {"id": "y", "op": "squeeze", "inputs": ["x"]})
    r = gradient(Query(g), {"x": [[[5.0]]]})
    assert r.outputs["y"].shape == (1,)
    assert r.gradients["x"].shape == (1, 1, 1)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_a_batched_vector_stays_a_vector_in_matmul_and_solve(size: int) -> None:
    rng = np.random.default_rng(size)
    a = rng.uniform(-1, 1, (size, size, size)) + size * np.eye(size)
    v = rng.uniform(-1, 1, (size, size))
    g = _graph({"id": "a", "op": "variable", "value": a[0].tolist()},
               {"id": "v", "op": "variable", "value": v[0].tolist()},
               {"id": "m", "op": "matmul", "inputs": ["a", "v"]},
               {"id": "s", "op": "solve", "inputs": ["a", "v"]},
               {"id": "d", "op": "matmul", "inputs": ["v", "v"]})
    r = evaluate(Query(g, target=["m", "s", "d"]), {"a": a, "v": v})
    np.testing.assert_allclose(r.outputs["m"], np.einsum("bij,bj->bi", a, v), rtol=1e-12)
    np.testing.assert_allclose(r.outputs["s"], [np.linalg.solve(a[b], v[b]) for b in
                                                range(size)], rtol=1e-12)
    np.testing.assert_allclose(r.outputs["d"], np.sum(v * v, axis=1), rtol=1e-12)


# ------------------------------------------------------------------ hostile points


def _raises(kind: type[EngineError], points: Any, field: str, node: str | None = None,
            limits: Limits | None = None) -> None:
    q = Query(build_graph(SEED, limits or Limits()), limits=limits or Limits())
    for fn in (evaluate, gradient, hessian):
        with pytest.raises(kind) as e:
            fn(q, points)
        assert e.value.field == field, (fn.__name__, e.value)
        if node is not None:
            assert e.value.node == node


@pytest.mark.parametrize(
    ("kind", "points", "field", "node"),
    [
        (GraphError, [], "points", None),
        (GraphError, {}, "points", None),
        (GraphError, {"x": []}, "points", None),
        (GraphError, "x", "points", None),
        (GraphError, [1.0], "points[0]", None),
        (GraphError, [{"x": 1.0}, {"z": 1.0}], "points[1]", "z"),
        (GraphError, [{"x": 1.0}, {"x": 1.0, "x2": 1.0}], "points[1]", "x2"),
        (GraphError, [{"x": 1.0, "y": 1.0}, {"x": 2.0}], "points[1]", "y"),
        (GraphError, {"nope": [1.0]}, "points", "nope"),
        (GraphError, {"z": [1.0]}, "points", "z"),
        (GraphError, [{"x": "a"}], "points[0]", "x"),
        (GraphError, {"x": [[1.0], [1.0, 2.0]]}, "points", "x"),
        (ShapeError, [{"x": 1.0}, {"x": [1.0, 2.0]}], "points[1]", "x"),
        (ShapeError, {"x": [1.0, 2.0], "y": [1.0, 2.0, 3.0]}, "points", "y"),
        (ShapeError, {"x": 1.0}, "points", "x"),
    ],
)
def test_hostile_points_raise_typed_errors_naming_the_field(
    kind: type[EngineError], points: Any, field: str, node: str | None
) -> None:
    _raises(kind, points, field, node)


def test_too_many_points_is_a_limit_error() -> None:
    small = Limits(max_points=10)
    _raises(LimitError, [{"x": 1.0}] * 11, "points", limits=small)
    _raises(LimitError, {"x": np.zeros(11)}, "points", limits=small)
    _raises(LimitError, {"x": np.zeros(11)}, "points", limits=Limits(max_elements=10))
    _raises(LimitError, {"x": np.zeros(8)}, "points", limits=Limits(max_total_elements=20))


def test_a_graph_error_still_names_its_own_field() -> None:
    with pytest.raises(GraphError) as e:
        hessian(Query(build_graph(SEED), sources=["z"]), {"x": [1.0]})
    assert e.value.field == "sources"
    g = _graph({"id": "x", "op": "variable", "value": [1.0, 2.0]},
               {"id": "y", "op": "exp", "inputs": ["x"]})
    with pytest.raises(ShapeError) as e:
        hessian(Query(g), {"x": [[1.0, 2.0]]})
    assert e.value.field == "target"
    g = _graph({"id": "x", "op": "variable", "value": [1.0, 2.0]},
               {"id": "t", "op": "sum", "inputs": ["x"]})
    with pytest.raises(LimitError) as e:  # 2 points of a 2 x 2 Hessian: 8 entries
        hessian(Query(g, limits=Limits(max_derivative_work=7)), {"x": [[1.0, 2.0]] * 2})
    assert e.value.field == "sources"
    assert hessian(Query(g), {"x": [[1.0, 2.0]] * 2}).matrix.shape == (2, 2, 2)


@pytest.mark.parametrize("ord_", [1, 2, "euclidean", "inf", "fro", 3])
@pytest.mark.parametrize("axis", [None, 1, [0, 1]])
def test_norm_kinks_over_points_are_found_at_once_and_match_point_by_point(ord_, axis):
    """norm's kink mask over a batch (its axes moved past the points axis), not a Python
    step per point: the same points as asking each point alone."""
    from engine.derive.points import kink_mask
    from engine.ops import OPS

    if ord_ == "fro" and axis != [0, 1]:
        return  # fro is a matrix norm: two axes
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(50, 3, 4))
    xs[7] = 0.0
    xs[11, 1] = 0.0
    xs[23, 2, 3] = 0.0
    attrs = OPS["norm"].normalize_attrs({"ord": ord_, "axis": axis})
    got = kink_mask(OPS["norm"], [xs], [True], attrs, 50)
    want = [bool(np.any(OPS["norm"].kink(x, **attrs))) for x in xs]
    assert got.tolist() == want
    assert got[7] and got.sum() >= 1
