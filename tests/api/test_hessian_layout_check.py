"""Through HTTP, the check compares a Hessian as the response lays it out: ``matrix``
(dense) or every coordinate of ``sparse`` and the zeros they leave out (coo)."""

from __future__ import annotations

import pytest

from app.examples import rosenbrock
from tests.api.support import graph, op, post, var


def _several_sources() -> dict:
    return graph(var("x", [0.4, -1.1]), var("y", [[0.7, 0.2, -0.5]]), var("z", 1.3),
                 op("xc", "reshape", "x", shape=[2, 1]), op("p", "matmul", "xc", "y"),
                 op("s", "sin", "p"), op("a", "sum", "s"), op("c", "mul", "x", "x"),
                 op("zc", "mul", "z", "c"), op("b", "sum", "zc"), op("L", "add", "a", "b"))


@pytest.mark.parametrize("method", ["sympy", "numeric"])
@pytest.mark.parametrize("fmt", ["dense", "coo"])
def test_a_hessian_response_agrees_and_counts_its_layout(client, fmt, method):
    body = post(client, "hessian", {**_several_sources(), "format": fmt, "check": method})
    check = body["check"]
    assert check["status"] == "agree", check
    assert ("matrix" in body) == (fmt == "dense") and ("sparse" in body) == (fmt == "coo")
    n = 6  # 2 + 3 + 1 flattened source elements
    # gradients, the blocks (coo carries them for the check while small), then the
    # matrix, or each coordinate and each zero the coordinates leave out
    assert check["compared"] == n + n * n + n * n
    assert check["disagreements"] == []


def test_a_coo_rosenbrock_counts_every_coordinate_and_zero(client):
    body = post(client, "hessian", {**rosenbrock(6), "format": "coo", "check": "numeric"})
    assert body["check"]["status"] == "agree", body["check"]
    assert len(body["sparse"]["rows"]) == 6 + 2 * 5
    assert body["check"]["compared"] == 6 + 36 + 36
