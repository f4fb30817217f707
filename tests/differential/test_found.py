"""Regressions for what the differential suite found, each named for the behaviour."""

from __future__ import annotations

import dataclasses

import numpy as np
from fastapi.testclient import TestClient

from engine import GradientTape, Variable
from engine.check import verify
from engine.derive.kinds import KINDS
from engine.ops.registry import F
from engine.tape import backprop
from tests.api.support import arr, const, graph, op, post, var
from tests.differential.roads import coo_dense, library_query, matrix_from_blocks


def test_a_source_listed_twice_has_a_path_from_each_listing() -> None:
    """``paths_from`` gives both bits of a source listed twice, not only the last one's."""
    x = Variable([1.0, 2.0])
    with GradientTape() as tape:
        y = F.sin(x)
    (mask,) = backprop.paths_from(tape.raw_entries, [x, x], [y])
    assert mask == 0b11


def test_hessian_matrix_repeats_a_repeated_source_in_sources_order(client: TestClient) -> None:
    """TF answers each listed occurrence of a source, so the matrix over ``[x, y, x]`` is
    5 x 5 with x's rows and columns twice; it once had zeros in x's first columns."""
    body = {**graph(var("x", [1.0, 2.0]), var("y", 3.0), op("a", "mul", "x", "y"),
                    op("b", "sin", "a"), op("z", "sum", "b")),
            "sources": ["x", "y", "x"], "check": "none"}
    got = post(client, "hessian", body)
    matrix = arr(got["matrix"])
    assert matrix.shape == (5, 5)
    laid_out = matrix_from_blocks(got["hessian"], ["x", "y", "x"], {"x": 2, "y": 1})
    np.testing.assert_allclose(matrix, laid_out, rtol=1e-12)
    assert np.all(matrix[:, :2] == matrix[:, 3:])  # the two listings of x agree
    coo = post(client, "hessian", {**body, "format": "coo"})
    np.testing.assert_allclose(coo_dense(coo["sparse"]), matrix, rtol=1e-12)


def test_coo_hessian_gives_zero_gradients_when_unconnected_is_zero(client: TestClient) -> None:
    """``format: coo`` honours ``unconnected_gradients: zero`` as the dense Hessian does
    (it once answered null for a source with no path to the target)."""
    body = {**graph(var("x", 0.5), var("u", -0.9), const("c", 2.0), op("t", "sin", "x")),
            "unconnected_gradients": "zero", "check": "none", "sources": ["x", "u"]}
    dense = post(client, "hessian", body)
    coo = post(client, "hessian", {**body, "format": "coo"})
    assert dense["gradients"]["u"] == 0.0
    assert coo["gradients"] == dense["gradients"]


def test_check_compares_the_zeros_of_an_unwatched_source() -> None:
    """With ``unconnected_gradients: zero``, an unwatched source's gradient is zeros, and
    a check that says "agree" must have compared it."""
    body = {**graph(var("x", 0.5), var("u", -0.9), op("t", "sin", "x")),
            "sources": ["x", "u"], "watch": ["x"], "watch_accessed_variables": False,
            "unconnected_gradients": "zero"}
    q, result = library_query("gradient", body)
    assert result.gradients is not None
    np.testing.assert_array_equal(result.gradients["u"], 0.0)
    assert verify.check(KINDS["gradient"], q, result, "numeric").status == "agree"
    bad = dataclasses.replace(result, gradients={**result.gradients, "u": np.float64(1.0)})
    assert verify.check(KINDS["gradient"], q, bad, "numeric").status == "disagree"
    assert verify.check(KINDS["gradient"], q, bad, "sympy").status == "disagree"


def test_check_holds_an_unwatched_source_to_none() -> None:
    """Without ``unconnected_gradients: zero`` an unwatched source's gradient is None by
    design: a number there is not TF's answer, and the check says so."""
    body = {**graph(var("x", 0.5), var("u", -0.9), op("t", "sin", "x")),
            "sources": ["x", "u"], "watch": ["x"], "watch_accessed_variables": False}
    q, result = library_query("gradient", body)
    assert result.gradients is not None and result.gradients["u"] is None
    assert verify.check(KINDS["gradient"], q, result, "numeric").status == "agree"
    bad = dataclasses.replace(result, gradients={**result.gradients, "u": np.float64(0.0)})
    assert verify.check(KINDS["gradient"], q, bad, "numeric").status == "disagree"
