"""Central finite differences of a graph, independent of the tape.

The graph is re-run forward with each op's plain numpy ``forward`` in
topological order; only the nodes downstream of the perturbed one are
recomputed. Stop_gradient and non-differentiable nodes keep their base value
under perturbation, as the tape treats them as constants.

Each first derivative is a Richardson extrapolation of central differences at
steps h and h/2 (h = eps^(1/3) * max(|x|, 1), per element), with an error
estimate from their gap plus rounding. One-sided differences classify each
entry: ``smooth``, ``kink`` (one-sided slopes differ: any value between them
is a valid convention) or ``jump`` (a discontinuity: no derivative to compare).
Second derivatives use the four-point formula at h = eps^(1/4) * max(|x|, 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.ops.registry import OPS

EPS = float(np.finfo(np.float64).eps)
STEP1 = EPS ** (1 / 3)  # optimal for a central first difference
STEP2 = EPS ** (1 / 4)  # optimal for a central second difference
LEAVES = ("variable", "constant")
NUMERIC_ORDERS = 2  # central differences are trusted up to here


class NumericTimeout(Exception):
    """The finite differences ran past their deadline."""


@dataclass
class Estimate:
    """Finite-difference values with a per-entry error estimate and shape class."""

    value: np.ndarray
    error: np.ndarray
    low: np.ndarray  # the smaller one-sided slope (equal to value where smooth)
    high: np.ndarray
    kink: np.ndarray  # bool: one-sided slopes differ
    jump: np.ndarray  # bool: discontinuous, no derivative


class Runner:
    """Forward runs of a job's graph, recomputing only what a perturbation changes."""

    def __init__(self, job: dict[str, Any], deadline: float | None = None):
        self.nodes = [
            (nid, op, [x if isinstance(x, str) else np.asarray(x, np.float64) for x in ins], at)
            for nid, op, ins, at in job["nodes"]
        ]
        self.frozen = set(job["frozen"])
        self.targets = list(job["targets"])
        self.weights = job.get("weights") or {}
        self.deadline = deadline
        self.base = self.run({k: np.asarray(v, np.float64) for k, v in job["values"].items()})

    def run(self, fixed: dict[str, np.ndarray], base: dict | None = None) -> dict[str, Any]:
        """Node values with ``fixed`` ones imposed; others recomputed if an input changed."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise NumericTimeout
        vals = dict(base) if base is not None else {}
        changed = set(fixed)
        vals.update(fixed)
        for nid, op, ins, attrs in self.nodes:
            if nid in fixed or op in LEAVES:
                continue
            if base is not None and (nid in self.frozen or not any(
                isinstance(x, str) and x in changed for x in ins
            )):
                continue
            args = [vals[x] if isinstance(x, str) else x for x in ins]
            vals[nid] = np.asarray(OPS[op].forward(*args, **attrs), dtype=np.float64)
            changed.add(nid)
        return vals

    def perturbed(self, node: str, flat_index: int, step: float) -> dict[str, Any]:
        x = np.array(self.base[node], dtype=np.float64)
        x.reshape(-1)[flat_index] += step
        return self.run({node: x}, self.base)

    def loss(self, vals: dict[str, Any]) -> np.ndarray:
        """The scalar the tape differentiates: targets summed, weighted by output_gradients."""
        total = 0.0
        for t in self.targets:
            w = self.weights.get(t)
            total += np.sum(vals[t] if w is None else vals[t] * np.asarray(w, np.float64))
        return np.array([total])


def first_derivatives(
    runner: Runner, source: str, f: Callable[[dict[str, Any]], np.ndarray]
) -> Estimate:
    """d f / d source for a vector-valued ``f``: shape ``f.shape + source.shape``."""
    x = np.asarray(runner.base[source], dtype=np.float64)
    f0 = f(runner.base)
    m, n = f0.size, x.size
    cols = {k: np.empty((m, n)) for k in ("value", "error", "low", "high", "kink", "jump")}
    for i in range(n):
        h = STEP1 * max(abs(float(x.reshape(-1)[i])), 1.0)
        fp, fm, fp2, fm2 = (f(runner.perturbed(source, i, s)) for s in (h, -h, h / 2, -h / 2))
        d1, d2 = (fp - fm) / (2 * h), (fp2 - fm2) / h
        rounding = 4 * EPS * np.maximum.reduce([abs(f0), abs(fp), abs(fm)]) / h
        fwd1, bwd1 = (fp - f0) / h, (f0 - fm) / h
        fwd2, bwd2 = 2 * (fp2 - f0) / h, 2 * (f0 - fm2) / h
        gap1, gap2 = abs(fwd1 - bwd1), abs(fwd2 - bwd2)
        size = np.maximum(1.0, np.maximum(abs(fwd2), abs(bwd2)))
        kink = (gap2 > 0.75 * gap1) & (gap2 > 1e-3 * size)  # a smooth gap halves with h
        jump = np.zeros(m, dtype=bool)
        for one, two in ((fwd1, fwd2), (bwd1, bwd2)):
            jump |= (abs(two) >= 1.5 * abs(one)) & (abs(two) * h / 2 > 1e-8 * (1 + abs(f0)))
        cols["value"][:, i] = (4 * d2 - d1) / 3
        cols["error"][:, i] = abs(d2 - d1) / 3 + rounding
        cols["low"][:, i] = np.minimum(fwd2, bwd2)
        cols["high"][:, i] = np.maximum(fwd2, bwd2)
        cols["kink"][:, i] = kink & ~jump
        cols["jump"][:, i] = jump
    shape = np.shape(f0) + x.shape
    out = {k: v.reshape(shape) for k, v in cols.items()}
    return Estimate(out["value"], out["error"], out["low"], out["high"],
                    out["kink"].astype(bool), out["jump"].astype(bool))


def gradients(runner: Runner, sources: list[str]) -> dict[str, Estimate]:
    """d(sum of targets)/d source, per source, of the source's shape."""
    out = {}
    for s in sources:
        est = first_derivatives(runner, s, runner.loss)
        shape = np.shape(runner.base[s])
        out[s] = Estimate(*(np.reshape(getattr(est, k), shape) for k in Estimate.__annotations__))
    return out


def jacobians(runner: Runner, sources: list[str]) -> dict[str, dict[str, Estimate]]:
    """d target / d source for each target and source, shape ``target.shape + source.shape``."""
    sizes = [np.size(runner.base[t]) for t in runner.targets]
    offs = np.cumsum([0, *sizes])

    def stacked(vals: dict[str, Any]) -> np.ndarray:
        return np.concatenate([np.ravel(vals[t]) for t in runner.targets])

    out: dict[str, dict[str, Estimate]] = {t: {} for t in runner.targets}
    for s in sources:
        est = first_derivatives(runner, s, stacked)
        for k, t in enumerate(runner.targets):
            shape = np.shape(runner.base[t]) + np.shape(runner.base[s])
            out[t][s] = Estimate(*(
                np.reshape(np.reshape(getattr(est, f), (offs[-1], -1))[offs[k]:offs[k + 1]],
                           shape)
                for f in Estimate.__annotations__
            ))
    return out


def hessian(runner: Runner, sources: list[str]) -> dict[str, dict[str, Estimate]]:
    """Second derivatives of the loss, four-point formula at steps h and h/2 (Richardson)."""
    flat = [(s, i) for s in sources for i in range(np.size(runner.base[s]))]
    steps = [STEP2 * max(abs(float(np.ravel(runner.base[s])[i])), 1.0) for s, i in flat]
    f0 = float(runner.loss(runner.base)[0])
    n = len(flat)
    value, error = np.empty((n, n)), np.empty((n, n))

    def at(offsets: list[tuple[int, float]]) -> float:
        fixed: dict[str, np.ndarray] = {}
        for k, d in offsets:
            s, i = flat[k]
            x = fixed.setdefault(s, np.array(runner.base[s], dtype=np.float64))
            x.reshape(-1)[i] += d
        return float(runner.loss(runner.run(fixed, runner.base))[0])

    for a in range(n):
        for b in range(a, n):
            est = []
            for scale in (1.0, 0.5):
                ha, hb = steps[a] * scale, steps[b] * scale
                if a == b:
                    d = (at([(a, ha)]) - 2 * f0 + at([(a, -ha)])) / (ha * ha)
                else:
                    d = (at([(a, ha), (b, hb)]) - at([(a, ha), (b, -hb)])
                         - at([(a, -ha), (b, hb)]) + at([(a, -ha), (b, -hb)])) / (4 * ha * hb)
                est.append(d)
            rounding = 16 * EPS * max(abs(f0), 1e-300) / (steps[a] * steps[b] / 4)
            value[a, b] = value[b, a] = (4 * est[1] - est[0]) / 3
            error[a, b] = error[b, a] = abs(est[1] - est[0]) / 3 + rounding
    out: dict[str, dict[str, Estimate]] = {si: {} for si in sources}
    offs = np.cumsum([0] + [np.size(runner.base[s]) for s in sources])
    for p, si in enumerate(sources):
        for q, sj in enumerate(sources):
            shape = np.shape(runner.base[si]) + np.shape(runner.base[sj])
            v = value[offs[p]:offs[p + 1], offs[q]:offs[q + 1]].reshape(shape)
            e = error[offs[p]:offs[p + 1], offs[q]:offs[q + 1]].reshape(shape)
            no = np.zeros(shape, dtype=bool)
            out[si][sj] = Estimate(v, e, v, v, no, no)
    return out


# ------------------------------------------------------------------ per quantity


def _outputs(runner: Runner, job: dict[str, Any], _notes: list[str]) -> dict[tuple, Estimate]:
    """The targets re-run by numpy: exact, no error estimate."""
    out = {}
    for t in job["targets"]:
        v = np.asarray(runner.base[t])
        no = np.zeros(v.shape, dtype=bool)
        out[("outputs", t)] = Estimate(v, np.zeros(v.shape), v, v, no, no)
    return out


def _gradients(runner: Runner, job: dict[str, Any], _notes: list[str]) -> dict[tuple, Estimate]:
    return {("gradients", s): est for s, est in gradients(runner, job["sources"]).items()}


def _jacobian(runner: Runner, job: dict[str, Any], _notes: list[str]) -> dict[tuple, Estimate]:
    return {("jacobian", t, s): est for t, row in jacobians(runner, job["sources"]).items()
            for s, est in row.items()}


def _hessian(runner: Runner, job: dict[str, Any], _notes: list[str]) -> dict[tuple, Estimate]:
    return {("hessian", si, sj): est for si, row in hessian(runner, job["sources"]).items()
            for sj, est in row.items()}


def _derivatives(runner: Runner, job: dict[str, Any], notes: list[str]
                 ) -> dict[tuple, Estimate]:
    """Orders 1 and 2 over scalar sources, shaped as the tape's tensors; the rest is noted."""
    sources, order = job["sources"], job["order"]

    def stacked(estimates: list[Estimate], j: int) -> Estimate:
        shape = (len(sources),) * j if len(sources) > 1 else ()
        return Estimate(*(np.reshape([np.ravel(getattr(e, f))[0] for e in estimates], shape)
                          for f in Estimate.__annotations__))

    first = gradients(runner, sources)
    out = {("derivatives", "1"): stacked([first[s] for s in sources], 1)}
    if order > 1:
        second = hessian(runner, sources)
        out[("derivatives", "2")] = stacked([second[a][b] for a in sources for b in sources], 2)
    if order > NUMERIC_ORDERS:
        above = range(NUMERIC_ORDERS + 1, order + 1)
        orders = f"order {above[0]}" if len(above) == 1 else f"orders {above[0]} to {above[-1]}"
        notes.append(f"{orders} not compared: finite differences beyond the second order "
                     "lose most of float64's digits (ask for check: sympy)")
    return out


def _laid_out(_runner: Runner, _job: dict[str, Any], _notes: list[str]
              ) -> dict[tuple, Estimate]:
    """A laid-out Hessian (matrix, sparse) is compared with the Hessian's estimates,
    gathered: nothing of its own to estimate."""
    return {}


ESTIMATES: dict[str, Callable[[Runner, dict[str, Any], list[str]], dict[tuple, Estimate]]] = {
    "outputs": _outputs,
    "gradients": _gradients,
    "jacobian": _jacobian,
    "hessian": _hessian,
    "derivatives": _derivatives,
    "matrix": _laid_out,
    "sparse": _laid_out,
}
"""Each quantity's estimates by path; notes say what they leave out."""
