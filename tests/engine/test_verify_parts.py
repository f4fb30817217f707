"""The verification layer's parts on their own: graph -> SymPy, finite differences, workers.

Jobs are the plain data ``engine.check.job.build_job`` produces; here they are
written by hand so each part is tested without the tape.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import sympy as sp

from engine.check import finite_differences as numeric
from engine.check import symbolic, sympy_job, sympy_pool
from engine.check.agreement import QUANTITIES
from engine.check.job import CHECK_COSTS
from engine.derive.kinds import KINDS


def job(kind: str, nodes: list, values: dict[str, Any], target: str | list[str],
        sources: list[str], **extra: Any) -> dict[str, Any]:
    frozen = [n[0] for n in nodes if n[1] in ("stop_gradient", "floor", "ceil")]
    return {
        "quantities": list(KINDS[kind].compares), "order": 1, "nodes": nodes,
        "values": {k: np.asarray(v, dtype=np.float64)[()] for k, v in values.items()},
        "targets": [target] if isinstance(target, str) else target, "sources": sources,
        "weights": extra.pop("weights", {}), "frozen": extra.pop("frozen", frozen),
        "text_max": extra.pop("text_max", 16),
    }


def var(nid: str) -> list:
    return [nid, "variable", [], {}]


def squares_chain(depth: int) -> tuple[list, str]:
    """b_k = b_{k-1}**2 + b_{k-1}: tiny as a graph, exponential as a written-out tree."""
    nodes, prev = [var("x")], "x"
    for k in range(depth):
        nodes += [[f"a{k}", "mul", [prev, prev], {}], [f"b{k}", "add", [f"a{k}", prev], {}]]
        prev = f"b{k}"
    return nodes, prev


# ------------------------------------------------------------------ the quantity tables


def test_every_quantity_a_kind_compares_has_a_row_in_every_table() -> None:
    compared = {q for kind in KINDS.values() for q in kind.compares}
    tables = {"agreement": QUANTITIES, "job": CHECK_COSTS, "finite_differences": numeric.ESTIMATES,
              "sympy_job": sympy_job.BUILD}
    assert {name: set(t) for name, t in tables.items()} == dict.fromkeys(tables, compared)


# ------------------------------------------------------------------ symbolic


def test_seed_derivatives_read_as_a_person_writes_them() -> None:
    square = sympy_job.run_job(job("gradient", [var("x"), ["y", "pow", ["x", 2.0], {}]],
                                  {"x": 3.0}, "y", ["x"]))
    cube = sympy_job.run_job(job("hessian", [var("x"), ["y", "pow", ["x", 3.0], {}]],
                                {"x": 3.0}, "y", ["x"]))
    assert square["text"]["gradients"] == {"x": "2*x"}
    assert float(square["values"]["gradients"]["x"]) == 6.0
    assert cube["text"]["gradients"] == {"x": "3*x**2"}
    assert cube["text"]["hessian"] == {"x": {"x": "6*x"}}
    assert cube["latex"]["gradients"] == {"x": "3 x^{2}"}
    assert float(cube["values"]["hessian"]["x"]["x"]) == 18.0


def test_two_sources_each_get_their_own_derivative() -> None:
    nodes = [var("x"), var("y"), ["x2", "pow", ["x", 2], {}], ["y3", "pow", ["y", 3], {}],
             ["z", "add", ["x2", "y3"], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"x": 2.0, "y": 3.0}, "z", ["x", "y"]))
    assert out["text"]["gradients"] == {"x": "2*x", "y": "3*y**2"}
    assert [float(out["values"]["gradients"][s]) for s in "xy"] == [4.0, 27.0]


def test_tensor_elements_are_symbols_named_by_index() -> None:
    nodes = [var("w"), ["s", "sin", ["w"], {}], ["L", "sum", ["s"], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"w": [[0.1, 0.2], [0.3, 0.4]]}, "L", ["w"]))
    assert out["text"]["gradients"]["w"] == [["cos(w_0_0)", "cos(w_0_1)"],
                                             ["cos(w_1_0)", "cos(w_1_1)"]]
    np.testing.assert_allclose(out["values"]["gradients"]["w"],
                               np.cos([[0.1, 0.2], [0.3, 0.4]]), rtol=1e-15)


def test_large_quantities_are_summarised() -> None:
    nodes = [var("w"), ["s", "sin", ["w"], {}], ["L", "sum", ["s"], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"w": np.ones(20)}, "L", ["w"], text_max=4))
    text = out["text"]["gradients"]["w"]
    assert isinstance(text, str) and text.startswith("shape [20], 20 entries; [0]: cos(w_0)")


def test_inline_constants_stay_exact() -> None:
    nodes = [var("x"), ["r", "pow", ["x", 0.5], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"x": 4.0}, "r", ["x"]))
    assert out["text"]["gradients"]["x"] == "1/(2*sqrt(x))"
    assert float(out["values"]["gradients"]["x"]) == 0.25


def test_stop_gradient_output_is_a_constant() -> None:
    nodes = [var("x"), ["c", "stop_gradient", ["x"], {}], ["y", "mul", ["x", "c"], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"x": 3.0}, "y", ["x"]))
    # d/dx (x * c) with c held at x's value: the text says what c holds, as held
    assert out["text"]["gradients"]["x"] == "stop_gradient(x)"
    assert float(out["values"]["gradients"]["x"]) == 3.0


def test_floor_has_no_derivative_path() -> None:
    nodes = [var("x"), ["f", "floor", ["x"], {}], ["y", "mul", ["f", "f"], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"x": 2.5}, "y", ["x"]))
    assert out["zero"] == [["gradients", "x"]]
    assert float(out["values"]["gradients"]["x"]) == 0.0


def test_inner_node_source_is_a_partial_derivative() -> None:
    # z = s * x with s = x**2: d z / d s holds x fixed, as tape.gradient(z, s) does
    nodes = [var("x"), ["s", "pow", ["x", 2], {}], ["z", "mul", ["s", "x"], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"x": 3.0}, "z", ["s", "x"]))
    assert float(out["values"]["gradients"]["s"]) == 3.0
    assert float(out["values"]["gradients"]["x"]) == 27.0


def test_a_tie_of_maximum_is_listed_as_a_kink() -> None:
    nodes = [var("a"), var("b"), ["m", "maximum", ["a", "b"], {}]]
    out = sympy_job.run_job(job("gradient", nodes, {"a": 1.0, "b": 1.0}, "m", ["a", "b"]))
    assert len(out["kinks"]) == 2
    away = sympy_job.run_job(job("gradient", nodes, {"a": 2.0, "b": 1.0}, "m", ["a", "b"]))
    assert not away["kinks"] and float(away["values"]["gradients"]["a"]) == 1.0


def test_log_of_a_negative_number_is_nan() -> None:
    out = sympy_job.run_job(job("gradient", [var("x"), ["l", "log", ["x"], {}]],
                               {"x": -1.0}, "l", ["x"]))
    assert float(out["values"]["gradients"]["x"]) == -1.0  # 1/x is defined there
    ev = sympy_job.run_job(job("evaluate", [var("x"), ["l", "log", ["x"], {}]],
                              {"x": -1.0}, "l", []))
    assert np.isnan(ev["values"]["outputs"]["l"])


def test_structure_is_compiled_once_and_reevaluated() -> None:
    nodes = [var("x"), ["y", "sin", ["x"], {}]]
    first = sympy_job.run_job(job("gradient", nodes, {"x": 0.3}, "y", ["x"]))
    again = sympy_job.run_job(job("gradient", nodes, {"x": 0.7}, "y", ["x"]))
    assert again["cached"] and float(again["values"]["gradients"]["x"]) == pytest.approx(
        np.cos(0.7), rel=1e-15)
    assert first["text"] == again["text"]


def test_tree_size_counts_a_shared_graph_written_out() -> None:
    x = sp.Symbol("x")
    e = x
    for _ in range(40):
        e = e * e + e  # SymPy shares the two copies: 2**40 nodes on paper
    assert symbolic.tree_size(e, 10**6) == 10**6  # capped, and returns at once


# ------------------------------------------------------------------ numeric


def test_finite_differences_of_a_smooth_tensor_function() -> None:
    x = np.array([[0.3, -1.2], [2.0, 0.7]])
    nodes = [var("x"), ["s", "sin", ["x"], {}], ["e", "exp", ["s"], {}], ["L", "sum", ["e"], {}]]
    est = numeric.gradients(numeric.Runner(job("gradient", nodes, {"x": x}, "L", ["x"])), ["x"])
    expected = np.exp(np.sin(x)) * np.cos(x)
    np.testing.assert_allclose(est["x"].value, expected, rtol=1e-9)
    assert np.all(est["x"].error < 1e-6) and not est["x"].kink.any()


def test_finite_differences_classify_kinks_and_jumps() -> None:
    nodes = [var("x"), ["r", "relu", ["x"], {}], ["s", "sign", ["x"], {}],
             ["L", "add", ["r", "s"], {}]]
    runner = numeric.Runner(job("jacobian", nodes, {"x": 0.0}, ["r", "s"], ["x"]))
    est = numeric.jacobians(runner, ["x"])
    relu, sign = est["r"]["x"], est["s"]["x"]
    assert relu.kink and (relu.low, relu.high) == pytest.approx((0.0, 1.0))
    assert sign.jump


def test_finite_differences_hold_stop_gradient_fixed() -> None:
    nodes = [var("x"), ["c", "stop_gradient", ["x"], {}], ["y", "mul", ["x", "c"], {}]]
    est = numeric.gradients(numeric.Runner(job("gradient", nodes, {"x": 3.0}, "y", ["x"])), ["x"])
    assert float(est["x"].value) == pytest.approx(3.0, rel=1e-9)


def test_finite_difference_hessian() -> None:
    nodes = [var("x"), var("y"), ["p", "mul", ["x", "y"], {}], ["q", "pow", ["p", 2], {}]]
    runner = numeric.Runner(job("hessian", nodes, {"x": 2.0, "y": 3.0}, "q", ["x", "y"]))
    h = numeric.hessian(runner, ["x", "y"])
    # q = x²y²: [[2y², 4xy], [4xy, 2x²]]
    got = [[float(h[a][b].value) for b in "xy"] for a in "xy"]
    np.testing.assert_allclose(got, [[18.0, 24.0], [24.0, 8.0]], rtol=1e-6)


def test_finite_differences_stop_at_their_deadline() -> None:
    nodes, last = squares_chain(3)
    runner = numeric.Runner(job("gradient", nodes, {"x": 0.3}, last, ["x"]))
    runner.deadline = time.monotonic() - 1.0
    with pytest.raises(numeric.NumericTimeout):
        numeric.gradients(runner, ["x"])


# ------------------------------------------------------------------ workers


@pytest.fixture(scope="module")
def pool() -> Any:
    """A private pool, so killing its worker does not disturb other tests."""
    p = sympy_pool.Pool(1)
    p.start()
    yield p
    p.close()


def test_worker_answers_with_plain_data(pool: Any) -> None:
    out = pool.run(job("gradient", [var("x"), ["y", "pow", ["x", 2.0], {}]], {"x": 3.0},
                       "y", ["x"]), seconds=30)
    assert out["text"]["gradients"] == {"x": "2*x"}
    assert float(out["values"]["gradients"]["x"]) == 6.0


def test_overrunning_job_times_out_and_its_worker_is_replaced(pool: Any) -> None:
    pool.run(job("gradient", [var("x"), ["y", "sin", ["x"], {}]], {"x": 1.0}, "y", ["x"]), 30)
    before = pool.pids()
    nodes, last = squares_chain(14)  # about a minute of SymPy
    start = time.monotonic()
    with pytest.raises(sympy_pool.WorkerTimeout):
        pool.run(job("gradient", nodes, {"x": 0.3}, last, ["x"]), seconds=0.5)
    assert time.monotonic() - start < 0.5 + 1.0
    assert pool.pids() != before and len(pool.pids()) == 1
    out = pool.run(job("gradient", [var("x"), ["y", "pow", ["x", 3.0], {}]], {"x": 3.0},
                       "y", ["x"]), seconds=30)
    assert float(out["values"]["gradients"]["x"]) == 27.0


def test_a_failing_job_is_an_error_and_the_worker_lives_on(pool: Any) -> None:
    pool.run(job("gradient", [var("x"), ["y", "sin", ["x"], {}]], {"x": 1.0}, "y", ["x"]), 30)
    before = pool.pids()
    with pytest.raises(sympy_pool.WorkerError, match="KeyError"):
        pool.run(job("gradient", [var("x"), ["y", "no_such_op", ["x"], {}]], {"x": 1.0},
                     "y", ["x"]), seconds=30)
    assert pool.pids() == before


def test_closed_pool_stops_its_workers() -> None:
    p = sympy_pool.Pool(1)
    p.start()
    worker = p._idle[0]
    p.close()
    assert not worker.process.is_alive()
    with pytest.raises(sympy_pool.WorkerError):
        p.run({}, seconds=1)
