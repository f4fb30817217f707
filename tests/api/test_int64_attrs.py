"""Integer attrs are int64, as TF's: JSON brings integers of any length, and one past 64
bits used to be accepted, then fail where it is written back (a trace, a registered graph
read again) with a 500. Now it is a 422 naming the node and the attr, on every road in."""

from __future__ import annotations

import pytest

from tests.api.support import graph, op, post, var

TOO_BIG = [2**63, -(2**63) - 1, 10**20, -(10**400)]


def _cases(n: int) -> list[tuple[str, dict]]:
    """(attr, node) pairs whose integer attr is ``n``."""
    return [
        ("begin", op("y", "slice", "x", begin=[n])),
        ("end", op("y", "slice", "x", begin=[0], end=[n])),
        ("step", op("y", "slice", "x", begin=[0], step=[n])),
        ("begin", op("y", "pad_slice", "x", shape=[3], begin=[n], end=[3])),
        ("axis", op("y", "sum", "x", axis=n)),
        ("axis", op("y", "cumsum", "x", axis=n)),
        ("index", op("y", "strided_slice", "x", index=[n])),
        ("indices", op("y", "gather", "x", indices=n)),
        ("indices", op("y", "gather", "x", indices=[[0], [n]])),
    ]


@pytest.mark.parametrize("n", TOO_BIG, ids=["2**63", "-2**63-1", "10**20", "-10**400"])
@pytest.mark.parametrize("case", range(len(_cases(0))))
def test_an_integer_attr_past_64_bits_is_a_422_naming_it(client, n, case):
    attr, node = _cases(n)[case]
    body = graph(var("x", [1.5, 2.5, 3.5]), node, trace=True, check="none")
    for path in ("gradient", "evaluate", "graphs"):
        problem = post(client, path, body if path != "graphs" else {"graph": body["graph"]}, 422)
        assert problem["node"] == "y" and problem["field"] == f"attrs.{attr}", problem
        assert "64 bits" in problem["detail"] and str(n)[:30] not in problem["detail"]


def test_the_largest_int64_is_taken_traced_and_read_back(client):
    body = graph(var("x", [1.5, 2.5, 3.5]),
                 op("y", "slice", "x", begin=[-(2**63)], end=[2**63 - 1], step=[1]),
                 trace=True, check="none")
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": [1.0, 1.0, 1.0]}
    assert out["trace"]["entries"]
    info = post(client, "graphs", {"graph": body["graph"]}, 201)
    shown = client.get(f"/v1/graphs/{info['graph_id']}")
    assert shown.status_code == 200
    (node,) = [n for n in shown.json()["graph"]["nodes"] if n["id"] == "y"]
    assert node["attrs"]["end"] == [2**63 - 1]
