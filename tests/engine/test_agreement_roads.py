"""The tally's two roads to one verdict: a few finite entries are compared on Python floats
(``Tally._add_few``), the rest with numpy; on the same entries both must say the same."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.check.agreement import FEW_ENTRIES, Tally


def _tallies(rtol: float, atol: float) -> tuple[Tally, Tally]:
    return Tally(rtol, atol, cap=5, sources=["x"]), Tally(rtol, atol, cap=5, sources=["x"])


def _state(t: Tally) -> dict:
    return {k: v for k, v in vars(t).items() if k != "sources"}


def _entries(rng: np.random.Generator, shape: tuple[int, ...], rtol: float) -> tuple:
    """A tape and a reference that agree, sit at the tolerance's edge, or disagree."""
    ref = rng.normal(size=shape) * 10.0 ** rng.integers(-12, 12, size=shape)
    kind = rng.integers(0, 5, size=shape)
    scale = np.abs(ref)
    tape = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3],
        [ref, ref + scale * rtol * 0.999, ref + scale * rtol * 1.001, -ref],
        ref * (1 + 1e-3),
    )
    return tape, ref


@pytest.mark.parametrize("seed", range(40))
def test_python_floats_and_numpy_give_one_tally(seed):
    rng = np.random.default_rng(seed)
    rtol, atol = 10.0 ** -rng.integers(4, 12), 10.0 ** -rng.integers(8, 15)
    fast, slow = _tallies(rtol, atol)
    for i in range(4):
        shape = tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3))))
        tape, ref = _entries(rng, shape, rtol)
        extra = float(rng.choice([0.0, atol * 3]))
        fast.add(("gradients", f"s{i}"), tape, ref, extra=extra)
        # a mask of no skipped entry: the same question, asked the numpy way
        slow.add(("gradients", f"s{i}"), tape, ref, extra=extra,
                 skip=np.zeros(np.shape(ref), bool))
    assert _state(fast) == _state(slow)
    assert fast.compared > 0


def test_few_entries_take_the_float_road_and_others_numpy(monkeypatch):
    """The fast road is taken where it may be (else this file tests one road twice), and
    left for a non-finite entry, a mask, an array of extras or many entries."""
    taken: list[bool] = []
    real = Tally._add_few

    def spy(self, *args):
        answered = real(self, *args)
        taken.append(answered)
        return answered

    monkeypatch.setattr(Tally, "_add_few", spy)
    t = Tally(1e-9, 1e-12, cap=5)
    t.add(("gradients", "x"), np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    t.add(("gradients", "x"), np.array([np.nan, 2.0]), np.array([np.nan, 2.0]))
    t.add(("gradients", "x"), np.array(np.inf), np.array(np.inf))
    assert taken == [True, False, False]
    t.add(("gradients", "x"), np.ones(FEW_ENTRIES + 1), np.ones(FEW_ENTRIES + 1))
    t.add(("gradients", "x"), np.ones(2), np.ones(2), skip=np.zeros(2, bool))
    t.add(("gradients", "x"), np.ones(2), np.ones(2), extra=np.zeros(2))
    assert taken == [True, False, False]
    # NaN against NaN is left out, not compared
    assert (t.compared, t.bad, t.skipped) == (2 + 1 + 1 + FEW_ENTRIES + 1 + 2 + 2, 0, 1)


def test_a_disagreement_is_named_alike_on_both_roads():
    fast, slow = _tallies(1e-9, 1e-12)
    tape, ref = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.5], [3.0, 4.0]])
    fast.add(("gradients", "x"), tape, ref)
    slow.add(("gradients", "x"), tape, ref, skip=np.zeros((2, 2), bool))
    assert fast.disagreements == slow.disagreements
    assert fast.disagreements[0]["index"] == [0, 1] and fast.bad == 1
    report = dataclasses.asdict(fast.report("sympy", "SymPy's derivative"))
    assert report["status"] == "disagree"
