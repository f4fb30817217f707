"""POST /v1/plot: f and its derivatives as SVG, parsed as XML and read for what it shows."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from app.wire.pictures import PLOT_MAX_ORDER, PLOT_MAX_SAMPLES
from engine.derive.query import Query
from engine.derive.series import series
from engine.graphs.expression import parse_expression
from engine.graphs.graph import Limits
from tests.api.support import broadcast_sines, graph, op, var

SVG_NS = "{http://www.w3.org/2000/svg}"


def plot(client, **body):
    return client.post("/v1/plot", json=body)


def svg_of(response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    return ET.fromstring(response.content)


def curves(root: ET.Element) -> dict[str, ET.Element]:
    """The plotted curves by group id (``curve-0`` is f, ``curve-j`` the j-th derivative)."""
    return {
        g.get("id"): g
        for g in root.iter(f"{SVG_NS}g")
        if re.fullmatch(r"curve-\d", g.get("id") or "")
    }


def vertices(group: ET.Element) -> int:
    """Points of the group's line: one command letter (M or L) per vertex."""
    path = group.find(f"{SVG_NS}path")
    assert path is not None
    return len(re.findall(r"[ML]", path.get("d", "")))


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def test_one_curve_per_order_labelled_in_the_legend(client):
    root = svg_of(
        plot(client, expression="x**3 - 3*x", variable="x", range=[-2, 2], order=3, samples=101)
    )
    found = curves(root)
    assert sorted(found) == ["curve-0", "curve-1", "curve-2", "curve-3"]
    assert all(vertices(g) == 101 for g in found.values())
    labels = texts(root)
    for label in ("f(x)", "f′(x)", "f″(x)", "f‴(x)"):
        assert label in labels
    assert "x" in labels  # the horizontal axis names the variable
    assert "x**3 - 3*x" in labels  # the title is the expression


def test_the_default_order_is_one_derivative(client):
    root = svg_of(plot(client, expression="x**2", variable="x", range=[0, 1]))
    assert sorted(curves(root)) == ["curve-0", "curve-1"]


def test_the_engine_series_matches_the_closed_form_at_every_sample():
    g = parse_expression("x**3 - 3*x + sin(y)", Limits())
    xs = np.linspace(-2, 2, 9)
    s = series(Query(graph=g, values={"y": 0.5}), "x", xs, 3)
    assert np.allclose(s.curves[0], xs**3 - 3 * xs + np.sin(0.5))
    assert np.allclose(s.curves[1], 3 * xs**2 - 3)
    assert np.allclose(s.curves[2], 6 * xs)
    assert np.allclose(s.curves[3], 6.0)


def test_a_function_free_of_the_variable_has_zero_derivatives():
    g = parse_expression("x * 0 + y**2", Limits())
    s = series(Query(graph=g, values={"y": 3.0}), "x", np.linspace(0, 1, 5), 2)
    assert np.allclose(s.curves[0], 9.0)
    assert np.allclose(s.curves[1], 0.0) and np.allclose(s.curves[2], 0.0)


def test_kinks_are_marked_at_the_samples_that_meet_them(client):
    xs = np.linspace(-1, 1, 21)
    s = series(Query(graph=parse_expression("abs(x) * y", Limits()), values={"y": 2.0}), "x", xs, 1)
    assert list(np.flatnonzero(s.kinks)) == [10]  # x = 0, the 11th of 21 samples
    root = svg_of(
        plot(
            client,
            expression="abs(x) * y",
            variable="x",
            range=[-1, 1],
            samples=21,
            values={"y": 2},
        )
    )
    kinks = [g for g in root.iter(f"{SVG_NS}g") if g.get("id") == "kinks"]
    assert len(kinks) == 1
    assert any(t.startswith("kink (") for t in texts(root))


def test_non_finite_stretches_are_shaded_and_left_out_of_the_curves(client):
    samples = 41  # [-1, 3]: x <= 0 at 11 samples, where log is -inf or nan
    root = svg_of(plot(client, expression="log(x)", variable="x", range=[-1, 3], samples=samples))
    shaded = [g for g in root.iter(f"{SVG_NS}g") if (g.get("id") or "").startswith("non-finite")]
    assert len(shaded) == 1
    finite = int(np.count_nonzero(np.linspace(-1, 3, samples) > 0))
    assert vertices(curves(root)["curve-0"]) == finite
    assert any(t.startswith("not finite") for t in texts(root))  # the legend names the shading


def test_a_graph_and_its_target_are_plotted_too(client):
    body = graph(var("x", 1.0), var("w", 3.0), op("p", "mul", "x", "w"), op("q", "sin", "p"))
    root = svg_of(plot(client, **body, variable="x", range=[0, 1], target="p", samples=11))
    assert "p and its derivatives" in texts(root)
    assert vertices(curves(root)["curve-1"]) == 11


def test_svg_is_answered_whatever_accept_asks_and_errors_stay_problem_json(client):
    r = client.post(
        "/v1/plot",
        json={"expression": "x", "variable": "x", "range": [0, 1]},
        headers={"Accept": "application/json"},
    )
    assert r.headers["content-type"] == "image/svg+xml"
    bad = client.post(
        "/v1/plot",
        json={"expression": "x", "variable": "x", "range": [1, 0]},
        headers={"Accept": "image/svg+xml"},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"samples": PLOT_MAX_SAMPLES + 1}, "samples"),
        ({"samples": 1}, "samples"),
        ({"order": PLOT_MAX_ORDER + 1}, "order"),
        ({"range": [1, 1]}, "range"),
        ({"range": ["NaN", 1]}, "range"),
        ({"range": [0, "Infinity"]}, "range"),
        ({"range": [0]}, "range"),
        ({"variable": "x", "expression": None}, None),
    ],
)
def test_bad_requests_are_problems_naming_the_field(client, change, field):
    body = {"expression": "x**2", "variable": "x", "range": [0, 1], **change}
    r = client.post("/v1/plot", json={k: v for k, v in body.items() if v is not None})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert any(field in ".".join(map(str, e["loc"])) for e in r.json()["errors"])


@pytest.mark.parametrize(
    ("body", "node", "slug"),
    [
        ({"expression": "x + y", "variable": "z"}, "z", "invalid-graph"),
        ({"expression": "sin(x)", "variable": "_1"}, "_1", "invalid-graph"),
    ],
)
def test_a_variable_that_is_no_leaf_is_named(client, body, node, slug):
    r = client.post("/v1/plot", json={**body, "range": [0, 1], "values": {"y": 1}})
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith(slug)
    assert r.json()["node"] == node


def test_a_tensor_target_or_variable_is_refused(client):
    r = plot(client, expression="x * y", variable="x", range=[0, 1], values={"y": [1, 2]})
    assert r.status_code == 422 and r.json()["field"] == "target"
    r = plot(client, **graph(var("v", [1.0, 2.0]), op("s", "sum", "v")), variable="v", range=[0, 1])
    assert r.status_code == 422 and r.json()["node"] == "v"


def test_a_plot_whose_graph_costs_too_much_per_sample_is_refused_before_it_runs(client):
    body = graph(*broadcast_sines(20, [1000, 1000]))
    r = client.post(
        "/v1/plot",
        json={
            **body,
            "variable": "x",
            "range": [0, 1],
            "samples": PLOT_MAX_SAMPLES,
            "order": PLOT_MAX_ORDER,
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["type"].rsplit("/", 1)[1] in ("cost-limit", "compute-limit")
    assert client.get("/healthz").status_code == 200


def test_the_largest_plot_allowed_is_bounded_in_bytes(client):
    r = plot(
        client,
        expression="sin(3*x) * exp(-x**2 / 4)",
        variable="x",
        range=[-6, 6],
        samples=PLOT_MAX_SAMPLES,
        order=PLOT_MAX_ORDER,
    )
    root = svg_of(r)
    assert len(curves(root)) == PLOT_MAX_ORDER + 1
    assert len(r.content) < 1_000_000


def test_both_svg_endpoints_are_documented_with_their_media_type_and_examples(client):
    paths = client.app.openapi()["paths"]
    for path, example in (("/v1/plot", "cubic"), ("/v1/draw", "seed-3")):
        op = paths[path]["post"]
        assert list(op["responses"]["200"]["content"]) == ["image/svg+xml"]
        assert op["responses"]["200"]["content"]["image/svg+xml"]["example"].startswith("<svg")
        assert "application/problem+json" in op["responses"]["422"]["content"]
        assert example in op["requestBody"]["content"]["application/json"]["examples"]
    draw_examples = paths["/v1/draw"]["post"]["requestBody"]["content"]["application/json"]
    assert all("points" not in e["value"] for e in draw_examples["examples"].values())


def test_a_registered_graph_is_plotted_by_its_id(client):
    registered = client.post("/v1/graphs", json={"expression": "x**2 * w"})
    assert registered.status_code in (200, 201), registered.text
    gid = registered.json()["graph_id"]
    root = svg_of(
        plot(client, graph_id=gid, variable="x", range=[0, 2], values={"w": 3}, samples=5)
    )
    assert sorted(curves(root)) == ["curve-0", "curve-1"]
    assert any(gid in t for t in texts(root))  # the title names the graph


def test_the_event_loop_answers_while_a_plot_renders(client):
    import threading
    import time

    done: dict[str, float] = {}

    def big_plot() -> None:
        r = plot(
            client,
            expression="sin(x) * cos(3*x)",
            variable="x",
            range=[-9, 9],
            samples=PLOT_MAX_SAMPLES,
            order=PLOT_MAX_ORDER,
        )
        assert r.status_code == 200
        done["plot"] = time.monotonic()

    worker = threading.Thread(target=big_plot)
    worker.start()
    time.sleep(0.05)
    assert client.get("/healthz").status_code == 200
    done["healthz"] = time.monotonic()
    worker.join(timeout=60)
    assert done["healthz"] < done["plot"]  # /healthz did not wait for the render
