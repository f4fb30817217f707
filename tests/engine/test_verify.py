"""``verify.check`` end to end: the tape's answers cross-checked by SymPy and by finite
differences, with TF's semantics for None gradients, stop_gradient and kinks."""

from __future__ import annotations

import contextlib
import logging
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from engine.check import sympy_pool
from engine.check.agreement import CheckReport
from engine.check.limits import CheckLimits
from engine.check.verify import check
from engine.derive.kinds import KINDS
from engine.derive.query import Query, Result
from engine.graphs.build import build_graph
from engine.ops import OPS
from engine.ops.registry import Case, F, OpDef
from engine.ops.vjp import sweep_rule
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs

# generous budgets: CI machines are slow and shared (the Hessian of solve on a batch of
# matrices takes SymPy a minute or more); the timeout tests set their own
LIMITS = CheckLimits(sympy_seconds=500.0, numeric_seconds=60.0)
SMALL_HESSIAN = 12  # input elements; larger Hessians run with -m slow


def run(kind: str, nodes: list[dict], method: str = "sympy", limits: CheckLimits = LIMITS,
        **query: Any) -> tuple[Result, CheckReport]:
    q = Query(graph=build_graph(nodes), **query)
    result = KINDS[kind].compute(q)
    return result, check(KINDS[kind], q, result, method, limits)


@contextlib.contextmanager
def wrong_vjp(op: OpDef, vjp: Any) -> Iterator[None]:
    """Swap ``op``'s vjp for a wrong one, then restore it. Tapes hold the OpDef itself,
    so it is swapped in place, with the ``rule`` the sweep calls derived from it."""
    right = op.vjp, op.rule
    object.__setattr__(op, "vjp", vjp)
    object.__setattr__(op, "rule", sweep_rule(vjp))
    try:
        yield
    finally:
        object.__setattr__(op, "vjp", right[0])
        object.__setattr__(op, "rule", right[1])


def var(nid: str, value: Any) -> dict:
    return {"id": nid, "op": "variable", "value": np.asarray(value, dtype=float).tolist()}


def node(nid: str, op: str, *inputs: Any, **attrs: Any) -> dict:
    return {"id": nid, "op": op, "inputs": list(inputs), "attrs": attrs}


def op_graph(op: OpDef, case: Case, salt: str) -> list[dict]:
    """sum(op(x0, x1, ...)) at a random point inside the op's domain."""
    args = sample_inputs(op, case, rng_for(op, case, salt))
    names = [f"x{i}" for i in range(len(args))]
    return [*(var(n, a) for n, a in zip(names, args, strict=True)),
            node("y", op.name, *names, **dict(case.attrs)), node("L", "sum", "y")]


def inputs_size(case: Case) -> int:
    return sum(math.prod(s) for s in case.shapes)


def squares_chain(depth: int, x: float = 0.01) -> list[dict]:
    """b_k = b_{k-1}**2 + b_{k-1}: a small graph whose written-out derivative is huge."""
    nodes, prev = [var("x", x)], "x"
    for k in range(depth):
        nodes += [node(f"a{k}", "mul", prev, prev), node(f"b{k}", "add", f"a{k}", prev)]
        prev = f"b{k}"
    return nodes


SEED_SQUARE = [var("x", 3.0), node("y", "pow", "x", 2)]
SEED_CUBE = [var("x", 3.0), node("y", "pow", "x", 3)]
SEED_TWO = [var("x", 2.0), var("y", 3.0), node("x2", "pow", "x", 2), node("y3", "pow", "y", 3),
            node("z", "add", "x2", "y3")]


# ------------------------------------------------------------------ every op


def every_case(fast: Any) -> list:
    """Every (op, case); those ``fast`` rejects are marked slow (SymPy on linear algebra and
    on many-input reductions takes seconds to minutes)."""
    smallest: dict[str, int] = {}
    for p in op_cases():
        op, case = p.values
        smallest[op.name] = min(smallest.get(op.name, 10**9), inputs_size(case))
    slow = [pytest.mark.slow, pytest.mark.timeout(600)]
    return [p if fast(p.values[0], p.values[1], smallest[p.values[0].name]) else
            pytest.param(*p.values, id=p.id, marks=slow) for p in op_cases()]


@pytest.mark.parametrize(("op", "case"), every_case(
    lambda op, case, _: inputs_size(case) <= (12 if op.family == "linalg" else 24)))
def test_sympy_agrees_with_every_op_gradient(op: OpDef, case: Case) -> None:
    _, report = run("gradient", op_graph(op, case, "verify-gradient"))
    assert report.status == "agree", report.detail
    assert report.method == "sympy" and report.symbolic["gradients"]


@pytest.mark.parametrize(("op", "case"), every_case(
    lambda op, case, smallest: inputs_size(case) == smallest
    <= (9 if op.family == "linalg" else SMALL_HESSIAN)))
def test_sympy_agrees_with_every_op_hessian(op: OpDef, case: Case) -> None:
    _, report = run("hessian", op_graph(op, case, "verify-hessian"))
    assert report.status == "agree", report.detail
    assert report.symbolic["hessian"]


@pytest.mark.parametrize(("op", "case"), op_cases())
def test_finite_differences_agree_with_every_op_gradient(op: OpDef, case: Case) -> None:
    _, report = run("gradient", op_graph(op, case, "verify-gradient"), "numeric")
    assert report.status == "agree", report.detail


def test_a_wrong_derivative_rule_is_caught_by_both_methods(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with wrong_vjp(OPS["sin"], lambda _ans, x: lambda g: (g * F.sin(x),)):
        nodes = [var("x", [0.3, 1.1, -2.0]), node("s", "sin", "x"), node("L", "sum", "s")]
        with caplog.at_level(logging.WARNING, logger="engine.check.verify"):
            reports = {m: run("gradient", nodes, m)[1] for m in ("sympy", "numeric")}
    for method, report in reports.items():
        assert report.status == "disagree", (method, report.detail)
        assert {d["index"][0] for d in report.disagreements} == {0, 1, 2}
        assert report.disagreements[0]["source"] == "x"
        assert "DISAGREES" in report.detail
    assert sum("disagrees" in r.getMessage() for r in caplog.records) == 2


# ------------------------------------------------------------------ the seed


def test_seed_examples_agree_and_read_naturally() -> None:
    _, square = run("gradient", SEED_SQUARE)
    _, cube = run("hessian", SEED_CUBE)
    _, two = run("gradient", SEED_TWO)
    assert square.status == cube.status == two.status == "agree"
    assert square.symbolic == {"gradients": {"x": "2*x"}}
    assert cube.symbolic == {"gradients": {"x": "3*x**2"}, "hessian": {"x": {"x": "6*x"}}}
    assert cube.latex["hessian"] == {"x": {"x": "6 x"}}
    assert two.symbolic == {"gradients": {"x": "2*x", "y": "3*y**2"}}
    assert square.max_abs_error == 0.0 and square.tolerance == LIMITS.sympy_rtol


def test_auto_uses_sympy_for_the_seed_and_numeric_for_larger_tensors() -> None:
    assert run("gradient", SEED_TWO, "auto")[1].method == "sympy"
    big = [var("w", np.linspace(-1, 1, 100)), node("t", "tanh", "w"), node("L", "sum", "t")]
    report = run("gradient", big, "auto")[1]
    assert (report.method, report.status) == ("numeric", "agree")
    assert "over SymPy's limit" in report.detail


def test_auto_gives_up_on_graphs_too_large_for_either() -> None:
    tight = CheckLimits(sympy_max_elements=4, numeric_max_elements=10)
    big = [var("w", np.ones(50)), node("t", "tanh", "w"), node("L", "sum", "t")]
    report = run("gradient", big, "auto", tight)[1]
    assert (report.method, report.status) == ("none", "skipped")
    assert "too large" in report.detail


def test_an_explicit_numeric_check_keeps_to_finite_differences_memory_and_work_lines() -> None:
    """Asked for by name, finite differences are not held to auto's lines on sources (a
    30-source Hessian is checked), but a graph whose values they would copy past the
    memory line, or whose runs pass the work line, is skipped saying so, not run."""
    wide = [var("w", np.linspace(-1, 1, 30)), node("t", "tanh", "w"),
            node("s", "mul", "t", "t"), node("L", "sum", "s")]
    report = run("hessian", wide, "numeric")[1]
    assert (report.method, report.status) == ("numeric", "agree")
    tight = CheckLimits(numeric_max_values=50, numeric_seconds=60.0)
    report = run("hessian", wide, "numeric", tight)[1]
    assert (report.method, report.status) == ("numeric", "skipped")
    assert "91 elements in the graph's values, over finite differences' limit of 50" in (
        report.detail)
    busy = CheckLimits(numeric_max_work=1000, numeric_seconds=60.0)
    report = run("gradient", wide, "numeric", busy)[1]
    assert (report.method, report.status) == ("numeric", "skipped")
    assert "forward runs" in report.detail
    no_sympy = CheckLimits(numeric_max_values=50, sympy_max_elements=4)
    report = run("gradient", wide, "auto", no_sympy)[1]  # auto keeps the memory line too
    assert (report.method, report.status) == ("none", "skipped")
    assert "elements in the graph's values" in report.detail


def test_check_none_costs_nothing() -> None:
    _, report = run("gradient", SEED_SQUARE, "none")
    assert (report.method, report.status) == ("none", "skipped")


def test_check_none_starts_no_worker_and_imports_no_checker() -> None:
    code = (
        "import multiprocessing, sys\n"
        "from engine.check import verify\n"
        "from engine.derive import derivatives\n"
        "from engine.derive.kinds import GRADIENT\n"
        "from engine.derive.query import Query\n"
        "from engine.graphs.build import build_graph\n"
        "g = build_graph([{'id': 'x', 'op': 'variable', 'value': 3.0},\n"
        "                 {'id': 'y', 'op': 'pow', 'inputs': ['x', 2]}])\n"
        "q = Query(graph=g)\n"
        "r = derivatives.gradient(q)\n"
        "assert verify.check(GRADIENT, q, r, 'none').method == 'none'\n"
        "checkers = ('symbolic', 'sympy_job', 'sympy_pool', 'sympy_process',\n"
        "            'finite_differences')\n"
        "loaded = {f'engine.check.{m}' for m in checkers} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
        "assert not multiprocessing.active_children()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ------------------------------------------------------------------ budgets


@pytest.fixture
def warm_pool() -> sympy_pool.Pool:
    pool = sympy_pool.get_pool()
    pool.start()
    run("gradient", SEED_SQUARE)  # the worker is up and warm
    return pool


def test_slow_sympy_times_out_its_worker_is_replaced_and_the_next_check_runs(
    warm_pool: sympy_pool.Pool,
) -> None:
    before = warm_pool.pids()
    # an overrun, not a refusal: the job is hundreds of budgets' worth (see sympy_plan)
    budget = CheckLimits(sympy_seconds=0.5, sympy_refuse_budgets=10**6)
    start = time.monotonic()
    result, report = run("gradient", squares_chain(14), "sympy", budget)
    assert time.monotonic() - start < 0.5 + 1.5
    assert report.status == "timeout" and "budget" in report.detail
    assert result.gradients is not None and result.gradients["x"] is not None  # tape intact
    assert warm_pool.pids() != before
    assert run("gradient", SEED_CUBE)[1].status == "agree"


def test_auto_falls_back_to_numeric_when_sympy_overruns(warm_pool: sympy_pool.Pool) -> None:
    budget = CheckLimits(sympy_seconds=0.5, sympy_max_work=10**15)
    report = run("gradient", squares_chain(14), "auto", budget)[1]
    assert (report.method, report.status) == ("numeric", "agree")
    assert report.detail.startswith("SymPy: SymPy ran past its budget")


# ------------------------------------------------------------------ TF's semantics


def test_unwatched_source_is_none_by_design_and_not_compared() -> None:
    nodes = [var("x", 2.0), {"id": "c", "op": "constant", "value": 5.0},
             node("y", "mul", "x", "c")]
    for method in ("sympy", "numeric"):
        result, report = run("gradient", nodes, method, sources=["x", "c"])
        assert result.gradients["c"] is None
        assert report.status == "agree" and "not watched" in report.detail
        assert "c" not in report.symbolic.get("gradients", {})
    watched = run("gradient", nodes, sources=["x", "c"], watch=["c"])[1]
    assert watched.status == "agree" and watched.symbolic["gradients"]["c"] == "x"


@pytest.mark.parametrize("mode", ["none", "zero"])
def test_unconnected_source_is_compared_with_zero(mode: str) -> None:
    nodes = [var("x", 2.0), var("u", 1.0), node("y", "sin", "x")]
    for method in ("sympy", "numeric"):
        result, report = run("gradient", nodes, method, unconnected_gradients=mode)
        assert (result.gradients["u"] is None) == (mode == "none")
        assert report.status == "agree", report.detail


def test_stop_gradient_and_floor_are_constants_for_both_methods() -> None:
    nodes = [var("x", [1.5, -0.7]), node("c", "stop_gradient", "x"), node("f", "floor", "x"),
             node("p", "mul", "x", "c"), node("q", "mul", "p", "f"), node("L", "sum", "q")]
    for method in ("sympy", "numeric"):
        assert run("gradient", nodes, method)[1].status == "agree"


def test_inner_node_source_is_checked_as_tf_defines_it() -> None:
    nodes = [var("x", 3.0), node("s", "pow", "x", 2), node("z", "mul", "s", "x")]
    for method in ("sympy", "numeric"):
        result, report = run("gradient", nodes, method, sources=["s", "x"])
        assert report.status == "agree", report.detail


def test_list_targets_and_output_gradients() -> None:
    nodes = [var("x", [0.5, 1.5]), node("a", "exp", "x"), node("b", "sin", "x")]
    weights = {"a": [2.0, -1.0]}
    for method in ("sympy", "numeric"):
        report = run("gradient", nodes, method, target=["a", "b"], output_gradients=weights)[1]
        assert report.status == "agree", report.detail


def test_jacobian_and_evaluate_agree() -> None:
    rng = np.random.default_rng(3)
    nodes = [var("w", rng.uniform(-1, 1, (2, 3))), var("x", rng.uniform(-1, 1, 3)),
             node("h", "matmul", "w", "x"), node("t", "tanh", "h")]
    for method in ("sympy", "numeric"):
        for kind in ("jacobian", "evaluate"):
            report = run(kind, nodes, method)[1]
            assert report.status == "agree", (kind, method, report.detail)
    assert run("jacobian", nodes)[1].symbolic["jacobian"]["t"]["x"][0][0].startswith("w_0_0*")


def test_hessian_of_a_tensor_graph_agrees() -> None:
    rng = np.random.default_rng(4)
    nodes = [var("w", rng.uniform(-1, 1, (2, 3))), var("x", rng.uniform(-1, 1, 3)),
             node("h", "matmul", "w", "x"), node("t", "tanh", "h"), node("L", "sum", "t")]
    for method in ("sympy", "numeric"):
        report = run("hessian", nodes, method)[1]
        assert report.status == "agree", (method, report.detail)
        # gradients, every block of the Hessian, then every entry of the matrix
        assert report.compared == 6 + 3 + 81 + 81


def test_nan_on_both_sides_is_left_out_not_called_agreement() -> None:
    """sqrt(-1) is undefined, but sqrt(x**4 + y**4) at 0 has slope 0 where the tape's
    formula and SymPy's are both 0/0: a NaN matched by a NaN vouches for nothing."""
    for nodes in ([var("x", -1.0), node("r", "sqrt", "x")],
                  [var("x", 0.0), var("y", 0.0), node("x4", "pow", "x", 4),
                   node("y4", "pow", "y", 4), node("s", "add", "x4", "y4"),
                   node("r", "sqrt", "s")]):
        result, report = run("gradient", nodes)
        assert np.isnan(result.gradients["x"])
        assert report.status == "skipped" and report.compared == 0, report.detail
        assert "left out" in report.detail and "neither formula gives a number" in report.detail
    report = run("evaluate", [var("x", -1.0), node("r", "sqrt", "x")])[1]
    assert report.status == "skipped" and report.compared == 0
    # the other entries are still compared, and the status is theirs
    result, report = run("gradient", [var("x", -1.0), var("z", 2.0), node("r", "sqrt", "x"),
                                      node("t", "mul", "z", "z"), node("L", "add", "r", "t")])
    assert result.gradients["z"] == 4.0 and np.isnan(result.gradients["x"])
    assert report.status == "agree" and report.compared == 1, report.detail  # dL/dz


def test_a_formula_that_leaves_the_reals_gives_no_reference_and_vouches_for_nothing(
) -> None:
    """acosh's derivative at -2 is 1/(sqrt(-3)*sqrt(-1)), a real -0.577 to SymPy, where TF's
    and the tape's real arithmetic give NaN: no reference there, so no disagreement; a
    NaN elsewhere still disagrees with a real reference."""
    result, report = run("gradient", [var("x", -2.0), node("a", "acosh", "x")])
    assert np.isnan(result.gradients["x"])
    assert (report.status, report.compared) == ("skipped", 0), report.detail
    assert "undefined" in report.detail
    nan_rule = lambda _ans, _x: lambda g: (g * np.nan,)  # noqa: E731
    summed = [var("x", -2.0), var("y", 0.5), var("z", 3.0), node("a", "acosh", "x"),
              node("s", "sin", "y"), node("q", "mul", "z", "z")]
    row = [var("x", [-2.0, 2.0]), var("y", 0.5), node("a", "acosh", "x"),
           node("s", "sin", "y"), node("t", "add", "a", "s")]
    with wrong_vjp(OPS["sin"], nan_rule):
        report = run("gradient", summed, target=["a", "s", "q"])[1]
        assert report.status == "disagree", report.detail  # y's NaN against cos(0.5)
        report = run("jacobian", row, target="t")[1]
        assert report.status == "disagree", report.detail


def test_a_kink_follows_the_tape_convention_without_disagreeing() -> None:
    nodes = [var("a", [1.0, 2.0]), var("b", [1.0, 0.0]), node("m", "maximum", "a", "b"),
             node("r", "relu", "b"), node("s", "add", "m", "r"), node("L", "sum", "s")]
    for method in ("sympy", "numeric"):
        report = run("gradient", nodes, method)[1]
        assert report.status == "agree", (method, report.detail)


def test_a_tape_that_loses_a_path_is_caught() -> None:
    with wrong_vjp(OPS["exp"], lambda _ans, _x: lambda _g: (None,)):
        nodes = [var("x", 0.5), node("e", "exp", "x")]
        reports = {m: run("gradient", nodes, m)[1] for m in ("sympy", "numeric")}
    assert reports["sympy"].status == reports["numeric"].status == "disagree"
    assert "not identically 0: exp(x)" in reports["sympy"].disagreements[0]["reason"]


@pytest.mark.slow
def test_auto_check_answers_within_four_times_an_unchecked_request(client: Any) -> None:
    body = {"graph": {"nodes": SEED_SQUARE}}

    def median_seconds(method: str) -> float:
        times = []
        for _ in range(60):
            start = time.perf_counter()
            response = client.post("/v1/gradient", json={**body, "check": method})
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
        return float(np.median(times))

    for method in ("none", "auto"):  # warm both paths and the worker's cache
        median_seconds(method)
    assert client.post("/v1/gradient", json=body).json()["check"]["method"] == "sympy"
    assert median_seconds("auto") < 4 * median_seconds("none")


def test_a_local_only_check_never_differences_or_waits() -> None:
    """On an event loop (``local_only``) finite differences are refused before they run,
    and SymPy's answer comes only from a structure compiled here (shared_checks)."""
    from engine.check.shared_checks import NotLocal
    from engine.derive import derivatives

    g = build_graph([{"id": "x", "op": "variable", "value": 0.7},
                     {"id": "y", "op": "sin", "inputs": ["x"]},
                     {"id": "z", "op": "mul", "inputs": ["y", 123.25]}])
    q = Query(graph=g)
    r = derivatives.gradient(q)
    for method in ("numeric", "sympy", "auto"):
        with pytest.raises(NotLocal):
            check(KINDS["gradient"], q, r, method, local_only=True)
    assert check(KINDS["gradient"], q, r, "none", local_only=True).status == "skipped"
