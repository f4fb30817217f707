"""A gradient with no tape (engine.graphs.untaped) gives the tape's answer bit for bit, and
so does an evaluation: for every op and case, with every input a source, some inputs
watched but not asked for, an op node among the sources, a constant leaf or an inline
constant among the inputs, a weighted non-scalar target and a summed scalar one; and
TF's semantics of what is watched and connected, with the tape's notes on why a source
gets no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.derive import derivatives
from engine.derive.query import Query, Result
from engine.graphs import untaped as untaped_mod
from engine.graphs.build import build_graph
from engine.ops import OPS
from engine.ops.registry import Case, OpDef
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs

MODES = ("variables", "first-source", "op-source", "op-source-alone", "constant-leaf", "inline")


@pytest.fixture
def untaped(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kind of each computation since that ran with no tape."""
    ran: list[str] = []
    real_gradient, real_run = derivatives._untaped_gradient, derivatives._run_untaped

    def gradient(*args: Any) -> Result:
        ran.append("gradient")
        return real_gradient(*args)

    def run(s: Any) -> list:
        ran.append("run")
        return real_run(s)

    monkeypatch.setattr(derivatives, "_untaped_gradient", gradient)
    monkeypatch.setattr(derivatives, "_run_untaped", run)
    return ran


def taped(q: Query, monkeypatch: pytest.MonkeyPatch, kind: Any = None) -> Result:
    """``derivatives.gradient`` (or ``kind``) on the tape's road alone."""
    with monkeypatch.context() as m:
        m.setattr(derivatives, "_untaped", lambda _s: False)
        return (kind or derivatives.gradient)(q)


def assert_same(got: Result, want: Result) -> None:
    """Equal bit for bit: outputs, gradients (None where None), notes."""
    assert got.outputs.keys() == want.outputs.keys()
    for k, v in want.outputs.items():
        np.testing.assert_array_equal(got.outputs[k], v, err_msg=k)
    assert (got.gradients is None) == (want.gradients is None)
    assert list(got.gradients or {}) == list(want.gradients or {})
    for k, v in (want.gradients or {}).items():
        if v is None:
            assert got.gradients[k] is None, k
        else:
            assert got.gradients[k] is not None, k
            np.testing.assert_array_equal(got.gradients[k], v, err_msg=k)
            assert np.shape(got.gradients[k]) == np.shape(v), k
    assert [(n.reason, n.detail, n.node, n.source) for n in got.notes] == [
        (n.reason, n.detail, n.node, n.source) for n in want.notes]


def _graph_and_queries(op: OpDef, case: Case, mode: str) -> tuple[list[dict], list[dict]]:
    """y = op(x0, ...), yy = y * y, t = sum(yy); queries for y (weighted) and t."""
    rng = rng_for(op, case, "untaped")
    inputs = sample_inputs(op, case, rng)
    nodes: list[dict[str, Any]] = []
    refs: list[Any] = []
    for i, x in enumerate(inputs):
        value = np.asarray(x, dtype=float).tolist()
        if mode == "inline" and i == len(inputs) - 1 and len(inputs) > 1:
            refs.append(value)  # written inline among the node's inputs
            continue
        leaf = "constant" if mode == "constant-leaf" and i == 0 and len(inputs) > 1 else "variable"
        nodes.append({"id": f"x{i}", "op": leaf, "value": value})
        refs.append(f"x{i}")
    nodes += [
        {"id": "y", "op": op.name, "inputs": refs, "attrs": dict(case.attrs)},
        {"id": "yy", "op": "mul", "inputs": ["y", "y"]},
        {"id": "t", "op": "sum", "inputs": ["yy"]},
    ]
    variables = [n["id"] for n in nodes if n["op"] == "variable"]
    sources = {"first-source": variables[:1], "op-source": ["y", *variables[:1]],
               "op-source-alone": ["y"]}.get(mode)
    shape = np.shape(op.forward(*inputs, **op.normalize_attrs(case.attrs)))
    weight = rng.standard_normal(shape).tolist()
    queries = [{"target": "y", "output_gradients": {"y": weight}, "sources": sources},
               {"target": "t", "sources": sources}]
    return nodes, queries


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("op", "case"), op_cases())
def test_every_op_gives_the_tapes_gradient_with_no_tape(
    op: OpDef, case: Case, mode: str, monkeypatch: pytest.MonkeyPatch, untaped: list[str]
) -> None:
    nodes, queries = _graph_and_queries(op, case, mode)
    graph = build_graph(nodes)
    for kw in queries:
        q = Query(graph, **kw)
        assert_same(derivatives.gradient(q), taped(q, monkeypatch))
    q = Query(graph, target=["y", "t"])
    assert_same(derivatives.evaluate(q), taped(q, monkeypatch, derivatives.evaluate))
    assert untaped == ["gradient", "run", "gradient", "run", "run"]


def _chain(**variable: Any) -> list[dict[str, Any]]:
    return [
        {"id": "x", "op": "variable", "value": 0.5, **variable},
        {"id": "w", "op": "variable", "value": 0.9},
        {"id": "c", "op": "constant", "value": 2.0},
        {"id": "s", "op": "sin", "inputs": ["x"]},
        {"id": "m", "op": "mul", "inputs": ["s", "w"]},
        {"id": "a", "op": "add", "inputs": ["m", 0.1]},
        {"id": "p", "op": "pow", "inputs": ["a", "c"]},
        {"id": "d", "op": "div", "inputs": [1.5, "p"]},
        {"id": "q", "op": "mul", "inputs": ["d", "d"]},
        {"id": "k", "op": "exp", "inputs": ["c"]},
        {"id": "z", "op": "mul", "inputs": ["q", "k"]},
    ]


@pytest.mark.parametrize(
    ("variable", "kw"),
    [
        ({}, {}),
        ({}, {"sources": ["x", "x", "w"]}),  # a source named twice gets it twice
        ({}, {"sources": ["w"]}),  # x watched, not asked for: its path is skipped
        ({}, {"target": ["q", "d", "q"]}),  # targets summed, one named twice
        ({}, {"output_gradients": {"z": 3.0}}),
        ({}, {"watch": ["c"], "sources": ["x", "c"]}),  # a watched constant
        ({}, {"sources": ["x", "c"]}),  # an unwatched constant: None, and why
        ({}, {"sources": ["c"], "unconnected_gradients": "zero"}),
        ({"trainable": False}, {"sources": ["x", "w"]}),
        ({}, {"watch_accessed_variables": False, "watch": ["w"], "sources": ["x", "w"]}),
        ({}, {"watch_accessed_variables": False, "watch": ["x", "w"]}),
        ({}, {"target": "x", "sources": ["x"]}),  # read by sin: watched
        ({}, {"target": "c", "sources": ["x"]}),  # not connected
        # op nodes as sources: held when they read a watched leaf, at some remove
        ({}, {"sources": ["s", "x", "m"]}),
        ({}, {"sources": ["k", "x"]}),  # k reads only an unwatched constant: not held
        ({}, {"watch": ["c"], "sources": ["k", "x", "c"]}),
        ({}, {"target": "s", "sources": ["s", "x"]}),
        ({}, {"target": ["q", "s"], "sources": ["d", "s"], "output_gradients": {"s": 2.0}}),
    ],
)
def test_tf_semantics_hold_on_both_roads(
    variable: dict, kw: dict, monkeypatch: pytest.MonkeyPatch, untaped: list[str]
) -> None:
    q = Query(build_graph(_chain(**variable)), **kw)
    assert_same(derivatives.gradient(q), taped(q, monkeypatch))
    assert untaped == ["gradient", "run"]


def test_a_variable_no_op_reads_is_not_watched_even_as_its_own_target(
    monkeypatch: pytest.MonkeyPatch, untaped: list[str]
) -> None:
    """TF: ``tape.gradient(v, v)`` for a variable nothing read while recording is None."""
    graph = build_graph([
        {"id": "v", "op": "variable", "value": 1.0},
        {"id": "x", "op": "variable", "value": 2.0},
        {"id": "y", "op": "sin", "inputs": ["x"]},
    ])
    q = Query(graph, target="v", sources=["v"])
    got = derivatives.gradient(q)
    assert got.gradients == {"v": None}
    assert_same(got, taped(q, monkeypatch))
    assert [n.reason for n in got.notes] == ["not_watched"]


def test_non_finite_values_and_kinks_give_the_same_notes(
    monkeypatch: pytest.MonkeyPatch, untaped: list[str]
) -> None:
    graph = build_graph([
        {"id": "x", "op": "variable", "value": [0.0, -1.0, 2.0]},
        {"id": "r", "op": "relu", "inputs": ["x"]},
        {"id": "l", "op": "log", "inputs": ["r"]},
        {"id": "t", "op": "sum", "inputs": ["l"]},
    ])
    q = Query(graph)
    got = derivatives.gradient(q)
    assert {n.reason for n in got.notes} >= {"non_finite", "kink"}
    assert_same(got, taped(q, monkeypatch))
    assert untaped == ["gradient", "run"]


def test_a_tape_open_around_the_call_records_it(untaped: list[str]) -> None:
    """With a tape recording (a caller's nested tapes), the tape's road runs, so that the
    outer tape records the gradient (higher orders)."""
    import engine as tf

    graph = build_graph(_chain())
    with tf.GradientTape():
        derivatives.gradient(Query(graph))
    assert untaped == []


def test_a_long_chain_is_swept_with_no_tape(monkeypatch: pytest.MonkeyPatch,
                                            untaped: list[str]) -> None:
    """The benchmark's shape (sin, mul by a variable, add a constant, repeated) past a few
    budget-check blocks; the same float64 answer as the tape's."""
    nodes: list[dict[str, Any]] = [{"id": "x", "op": "variable", "value": 0.25},
                                   {"id": "w", "op": "variable", "value": 0.95}]
    prev = "x"
    for k in range(1500):
        nodes += [{"id": f"s{k}", "op": "sin", "inputs": [prev]},
                  {"id": f"m{k}", "op": "mul", "inputs": [f"s{k}", "w"]},
                  {"id": f"a{k}", "op": "add", "inputs": [f"m{k}", 0.1]}]
        prev = f"a{k}"
    q = Query(build_graph(nodes), values={"x": 0.3})
    assert_same(derivatives.gradient(q), taped(q, monkeypatch))
    assert untaped == ["gradient", "run"]


def test_watched_reads_the_graph_as_a_tape_would() -> None:
    graph = build_graph(_chain())
    assert untaped_mod.watched(graph, "x", (), True)
    assert not untaped_mod.watched(graph, "c", (), True)
    assert untaped_mod.watched(graph, "c", ("c",), True)
    assert not untaped_mod.watched(graph, "x", (), False)


def test_an_unknown_unconnected_gradients_mode_is_refused_as_the_tape_refuses_it() -> None:
    q = Query(build_graph(_chain()), unconnected_gradients="zeros")
    with pytest.raises(ValueError, match="zeros"):
        derivatives.gradient(q)


def _count_rules(calls: list) -> dict[str, Any]:
    """Every op's rule, counted as (op, needs) each time a sweep calls it; the rules it
    replaced, to put back (an OpDef is frozen: set past its guard)."""
    saved = {}
    for op in OPS.values():
        if op.rule is None:
            continue
        saved[op.name] = op.rule

        def counted(g: Any, needs: Any, *args: Any, _rule: Any = op.rule, _name: str = op.name,
                    **attrs: Any) -> Any:
            calls.append((_name, tuple(needs)))
            return _rule(g, needs, *args, **attrs)

        object.__setattr__(op, "rule", counted)
    return saved


@pytest.mark.parametrize("sources", [["m"], ["w"], ["b"], ["x"], ["b", "m"]])
def test_rules_run_only_where_the_tape_runs_them(sources: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Above an op node asked for as a source nothing is on a path from a source: the tape
    runs no rule there, and neither does the sweep with no tape (its work would grow with
    everything upstream of the source)."""
    graph = build_graph([
        {"id": "x", "op": "variable", "value": 0.3},
        {"id": "c", "op": "constant", "value": 2.0},
        {"id": "e", "op": "exp", "inputs": ["c"]},
        {"id": "a", "op": "sin", "inputs": ["x"]},
        {"id": "b", "op": "sin", "inputs": ["a"]},
        {"id": "m", "op": "mul", "inputs": ["x", "e"]},
        {"id": "w", "op": "where", "inputs": [1.0, "b", "m"]},
        {"id": "t", "op": "mul", "inputs": ["w", "m"]},
    ])
    q = Query(graph, sources=sources)
    calls: list = []
    saved = _count_rules(calls)
    try:
        got = derivatives.gradient(q)
        untaped_calls, calls[:] = list(calls), []
        want = taped(q, monkeypatch)
        taped_calls = list(calls)
    finally:
        for name, rule in saved.items():
            object.__setattr__(OPS[name], "rule", rule)
    assert_same(got, want)
    assert untaped_calls == taped_calls


def test_large_cotangents_add_as_on_the_tape(monkeypatch: pytest.MonkeyPatch,
                                             untaped: list[str]) -> None:
    """A 20,000-element leaf read by several ops: its cotangents (past IN_PLACE_MIN) are
    summed into one another's memory on both roads, to the same bits."""
    rng = np.random.default_rng(5)
    nodes: list[dict[str, Any]] = [{"id": "x", "op": "variable",
                                    "value": rng.standard_normal(20_000).tolist()}]
    nodes += [{"id": f"m{i}", "op": "mul", "inputs": ["x", float(i) + 0.5]} for i in range(6)]
    nodes += [{"id": "s", "op": "add_n", "inputs": [f"m{i}" for i in range(6)]},
              {"id": "q", "op": "mul", "inputs": ["s", "s"]},
              {"id": "t", "op": "sum", "inputs": ["q"]}]
    q = Query(build_graph(nodes))
    assert_same(derivatives.gradient(q), taped(q, monkeypatch))
    # add's rule gives both inputs one array: r, p and q then hold the same cotangent, and
    # r's rule adds into p's; summed in place, q's would change too (nothing may be)
    aliased = build_graph([
        nodes[0],
        {"id": "p", "op": "mul", "inputs": ["x", 2.0]},
        {"id": "q", "op": "mul", "inputs": ["x", 3.0]},
        {"id": "r", "op": "mul", "inputs": ["p", 4.0]},
        {"id": "s", "op": "add", "inputs": ["p", "q"]},
        {"id": "f", "op": "add", "inputs": ["s", "r"]},
        {"id": "t", "op": "sum", "inputs": ["f"]},
    ])
    q = Query(aliased)
    got = derivatives.gradient(q)
    assert_same(got, taped(q, monkeypatch))
    np.testing.assert_array_equal(got.gradients["x"], np.full(20_000, 2.0 + 3.0 + 8.0))
    assert untaped == ["gradient", "run", "gradient", "run"]


@pytest.mark.parametrize("seed", [np.inf, -np.inf, np.nan, 0.0])
def test_empty_arrays_and_non_finite_seeds(seed: float, monkeypatch: pytest.MonkeyPatch,
                                           untaped: list[str]) -> None:
    graph = build_graph([
        {"id": "e", "op": "variable", "value": []},
        {"id": "x", "op": "variable", "value": [1.0, -2.0]},
        {"id": "se", "op": "sin", "inputs": ["e"]},
        {"id": "y", "op": "mul", "inputs": ["x", "x"]},
        {"id": "t", "op": "add", "inputs": ["y", 1.0]},
    ])
    q = Query(graph, target=["t", "se"], output_gradients={"t": [seed, 1.0], "se": []})
    got = derivatives.gradient(q)
    assert_same(got, taped(q, monkeypatch))
    assert untaped == ["gradient", "run"]
