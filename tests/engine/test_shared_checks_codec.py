"""The shared check structure's wire form: smooth SymPy trees as JSON, read without running
anything it carries (no pickle, no ``sympify``); what it does not know is refused."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import sympy as sp

from engine.check import shared_checks
from engine.check.shared_checks import Compiled


def _structure(exprs: list, defs: list | None = None) -> bytes:
    x, w0, w1 = sp.Symbol("x", real=True), sp.Symbol("w_0", real=True), sp.Symbol("w_1", real=True)
    leaves = {"x": np.array(x, dtype=object), "w": np.array([w0, w1], dtype=object)}
    quantities = {("gradients", "x"): np.array(exprs, dtype=object)}
    return shared_checks.export(
        quantities,
        {("gradients", "x"): False},
        defs or [],
        leaves,
        {"gradients": {"x": "..."}},
        {"gradients": {"x": "..."}},
    )


def test_a_smooth_structure_round_trips_to_the_numbers_sympy_gives():
    x, w0, w1 = sp.symbols("x w_0 w_1", real=True)
    exprs = [
        sp.exp(-(x**2)) * sp.atan2(w0, w1) + sp.Rational(3, 7) * sp.pi,
        sp.log(1 + w1**2) / sp.cosh(x) + sp.Float(0.125) * sp.E**w0,
    ]
    compiled = Compiled.load(_structure(exprs))
    values = {"x": 0.3, "w": [1.5, -0.7]}
    got = compiled.evaluate(values)["values"]["gradients"]["x"]
    want = [float(e.subs({x: 0.3, w0: 1.5, w1: -0.7})) for e in exprs]
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_a_structure_with_a_function_outside_the_smooth_set_is_left_to_the_worker():
    x = sp.Symbol("x", real=True)
    compiled = Compiled.load(_structure([sp.Abs(x), x]))
    assert compiled.function is None
    assert compiled.evaluate({"x": 1.0, "w": [0.0, 0.0]}) is None


@pytest.mark.parametrize(
    "tree",
    [
        ["__import__", ["s", "x"]],
        ["eval", ["f", 1.0]],
        ["Symbol", "x"],
        ["s", "not_a_leaf"],
        ["n", 1, 0],
        ["f", "1e3"],
        "x + 1",
        [],
    ],
)
def test_a_tree_it_does_not_know_is_refused(tree):
    blob = json.loads(_structure([sp.Symbol("x", real=True)]))
    blob["entries"][0][2] = [tree]
    with pytest.raises((ValueError, KeyError)):
        Compiled.load(json.dumps(blob).encode())


def test_a_pickled_blob_is_refused_not_unpickled():
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    with pytest.raises(ValueError):
        Compiled.load(pickle.dumps({"v": 2, "x": Boom()}))


def test_a_leaf_named_like_code_stays_a_name():
    odd = sp.Symbol("x); import os; os.system('true'", real=True)
    leaves = {"x": np.array(odd, dtype=object)}
    blob = shared_checks.export(
        {("outputs", "t"): np.array([odd**2], dtype=object)}, {}, [], leaves, {}, {}
    )
    compiled = Compiled.load(blob)
    assert compiled.evaluate({"x": 3.0})["values"]["outputs"]["t"].tolist() == [9.0]


def test_a_local_only_reply_comes_from_a_structure_compiled_here_or_not_at_all(monkeypatch):
    """``local_only`` (a caller on an event loop): the compiled structure's numbers, the
    same a later ordinary call gives; NotLocal, with nothing waited on, for a structure
    not compiled here, one the worker answers, or one too large to evaluate there."""
    from engine.lru import LRU

    monkeypatch.setattr(shared_checks, "_local", LRU(shared_checks.LOCAL_SIZE))
    x = sp.Symbol("x", real=True)
    blob = _structure([sp.sin(x) * x, x**2])
    job = {"values": {"x": 0.5, "w": [0.0, 0.0]}}
    asked: list[dict] = []

    def worker(j: dict) -> dict:
        asked.append(j)
        return {"values": {}, "compiled": blob}

    with pytest.raises(shared_checks.NotLocal):
        shared_checks.reply(job, "k", worker, local_only=True)
    assert asked == []
    shared_checks.reply(job, "k", worker)  # the worker derives it and it is compiled here
    assert len(asked) == 1 and asked[0]["export"] is True
    local = shared_checks.reply(job, "k", worker, local_only=True)
    assert len(asked) == 1
    np.testing.assert_allclose(local["values"]["gradients"]["x"], [np.sin(0.5) * 0.5, 0.25])
    monkeypatch.setattr(shared_checks, "LOCAL_ONLY_MAX_TREE", 0)
    with pytest.raises(shared_checks.NotLocal):
        shared_checks.reply(job, "k", worker, local_only=True)
    shared_checks._remember(shared_checks.digest("abs"), _structure([sp.Abs(x), x]))
    monkeypatch.setattr(shared_checks, "LOCAL_ONLY_MAX_TREE", 10**9)
    with pytest.raises(shared_checks.NotLocal):  # not smooth: the worker's, always
        shared_checks.reply(job, "abs", worker, local_only=True)
    assert len(asked) == 1
