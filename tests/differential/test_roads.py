"""Every road to a derivative agrees with every other, and with finite differences.

Each property draws a small random graph (``graphs``) and a request, asks for the same
quantity along every road the service offers, and compares them: HTTP and the engine
library number for number; roads that compute differently within ``ROAD_RTOL``; each
against central differences of the ops' numpy forwards (``FD_*``). Each test has a
quick version (the loaded profile) and a ``-m slow`` one on the "differential-long"
profile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import OPS, GradientTape
from engine.check import verify
from engine.derive.kinds import KINDS
from engine.graphs.build import build_graph
from engine.graphs.expression import callable_ops
from engine.tape import backprop, transposed
from tests.differential.graphs import Drawn, fd_gradient, fd_hessian, graphs, scalar_fn
from tests.differential.roads import (
    FD2_ATOL,
    FD2_RTOL,
    FD_ATOL,
    FD_RTOL,
    active,
    close,
    coo_dense,
    http,
    library,
    library_query,
    listed_sources,
    matrix_from_blocks,
    options,
    same,
    sizes_of,
    target_list,
    value,
    watched,
    weight,
)

Check = Callable[[TestClient, st.DataObject], None]


def quick_and_long(check: Check) -> tuple[Callable[..., None], Callable[..., None]]:
    """The property twice: on the loaded profile, and on "differential-long" for -m slow."""

    def quick(client: TestClient, data: st.DataObject) -> None:
        check(client, data)

    def long(client: TestClient, data: st.DataObject) -> None:
        check(client, data)

    quick.__doc__ = long.__doc__ = check.__doc__
    long_test = settings(settings.get_profile("differential-long"))(given(data=st.data())(long))
    return (given(data=st.data())(quick),
            pytest.mark.slow(pytest.mark.timeout(3600)(long_test)))


def scalar_nodes(g: Drawn) -> list[str]:
    return [n["id"] for n in g.nodes if g.shape(n["id"]) == ()]


def occurrences(targets: list[str], t: str) -> int:
    return targets.count(t)


# ------------------------------------------------------------------ 1. first derivatives


def _gradient_roads(client: TestClient, data: st.DataObject) -> None:
    """gradient (HTTP, library) == Jacobian summed over target elements (weighted) ==
    Hessian's gradients == derivative order 1 == finite differences."""
    g = data.draw(graphs(), label="graph")
    body = data.draw(options(g, [*g.outputs, *scalar_nodes(g)]), label="request")
    targets, sources = target_list(body), listed_sources(g, body)
    zero = body["unconnected_gradients"] == "zero"
    got = http(client, "gradient", body)
    lib = library("gradient", body)
    assert lib.gradients is not None
    assert list(got["gradients"]) == list(dict.fromkeys(sources))
    for t in dict.fromkeys(targets):
        close(value(got["outputs"][t]), g.values[t], what=f"output {t} vs the numpy forward")
    grads = {s: value(got["gradients"][s]) for s in sources}
    for s in sources:
        same(grads[s], lib.gradients[s], f"library vs HTTP gradient of {s}")

    f = scalar_fn(g, body.get("output_gradients"), targets)
    for s in dict.fromkeys(sources):
        if active(g, body, s, targets):
            close(grads[s], fd_gradient(f, g, s), FD_RTOL, FD_ATOL, f"gradient of {s} vs FD")
        elif zero:
            same(grads[s], np.zeros(g.shape(s)), f"zero gradient of unconnected {s}")
        else:
            assert grads[s] is None, f"{s} has no path or is unwatched, got {grads[s]}"

    jac_body = {k: v for k, v in body.items() if k != "output_gradients"}
    jac = http(client, "jacobian", jac_body)["jacobian"]
    for s in dict.fromkeys(sources):
        total, any_block = np.zeros(g.shape(s)), False
        for t in dict.fromkeys(targets):
            block = jac[t][s]
            if block is None:
                continue
            any_block = True
            nt = len(g.shape(t))
            w = np.broadcast_to(weight(body, t), g.shape(t))
            total = total + occurrences(targets, t) * np.tensordot(w, value(block), axes=nt)
        if not any_block:
            assert grads[s] is None, f"no Jacobian block for {s}, gradient {grads[s]}"
            continue
        close(grads[s], total, what=f"gradient of {s} vs the weighted sum of its Jacobian")

    if not all(g.shape(t) == () for t in targets):
        return
    hess = http(client, "hessian", body)
    for s in dict.fromkeys(sources):
        same(value(hess["gradients"][s]), grads[s], f"Hessian's gradient of {s}")
    if all(g.shape(s) == () for s in sources):
        der = http(client, "derivative", {**body, "order": 1})
        first = np.reshape(value(der["derivatives"][0]), (len(sources),))
        want = [0.0 if grads[s] is None else float(grads[s]) for s in sources]
        close(first, want, what="derivative order 1 vs gradient, per listed source")


test_gradient_roads, test_gradient_roads_long = quick_and_long(_gradient_roads)


# ------------------------------------------------------------------ 2. second derivatives


def _hessian_roads(client: TestClient, data: st.DataObject) -> None:
    """Hessian matrix == its blocks laid out in sources order == format coo == derivative
    order 2 (scalar sources) == finite differences == the same request again (a sparse
    pattern's coloured sweep); HTTP == library."""
    g = data.draw(graphs(), label="graph")
    body = data.draw(options(g, scalar_nodes(g)), label="request")
    targets, sources = target_list(body), listed_sources(g, body)
    sizes = sizes_of(g)
    got = http(client, "hessian", body)
    lib = library("hessian", body)
    matrix = value(got["matrix"])
    same(matrix, lib.matrix, "library vs HTTP matrix")
    assert lib.hessian is not None and lib.gradients is not None
    for si in sources:
        same(value(got["gradients"][si]), lib.gradients[si], f"library gradient {si}")
        for sj in sources:
            same(value(got["hessian"][si][sj]), lib.hessian[si][sj], f"library block {si},{sj}")
    close(matrix, matrix_from_blocks(got["hessian"], sources, sizes),
          what="matrix vs hessian[si][sj] laid out in sources order")
    again = http(client, "hessian", body)  # a graph seen before: its colouring, if sparse
    close(value(again["matrix"]), matrix, what="the same request again vs the first")
    for si in sources:
        close_or_none(value(again["gradients"][si]), value(got["gradients"][si]), si)
        for sj in sources:
            close_or_none(value(again["hessian"][si][sj]), value(got["hessian"][si][sj]),
                          f"again: block {si},{sj}")

    f = scalar_fn(g, body.get("output_gradients"), targets)
    mask = np.concatenate([np.full(sizes[s], active(g, body, s, targets)) for s in sources])
    want = fd_hessian(f, g, sources) * np.outer(mask, mask)
    close(matrix, want, FD2_RTOL, FD2_ATOL, "matrix vs FD")

    if not body.get("output_gradients"):
        coo = http(client, "hessian", {**body, "format": "coo"})
        close(coo_dense(coo["sparse"]), matrix, what="format coo vs dense matrix")
        for s in dict.fromkeys(sources):
            close_or_none(value(coo["gradients"][s]), value(got["gradients"][s]), s)
    if all(g.shape(s) == () for s in sources):
        der = http(client, "derivative", {**body, "order": 2})
        n = len(sources)
        close(np.reshape(value(der["derivatives"][1]), (n, n)), matrix,
              what="derivative order 2 vs matrix")


def close_or_none(got: np.ndarray | None, want: np.ndarray | None, what: str) -> None:
    assert (got is None) == (want is None), f"{what}: {got} vs {want}"
    if got is not None:
        close(got, want, what=what)


test_hessian_roads, test_hessian_roads_long = quick_and_long(_hessian_roads)


# ------------------------------------------------------------------ 3. points


def _points_roads(client: TestClient, data: st.DataObject) -> None:
    """points (evaluate, gradient, hessian) == one request per point."""
    g = data.draw(graphs(), label="graph")
    body = data.draw(options(g, scalar_nodes(g)), label="request")
    count = data.draw(st.integers(1, 3), label="points")
    named = data.draw(st.lists(st.sampled_from(g.leaves), min_size=1, unique=True),
                      label="leaves the points name")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="points seed"))
    # within 0.02 of a drawn value: still in the op's domain, still `gap` - 0.02 from kinks
    per_point = [{i: (g.values[i] + rng.uniform(-0.02, 0.02, g.shape(i))).tolist()
                  for i in named} for _ in range(count)]
    as_map = data.draw(st.booleans(), label="points as one map")
    points: Any = ({i: [p[i] for p in per_point] for i in named} if as_map else per_point)
    for kind in ("evaluate", "gradient", "hessian"):
        many = http(client, kind, {**body, "points": points})
        assert many["points"] == count
        for b, p in enumerate(per_point):
            one = http(client, kind, {**body, "values": {**body["values"], **p}})
            for t, v in one["outputs"].items():
                close(value(many["outputs"][t])[b], value(v), what=f"{kind} output {t} @{b}")
            for s, v in (one.get("gradients") or {}).items():
                close_or_none(None if many["gradients"][s] is None
                              else value(many["gradients"][s])[b], value(v),
                              f"{kind} gradient {s} @{b}")
            if kind == "hessian":
                close(value(many["matrix"])[b], value(one["matrix"]), what=f"matrix @{b}")
                for si, row in one["hessian"].items():
                    for sj, v in row.items():
                        m = many["hessian"][si][sj]
                        close_or_none(None if m is None else value(m)[b], value(v),
                                      f"block {si},{sj} @{b}")
        lib = library(kind, {**body, "points": points})
        for t, v in lib.outputs.items():
            same(value(many["outputs"][t]), v, f"library vs HTTP {kind} output {t}")


test_points_roads, test_points_roads_long = quick_and_long(_points_roads)


# ------------------------------------------------------------------ 4. graph forms

INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}
EXPRESSIBLE = sorted(set(callable_ops(1)) | set(callable_ops(2)) | set(INFIX))


def expression_of(g: Drawn) -> str:
    """The graph as infix text: infix operators where the grammar has them, else calls."""
    by_id = {n["id"]: n for n in g.nodes}

    def text(x: Any) -> str:
        if not isinstance(x, str):
            return f"({float(x)!r})"
        n = by_id[x]
        if n["op"] in ("variable", "constant"):
            return x
        args = [text(a) for a in n["inputs"]]
        if n["op"] in INFIX:
            return f"({args[0]} {INFIX[n['op']]} {args[1]})"
        return f"{n['op']}({', '.join(args)})"

    return text(g.target)


def _graph_form_roads(client: TestClient, data: st.DataObject) -> None:
    """A registered graph by graph_id == the inline graph; `values` == values written into
    the nodes; expression text == the JSON graph it spells."""
    g = data.draw(graphs(), label="graph")
    body = data.draw(options(g, scalar_nodes(g)), label="request")
    registered = client.post("/v1/graphs", json={"graph": body["graph"]})
    assert registered.status_code in (200, 201), registered.text
    by_id = {k: v for k, v in body.items() if k != "graph"}
    by_id["graph_id"] = registered.json()["graph_id"]
    for kind in ("gradient", "hessian"):
        inline, stored = http(client, kind, body), http(client, kind, by_id)
        for key in ("outputs", "gradients", "hessian", "matrix"):
            assert stored.get(key) == inline.get(key), f"{kind} {key}: graph_id vs inline"

    # a leaf's value from `values` == the same value written into its node
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="moved values"))
    moved = {i: (g.values[i] + rng.uniform(-0.02, 0.02, g.shape(i))).tolist() for i in g.leaves}
    written = [{**n, "value": moved[n["id"]]} if n["id"] in moved else n for n in g.nodes]
    via_values = http(client, "hessian", {**body, "values": moved})
    via_nodes = http(client, "hessian", {**body, "graph": {"nodes": written}, "values": {}})
    for key in ("outputs", "gradients", "hessian", "matrix"):
        assert via_values.get(key) == via_nodes.get(key), f"{key}: `values` vs node values"

    p = data.draw(graphs(ops=EXPRESSIBLE, inline=False, leaf_kinds=("variable",), plain=True),
                  label="expressible graph")
    common = {"values": p.leaf_values(), "sources": p.leaves}
    as_text = http(client, "hessian", {"expression": expression_of(p), **common})
    as_json = http(client, "hessian", {"graph": {"nodes": p.nodes}, **common})
    (out,) = as_text["outputs"].values()
    close(value(out), value(as_json["outputs"]["t"]), what="expression vs graph output")
    for s in p.leaves:
        close(value(as_text["gradients"][s]), value(as_json["gradients"][s]),
              what=f"expression vs graph gradient {s}")
    close(value(as_text["matrix"]), value(as_json["matrix"]), what="expression vs graph matrix")
    stored = client.post("/v1/graphs", json={"expression": expression_of(p)})
    assert stored.status_code in (200, 201), stored.text
    by_text_id = http(client, "hessian", {"graph_id": stored.json()["graph_id"], **common})
    for key in ("outputs", "gradients", "hessian", "matrix"):
        assert by_text_id.get(key) == as_text.get(key), f"{key}: registered vs inline text"


test_graph_form_roads, test_graph_form_roads_long = quick_and_long(_graph_form_roads)


# ------------------------------------------------------------------ 5. transposed sweep


def _transposed_roads(client: TestClient, data: st.DataObject) -> None:
    """The transposed sweep's Jacobian == the direct sweep's == HTTP == finite differences."""
    g = data.draw(graphs(), label="graph")
    target = data.draw(st.sampled_from(g.outputs), label="target")
    graph = build_graph(g.nodes)
    leaves = graph.make_leaves(graph.leaf_values({}))
    with GradientTape(persistent=True) as tape:
        tensors = graph.run(leaves)
    srcs = [leaves[i] for i in g.leaves]
    args = (tape.raw_entries, tensors[target], srcs, tape.watched, tape.watched_leaves)
    rows, cols = backprop.jacobian_rows(*args), transposed.jacobian_columns(*args)
    body = {"graph": {"nodes": g.nodes}, "target": target, "sources": g.leaves}
    jac = http(client, "jacobian", body)["jacobian"][target]
    for s, r, c in zip(g.leaves, rows, cols, strict=True):
        assert (r is None) == (c is None) == (jac[s] is None), f"{s}: {r}, {c}, {jac[s]}"
        if r is None:
            assert not active(g, body, s, [target])
            continue
        close(c.numpy(), r.numpy(), what=f"transposed vs direct Jacobian by {s}")
        close(value(jac[s]), r.numpy(), what=f"HTTP vs direct Jacobian by {s}")
        if active(g, body, s, [target]):
            close(r.numpy(), _fd_jacobian(g, target, s), FD_RTOL, FD_ATOL,
                  f"Jacobian by {s} vs FD")


def _fd_jacobian(g: Drawn, target: str, source: str) -> np.ndarray:
    """d target / d source by central differences, one output element at a time."""
    shape = g.shape(target)
    out = np.zeros(shape + g.shape(source))
    for i in np.ndindex(shape):
        w = np.zeros(shape)
        w[i] = 1.0
        out[i] = fd_gradient(scalar_fn(g, {target: w}, [target]), g, source)
    return out


test_transposed_roads, test_transposed_roads_long = quick_and_long(_transposed_roads)


def test_every_op_is_drawn() -> None:
    """The op table is the draw's pool: a new op joins the suite without an edit here."""
    from tests.differential.graphs import CASES

    assert set(CASES) == set(OPS)
    assert all(CASES[name] for name in OPS)


# ------------------------------------------------------------------ 6. the check


def _wrong(v: np.ndarray, index: int) -> np.ndarray:
    """``v`` with one entry moved far past any check's tolerance."""
    out = np.array(v, dtype=float, order="C")  # C order: `flat` must be a view of it
    flat = out.reshape(-1)
    flat[index % flat.size] += 0.1 * (1.0 + abs(flat[index % flat.size]))
    return out


def _check_refuses_wrong(client: TestClient, data: st.DataObject) -> None:
    """The check never says "agree" for a gradient or a Hessian block made wrong."""
    del client
    g = data.draw(graphs(max_ops=2), label="graph")
    body = data.draw(options(g, scalar_nodes(g), weights=False), label="request")
    kind = data.draw(st.sampled_from(["gradient", "hessian"]), label="kind")
    q, result = library_query(kind, body)
    assert result.gradients is not None
    index = data.draw(st.integers(0, 35), label="entry")
    # an unwatched source's zeros (unconnected_gradients: zero) are left out here: the
    # check does not compare them (test_found.py holds that as a strict xfail)
    wrong = [s for s, v in result.gradients.items() if v is not None and watched(g, body, s)]
    if kind == "hessian" and result.hessian is not None:
        pairs = [(a, b) for a, row in result.hessian.items() for b, v in row.items()
                 if v is not None and watched(g, body, a) and watched(g, body, b)]
        if pairs and data.draw(st.booleans(), label="wrong block"):
            a, b = data.draw(st.sampled_from(pairs), label="block")
            hessian = {i: dict(row) for i, row in result.hessian.items()}
            hessian[a][b] = _wrong(hessian[a][b], index)
            report = verify.check(KINDS[kind], q, dataclasses.replace(result, hessian=hessian),
                                  "numeric")
            assert report.status != "agree", f"block {a},{b} made wrong: {report}"
            return
    if not wrong:
        return
    s = data.draw(st.sampled_from(wrong), label="source")
    gradients = {**result.gradients, s: _wrong(result.gradients[s], index)}
    report = verify.check(KINDS[kind], q, dataclasses.replace(result, gradients=gradients),
                          "numeric")
    assert report.status != "agree", f"gradient of {s} made wrong: {report}"


test_check_refuses_wrong, test_check_refuses_wrong_long = quick_and_long(_check_refuses_wrong)


def _check_refuses_wrong_matrix(client: TestClient, data: st.DataObject) -> None:
    """The check never says "agree" for a Hessian ``matrix`` made wrong (a layout error
    leaves the blocks right and the matrix wrong)."""
    del client
    g = data.draw(graphs(max_ops=2), label="graph")
    body = data.draw(options(g, scalar_nodes(g), weights=False), label="request")
    q, result = library_query("hessian", body)
    assert result.matrix is not None
    if not np.any(result.matrix):
        return
    index = data.draw(st.integers(0, result.matrix.size - 1), label="entry")
    bad = dataclasses.replace(result, matrix=_wrong(result.matrix, index))
    report = verify.check(KINDS["hessian"], q, bad, "numeric")
    assert report.status != "agree", f"matrix entry {index} made wrong: {report}"


test_check_refuses_wrong_matrix, test_check_refuses_wrong_matrix_long = quick_and_long(
    _check_refuses_wrong_matrix)
