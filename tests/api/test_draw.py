"""POST /v1/draw: the recorded tape laid out by Graphviz, parsed as XML and read back."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from app import drawing
from app.wire import values
from app.wire.pictures import DRAW_MAX_EDGES, DRAW_MAX_NODES
from tests.api.support import SEED_3, graph, op, var

SVG_NS = "{http://www.w3.org/2000/svg}"
RED = "#dc2626"

pytestmark = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)


def nodes_of(response) -> dict[str, ET.Element]:
    """Each drawn node by the first line of its label (the node id)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(response.content)
    found = {}
    for g in root.iter(f"{SVG_NS}g"):
        if "node" in (g.get("class") or "").split():
            lines = [t.text or "" for t in g.iter(f"{SVG_NS}text")]
            found[lines[0]] = g
    return found


def lines(g: ET.Element) -> list[str]:
    return [t.text or "" for t in g.iter(f"{SVG_NS}text")]


def red(g: ET.Element) -> bool:
    return any(e.get("stroke") == RED for e in g)


def test_the_seed_example_shows_every_node_with_values_and_adjoints(client):
    found = nodes_of(client.post("/v1/draw", json=SEED_3))
    assert set(found) == {"x", "y", "x2", "y3", "z", "x2.inputs[1]", "y3.inputs[1]"}
    assert lines(found["y3.inputs[1]"]) == ["y3.inputs[1]", "inline constant", "value 3"]
    assert lines(found["x2"]) == ["x2", "pow · scalar", "value 4", "adjoint 1"]
    assert lines(found["z"]) == ["z", "add · scalar", "value 31", "adjoint 1"]
    assert "adjoint 4" in lines(found["x"]) and "adjoint 27" in lines(found["y"])
    assert "value 3" in lines(found["y"])
    on_path = {"x", "y", "x2", "y3", "z"}  # the inline exponents lead to no source
    assert {name for name, g in found.items() if red(g)} == on_path


def test_edges_follow_the_inputs_and_the_path_is_highlighted(client):
    body = graph(
        var("x", 2.0),
        var("y", 1.0),
        op("u", "sin", "y"),
        op("t", "mul", "x", "x"),
        op("z", "add", "t", "u"),
        sources=["x"],
        watch_accessed_variables=True,
    )
    r = client.post("/v1/draw", json=body)
    found = nodes_of(r)
    root = ET.fromstring(r.content)
    edges = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "edge"]
    assert len(edges) == 5  # x->t twice, t->z, y->u, u->z
    hot = [e for e in edges if any(p.get("stroke") == RED for p in e)]
    assert len(hot) == 3  # x->t (twice) and t->z: the path from the source x to z
    assert red(found["t"]) and not red(found["u"]) and not red(found["y"])


def test_a_source_with_a_null_gradient_is_marked_with_its_reason(client):
    body = graph(var("x", 2.0), var("lone", 5.0), op("z", "exp", "x"), sources=["x", "lone"])
    found = nodes_of(client.post("/v1/draw", json=body))
    lone = found["lone"]
    assert "gradient null: unconnected" in lines(lone) or any(
        ln.startswith("gradient null:") for ln in lines(lone)
    )
    assert "source-null" in lone.get("class", "")
    assert any(e.get("stroke-dasharray") for e in lone)


def test_tensors_show_their_shape_and_first_entries(client):
    r = client.post(
        "/v1/draw",
        json={"expression": "sin(v) * 2", "values": {"v": [0, 1, 2, 3, 4]}, "check": "none"},
    )
    found = nodes_of(r)
    sin = next(g for name, g in found.items() if "sin · 5" in lines(g))
    assert lines(sin)[2].startswith("value [0, 0.841471, 0.909297, 0.14112, ...")
    assert lines(sin)[3] == "adjoint [2, 2, 2, 2, ...]"


def test_a_graph_past_the_node_limit_is_a_422_naming_it(client):
    nodes = [var("x0", 1.0)] + [
        op(f"x{i}", "sin", f"x{i - 1}") for i in range(1, DRAW_MAX_NODES + 1)
    ]
    r = client.post("/v1/draw", json=graph(*nodes))
    assert r.status_code == 422
    assert r.json()["type"].endswith("compute-limit")
    assert "DRAW_MAX_NODES" in r.json()["detail"] and str(DRAW_MAX_NODES) in r.json()["detail"]
    long = " + ".join(["x"] * (DRAW_MAX_NODES + 1))
    r = client.post("/v1/draw", json={"expression": long, "values": {"x": 1}})
    assert r.status_code == 422 and "DRAW_MAX_NODES" in r.json()["detail"]


def dense(n: int) -> list[dict]:
    """Two leaves, then ``n`` add_n nodes each reading every node before it: the edges
    span many ranks, Graphviz's costliest layout for their count."""
    nodes = [var("x0", 0.5), var("x1", 1.5)]
    for k in range(n):
        nodes.append(op(f"a{k}", "add_n", *[m["id"] for m in nodes]))
    return nodes


def test_a_graph_past_the_edge_limit_is_a_422_naming_it_before_graphviz_runs(
    client, monkeypatch
):
    nodes = dense(24)  # 26 nodes, 324 inputs
    assert len(nodes) <= DRAW_MAX_NODES < sum(len(n["inputs"]) for n in nodes if "inputs" in n)
    registered = client.post("/v1/graphs", json={"graph": {"nodes": nodes}}).json()
    with monkeypatch.context() as m:
        m.setattr(drawing, "_dot", lambda *_: pytest.fail("Graphviz ran past the edge limit"))
        for body in (graph(*nodes), {"graph_id": registered["graph_id"]}):
            r = client.post("/v1/draw", json=body)
            assert r.status_code == 422 and r.json()["type"].endswith("compute-limit")
            detail = r.json()["detail"]
            assert "324 inputs" in detail and "DRAW_MAX_EDGES" in detail
            assert str(DRAW_MAX_EDGES) in detail
    nodes_of(client.post("/v1/draw", json=graph(*dense(23))))  # 299 inputs: drawn


def test_points_are_refused_naming_the_field(client):
    r = client.post("/v1/draw", json={"expression": "x**2", "points": [{"x": 1}, {"x": 2}]})
    assert r.status_code == 422 and r.json()["field"] == "points"


@pytest.mark.parametrize(
    "hostile",
    [
        'a"b',
        "}",
        "<script>alert(1)</script>",
        "x\ny",
        "a\\Nb",
        "-> n0",
        "]; n1 [label=x",
    ],
)
def test_hostile_ids_never_reach_the_picture_unescaped(client, hostile):
    r = client.post("/v1/draw", json=graph(var(hostile, 1.0), op("z", "exp", hostile)))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    r = client.post("/v1/draw", json={**SEED_3, "sources": [hostile]})
    assert r.status_code == 422 and r.json()["field"] == "sources"


@pytest.mark.parametrize(
    "hostile",
    [
        'a"b',
        "}",
        "<script>alert(1)</script>",
        "x\ny\r\nz",
        "a\\Nb\\G",
        "-> n0 [label=x]",
        "&amp; ' \" <!-- -->",
    ],
)
def test_dot_and_svg_escaping_keeps_any_label_literal(hostile):
    answer = {
        "gradients": {hostile: 2.0, "lone": None},
        "notes": [{"source": "lone", "reason": "unconnected", "detail": "..."}],
        "trace": {
            "entries": [
                {
                    "index": 0,
                    "op": "exp",
                    "inputs": [hostile],
                    "output": "z",
                    "shape": [],
                    "value": 1.0,
                    "grad": 1.0,
                    "attrs": {},
                }
            ]
        },
    }
    svg = drawing.render(drawing.to_dot(answer, {hostile: ("variable", 0.0)}, "z"))
    root = ET.fromstring(svg)  # well-formed XML whatever the label held
    assert not list(root.iter(f"{SVG_NS}script"))
    shown = [t.text or "" for t in root.iter(f"{SVG_NS}text")]
    for part in hostile.replace("\r\n", "\n").split("\n"):
        assert part in shown
    assert "gradient null: unconnected" in shown
    assert len([g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "edge"]) == 1


def test_unicode_and_dot_syntax_in_ids_are_drawn_as_text(client):
    ids = ["a:b", "_x.y-z", "node"]  # a DOT port, DOT-ish punctuation, a DOT keyword
    body = graph(var(ids[0], 1.0), var(ids[1], 2.0), op(ids[2], "mul", ids[0], ids[1]))
    found = nodes_of(client.post("/v1/draw", json=body))
    assert set(found) == set(ids)
    assert "adjoint 2" in lines(found["a:b"]) and "adjoint 1" in lines(found["_x.y-z"])


def test_large_tensors_are_labelled_by_their_first_entries_only(client):
    nodes = [var("x", 0.5), op("b", "broadcast_to", "x", shape=[500, 1000]), op("s", "sin", "b")]
    r = client.post("/v1/draw", json={**graph(*nodes, op("t", "sum", "s")), "check": "none"})
    found = nodes_of(r)
    assert lines(found["b"])[1:3] == ["broadcast_to · 500×1000", "value [0.5, 0.5, 0.5, 0.5, ...]"]
    assert lines(found["s"])[3] == "adjoint [1, 1, 1, 1, ...]"
    assert len(r.content) < 20_000
    # one step larger and the gradient's own cost limit refuses it, before anything runs
    nodes[1] = op("b", "broadcast_to", "x", shape=[1000, 1000])
    r = client.post("/v1/draw", json={**graph(*nodes, op("t", "sum", "s")), "check": "none"})
    assert r.status_code == 422 and r.json()["type"].endswith("cost-limit")


def test_a_gradient_written_in_slabs_is_drawn_by_its_first_entries(client, monkeypatch):
    """A large array is a ``Written`` text in the answer (app.wire.written): the picture
    still reads its numbers (pieces of 4 here, so that a small gradient is one)."""
    monkeypatch.setattr(values, "PIECE_ELEMENTS", 4)
    monkeypatch.setattr(values, "SLAB_MIN_TEXT", 0)
    x = var("x", [0.0, 1.0, 2.0, 4.0, 8.0, 16.0])
    body = {**graph(x, op("l", "log", "x"), op("f", "sum", "l")), "check": "none"}
    found = nodes_of(client.post("/v1/draw", json=body))
    assert "adjoint [Infinity, 1, 0.5, 0.25, ...]" in lines(found["x"])


@pytest.mark.parametrize("array", [
    np.sin(np.linspace(0.0, 1.0, 500_000)).reshape(500, 1000),  # slabs of rows
    np.log(np.linspace(-1.0, 1.0, 200_000)),  # NaN strings, then numbers
    np.full((2, 1, 70_000), -np.inf),  # a row longer than a slab
    np.linspace(-1e-300, 1e300, 400_000).reshape(4, 100, 1000),  # exponents
])
def test_a_written_array_is_labelled_from_its_first_entries_without_reading_the_rest(
        array, monkeypatch):
    """A large array reaches the drawing as its written text (app.wire.written): its label
    is the codec's, read off the first entries, never the whole text parsed (a 500 x 1,000
    array's took 39 ms and 141 MB)."""
    written = values.encode_for_response(array)
    assert isinstance(written, drawing.Written)
    parsed: list[int] = []
    loads = drawing.orjson.loads
    monkeypatch.setattr(drawing.orjson, "loads", lambda text: parsed.append(len(text))
                        or loads(text))
    assert drawing.show(written) == drawing.show(values.encode(array))
    assert len(parsed) == 5 and max(parsed) <= 32


def test_a_replica_without_graphviz_says_so_with_a_503(client, monkeypatch):
    monkeypatch.setattr(drawing.shutil, "which", lambda _name: None)
    r = client.post("/v1/draw", json=SEED_3)
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert "Graphviz" in r.json()["detail"] and r.headers["retry-after"] == "60"


def test_an_svg_past_its_byte_limit_is_a_422_not_a_500(client, monkeypatch):
    monkeypatch.setattr(drawing, "MAX_SVG_BYTES", 1024)  # the seed's drawing is several kB
    r = client.post("/v1/draw", json=SEED_3)
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("compute-limit")
    assert "1024" in r.json()["detail"]
