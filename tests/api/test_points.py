"""`points`: many values maps in one request, one vectorised run, each point's own answer."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.support import SEED_3, arr, graph, op, post, var

RNG = np.random.default_rng(20261127)


def _seed_points(n: int) -> list[dict[str, float]]:
    xs, ys = RNG.uniform(-3, 3, n), RNG.uniform(-3, 3, n)
    return [{"x": float(x), "y": float(y)} for x, y in zip(xs, ys, strict=True)]


def test_gradients_at_every_point_equal_the_seed_formula(client):
    pts = _seed_points(50)
    body = post(client, "gradient", {**SEED_3, "points": pts, "check": "none"})
    x = np.array([p["x"] for p in pts])
    y = np.array([p["y"] for p in pts])
    assert body["points"] == 50
    np.testing.assert_allclose(arr(body["outputs"]["z"]), x**2 + y**3, rtol=1e-13)
    np.testing.assert_allclose(arr(body["gradients"]["x"]), 2 * x, rtol=1e-13)
    np.testing.assert_allclose(arr(body["gradients"]["y"]), 3 * y**2, rtol=1e-13)


def test_a_map_of_arrays_equals_a_list_of_maps(client):
    pts = _seed_points(7)
    columns = {"x": [p["x"] for p in pts], "y": [p["y"] for p in pts]}
    listed = post(client, "gradient", {**SEED_3, "points": pts, "check": "none"})
    stacked = post(client, "gradient", {**SEED_3, "points": columns, "check": "none"})
    assert listed["gradients"] == stacked["gradients"]
    assert listed["outputs"] == stacked["outputs"]


TENSOR = graph(
    var("x", [0.5, -1.0, 2.0]),
    var("w", [[1.0, 0.5], [2.0, -1.0], [0.1, 0.3]]),
    op("h", "tanh", "x"),
    op("m", "matmul", "h", "w"),
    op("e", "exp", "m"),
    op("s", "sum", "e"),
)


@pytest.mark.parametrize("kind", ["evaluate", "gradient", "hessian"])
def test_batched_points_equal_one_request_per_point(client, kind):
    xs = RNG.uniform(-1, 1, (4, 3))
    batched = post(client, kind, {**TENSOR, "points": {"x": xs.tolist()}, "check": "none"})
    for b, x in enumerate(xs):
        single = post(client, kind, {**TENSOR, "values": {"x": x.tolist()}, "check": "none"})
        for key in ("outputs", "gradients", "hessian"):
            for name, value in (single.get(key) or {}).items():
                got, want = batched[key][name], value
                if key == "hessian":
                    for other, block in want.items():
                        np.testing.assert_allclose(arr(got[other])[b], arr(block), rtol=1e-12,
                                                   atol=1e-14)
                else:
                    np.testing.assert_allclose(arr(got)[b], arr(want), rtol=1e-12, atol=1e-14)
        if kind == "hessian":
            np.testing.assert_allclose(arr(batched["matrix"])[b], arr(single["matrix"]),
                                       rtol=1e-12, atol=1e-14)


def test_points_are_cross_checked_on_the_first_point(client):
    body = post(client, "gradient", {**SEED_3, "points": _seed_points(3), "check": "sympy"})
    assert body["check"]["method"] == "sympy"
    assert body["check"]["status"] == "agree"


def test_the_seed_at_ten_thousand_points(client):
    body = post(client, "gradient", {**SEED_3, "points": _seed_points(10_000), "check": "auto"})
    assert body["points"] == 10_000
    assert len(body["gradients"]["x"]) == 10_000
    assert body["check"]["status"] == "agree"


@pytest.mark.parametrize(
    ("points", "field_word"),
    [
        ([], "points"),
        ([{"z": 1.0}], "z"),  # an op node, not a leaf
        ([{"nope": 1.0}], "nope"),
        ([{"x": 1.0}, {"y": 1.0}], "points"),  # points naming different leaves
        ({"x": [1.0, 2.0], "y": [1.0, 2.0, 3.0]}, "points"),  # two batch sizes
        ({"x": 1.0}, "points"),  # no batch axis
        ([{"x": [1.0, 2.0]}], "x"),  # a scalar leaf given a vector
    ],
)
def test_bad_points_are_422_problems_naming_the_field(client, points, field_word):
    r = client.post("/v1/gradient", json={**SEED_3, "points": points, "check": "none"})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field_word in problem["detail"] or field_word in str(problem.get("node"))
    assert post(client, "gradient", {**SEED_3, "check": "none"})["gradients"]["x"] == 4.0


def test_too_many_points_is_a_413(make_client):
    client = make_client(max_points=5)
    r = client.post("/v1/gradient", json={**SEED_3, "points": _seed_points(6), "check": "none"})
    assert r.status_code == 413, r.text
    assert "points" in r.json()["detail"]


def test_the_jacobian_and_derivative_endpoints_refuse_points(client):
    for kind, extra in (("jacobian", {}), ("derivative", {"order": 2})):
        r = client.post(f"/v1/{kind}", json={**SEED_3, **extra, "points": _seed_points(2)})
        assert r.status_code == 422, r.text
        assert "points" in r.json()["detail"]


def test_points_with_a_coo_hessian_are_a_422_naming_format(client):
    r = client.post("/v1/hessian", json={**SEED_3, "points": _seed_points(2), "format": "coo"})
    assert r.status_code == 422, r.text
    assert "format" in r.json()["detail"]


HOSTILE_POINTS = [
    [{}], {}, {"x": []}, {"x": [], "y": []}, [{"x": 1}] * 3, {"x": [1, 2], "y": 3},
    [{"x": 1, "y": 2}, {"x": 1}], {"z": [1]}, [[1, 2]], [1, 2], "abc", [{"x": [[1]]}],
    {"x": [[1], [2]]}, {"x": ["Infinity", 1], "y": [1, 1]}, [{"x": 1e308, "y": 1e308}],
]


@pytest.mark.parametrize("kind", ["evaluate", "gradient", "hessian"])
@pytest.mark.parametrize("extra", [
    {}, {"trace": True}, {"output_gradients": {"z": 2.0}}, {"sources": ["x2"]},
    {"watch": ["x"], "watch_accessed_variables": False},
])
def test_hostile_points_never_fail_the_server(make_client, kind, extra):
    client = make_client(raise_server_exceptions=False)
    for points in HOSTILE_POINTS:
        r = client.post(f"/v1/{kind}", json={**SEED_3, **extra, "points": points, "check": "none"})
        assert r.status_code < 500, (points, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
    assert post(client, "gradient", {**SEED_3, "check": "none"})["gradients"]["y"] == 27.0
