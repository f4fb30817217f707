"""What every road of the differential suite shares: tolerances, drawn requests, the
two ways of asking (HTTP and the engine library) and the comparisons."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from engine.derive.kinds import KINDS
from engine.derive.query import Query, Result
from engine.graphs.build import build_graph
from tests.api.support import arr, post
from tests.differential.graphs import Drawn

# Two roads to one quantity run the same float64 operations in different orders (seeds
# summed before or after the sweep, batched or per point, concatenated or block by block,
# a DAG or the tree an expression spells), which moves an answer by a few ulps of the
# largest partial term; drawn values stay below ~1e3, so 1e-9 relative and 1e-10
# absolute is thousands of ulps of slack and still far below any real error.
ROAD_RTOL, ROAD_ATOL = 1e-9, 1e-10
# First-order central differences (h = 1e-6): truncation ~h^2 |f'''| and rounding
# ~1e-16 |f| / h stay under ~1e-8 for inputs kept `gap` from kinks and poles.
FD_RTOL, FD_ATOL = 1e-5, 1e-6
# Second order by four-point differences (h = 1e-4): rounding ~1e-16 |f| / h^2 ~ 1e-8 |f|
# and truncation ~h^2 |f''''| reach 1e-5 near poles (reciprocal at 0.5): 1e-3 both ways.
FD2_RTOL, FD2_ATOL = 1e-3, 1e-3


def close(got: Any, want: Any, rtol: float = ROAD_RTOL, atol: float = ROAD_ATOL,
          what: str = "") -> None:
    """``got`` and ``want`` as arrays: equal shapes, equal within tolerance."""
    g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=what)


def same(got: Any, want: Any, what: str = "") -> None:
    """Number for number (what one computation gives twice), NaN equal to NaN."""
    if got is None or want is None:
        assert got is None and want is None, f"{what}: {got!r} vs {want!r}"
        return
    g, w = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
    assert np.array_equal(g, w, equal_nan=True), f"{what}: {g} != {w}"


# ------------------------------------------------------------------ drawn requests


def watched(g: Drawn, body: Mapping[str, Any], source: str) -> bool:
    """Whether the tape watches ``source``: TF's rule for variables, constants, ``watch``."""
    if source in body.get("watch", ()):
        return True
    node = next(n for n in g.nodes if n["id"] == source)
    return (body.get("watch_accessed_variables", True) and node["op"] == "variable"
            and node.get("trainable", True))


def listed_sources(g: Drawn, body: Mapping[str, Any]) -> list[str]:
    """The sources a request names, or (as TF's watched variables) every watched leaf."""
    if body.get("sources") is not None:
        return list(body["sources"])
    return [s for s in g.leaves if watched(g, body, s)]


def active(g: Drawn, body: Mapping[str, Any], source: str, targets: Sequence[str]) -> bool:
    """A gradient that is not None: watched, with a differentiable path to a target."""
    return watched(g, body, source) and g.reaches(source, targets)


def target_list(body: Mapping[str, Any]) -> list[str]:
    t = body.get("target", "t")
    return [t] if isinstance(t, str) else list(t)


@st.composite
def options(draw: st.DrawFn, g: Drawn, targets: Sequence[str], weights: bool = True
            ) -> dict[str, Any]:
    """Request fields users vary: sources (repeated, or left to the default), ``watch``,
    ``watch_accessed_variables``, ``unconnected_gradients``, targets (repeated, or
    overlapping) and ``output_gradients``."""
    body: dict[str, Any] = {"graph": {"nodes": g.nodes}, "values": g.leaf_values(),
                            "check": "none"}
    if draw(st.booleans(), label="explicit sources"):
        body["sources"] = draw(st.lists(st.sampled_from(g.leaves), min_size=1, max_size=4),
                               label="sources")
    body["watch"] = draw(st.lists(st.sampled_from(g.leaves), max_size=2, unique=True),
                         label="watch")
    body["watch_accessed_variables"] = draw(st.sampled_from([True, True, False]), label="wav")
    body["unconnected_gradients"] = draw(st.sampled_from(["none", "zero"]), label="unconnected")
    chosen = draw(st.lists(st.sampled_from(list(targets)), min_size=1, max_size=3),
                  label="targets")
    body["target"] = chosen[0] if len(chosen) == 1 and draw(st.booleans()) else chosen
    if weights and draw(st.booleans(), label="weighted"):
        seed = draw(st.integers(0, 2**16), label="weights seed")
        rng = np.random.default_rng(seed)
        body["output_gradients"] = {
            t: np.round(rng.uniform(-1.5, 1.5, g.shape(t)), 3).tolist()
            for t in sorted(set(chosen)) if rng.random() < 0.7
        } or None
    if not listed_sources(g, body):
        body["sources"] = [g.leaves[0]]  # a request with no source at all asks nothing
    return body


def weight(body: Mapping[str, Any], t: str) -> Any:
    ogs = body.get("output_gradients") or {}
    return np.asarray(ogs[t], dtype=float) if t in ogs else 1.0


# ------------------------------------------------------------------ the two ways of asking


def http(client: TestClient, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The HTTP answer, ``check: none`` unless the body says otherwise."""
    return post(client, kind, {"check": "none", **body})


def library(kind: str, body: Mapping[str, Any]) -> Result:
    """The same request to the engine library, as the service builds its Query."""
    return library_query(kind, body)[1]


def library_query(kind: str, body: Mapping[str, Any]) -> tuple[Query, Result]:
    """The Query the service would build for ``body``, and the engine's answer to it."""
    q = Query(
        graph=build_graph(list(body["graph"]["nodes"])),
        values=body.get("values", {}),
        target=body.get("target"),
        sources=body.get("sources"),
        watch=tuple(body.get("watch", ())),
        watch_accessed_variables=body.get("watch_accessed_variables", True),
        unconnected_gradients=body.get("unconnected_gradients", "none"),
        output_gradients=body.get("output_gradients"),
        format=body.get("format", "dense"),
        order=body.get("order", 1),
    )
    k = KINDS[kind]
    if body.get("points") is not None:
        assert k.over_points is not None
        return q, k.over_points(q, body["points"])
    return q, k.compute(q)


def value(v: Any) -> np.ndarray | None:
    return None if v is None else arr(v)


def matrix_from_blocks(hessian: Mapping[str, Mapping[str, Any]], sources: Sequence[str],
                       sizes: Mapping[str, int], batch: tuple[int, ...] = ()) -> np.ndarray:
    """The dense matrix the blocks say, laid out over ``sources`` as listed (a source listed
    twice appears twice, as TF's ``tape.jacobian(tape.gradient(t, [x, x]), [x, x])``)."""
    offsets = np.concatenate([[0], np.cumsum([sizes[s] for s in sources])]).astype(int)
    out = np.zeros(batch + (offsets[-1], offsets[-1]))
    for a, si in enumerate(sources):
        for b, sj in enumerate(sources):
            block = hessian[si][sj]
            if block is not None:
                out[..., offsets[a]:offsets[a + 1], offsets[b]:offsets[b + 1]] = \
                    arr(block).reshape(batch + (sizes[si], sizes[sj]))
    return out


def coo_dense(sparse: Mapping[str, Any]) -> np.ndarray:
    """A ``format: coo`` answer as a dense matrix; each coordinate appears once."""
    coords = list(zip(sparse["rows"], sparse["cols"], strict=True))
    assert len(set(coords)) == len(coords), "a coordinate listed twice"
    out = np.zeros(tuple(sparse["shape"]))
    for (r, c), v in zip(coords, arr(sparse["values"]).reshape(-1), strict=True):
        out[r, c] = v
    return out


def sizes_of(g: Drawn) -> dict[str, int]:
    return {i: math.prod(g.shape(i)) for i in g.values}
