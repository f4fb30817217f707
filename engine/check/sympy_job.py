"""A job in the SymPy worker: each quantity it names built symbolically, then evaluated.

Job fields (all plain data): ``quantities`` (the ``Result`` fields to compute, each
built by its row of ``BUILD``), ``order`` (derivatives: every order up to it), ``nodes``
(``[id, op, inputs, attrs]`` in topological order; an input is a node id or a nested
list of numbers), ``values`` (leaf id -> array), ``targets``, ``sources``, ``weights``
(target id -> array or None), ``frozen`` (ids of stop_gradient and non-differentiable
nodes: their outputs are constants), ``text_max`` (entries shown as text).

A graph structure is compiled once (engine.check.symbolic's translation, derivatives
and text) and evaluated again for each new set of values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from engine.check import shared_checks
from engine.check.agreement import Path
from engine.check.symbolic import (
    clean,
    displays,
    evaluate,
    objects,
    render,
    translate,
    vanishes,
)
from engine.lru import LRU

CACHE_SIZE = 64
_CACHE: LRU[str, Compiled] = LRU(CACHE_SIZE)


class Compiled:
    """The symbolic quantities of one graph structure, reused for every set of values."""

    def __init__(self, job: dict[str, Any]):
        build = _Build(job)
        self.leaves = {k: v for k, v in build.view(frozenset()).items() if k in build.shapes}
        for name in job["quantities"]:
            BUILD[name](build)
        self.quantities: dict[Path, np.ndarray] = build.quantities
        self.zero: dict[Path, bool] = build.zero  # identically 0: no path, whatever the values
        self.defs: list[tuple[sp.Symbol, sp.Expr]] = build.defs
        frozen = build.view(build.frozen)
        display = displays(build.nodes, frozen, build.defs, build.frozen)
        self.text, self.latex = render(self.quantities, job.get("text_max", 16), display)


class _Build:
    """One job's graph translated as each quantity needs it: a view per set of cut nodes
    (stop_gradient and non-differentiable ones, and an inner source itself)."""

    def __init__(self, job: dict[str, Any]):
        self.nodes, self.frozen = job["nodes"], frozenset(job["frozen"])
        self.targets, self.sources, self.order = job["targets"], job["sources"], job["order"]
        self.weights = job["weights"]
        self.shapes = {k: np.shape(v) for k, v in job["values"].items()}
        self.quantities: dict[Path, np.ndarray] = {}
        self.zero: dict[Path, bool] = {}
        self.defs: list[tuple[sp.Symbol, sp.Expr]] = []
        self._views: dict[frozenset[str], dict[str, np.ndarray]] = {}
        self._gradients: dict[str, np.ndarray] | None = None
        # non-finite weights, each a symbol until a quantity is put (see ``_weight``)
        self.stand_ins: dict[sp.Symbol, sp.Expr] = {}

    def view(self, cuts: frozenset[str]) -> dict[str, np.ndarray]:
        if cuts not in self._views:
            self._views[cuts], defs = translate(self.nodes, self.shapes, cuts)
            known = {s for s, _ in self.defs}
            self.defs.extend(d for d in defs if d[0] not in known)
        return self._views[cuts]

    def cut_at(self, source: str) -> dict[str, np.ndarray]:
        """The view a derivative by ``source`` reads: an inner source is cut to symbols."""
        return self.view(self.frozen if source in self.shapes else self.frozen | {source})

    def put(self, path: Path, arr: np.ndarray, check_zero: bool = True) -> None:
        if self.stand_ins:
            arr = arr.copy()
            for idx in np.ndindex(arr.shape):
                arr[idx] = sp.sympify(arr[idx]).xreplace(self.stand_ins)
        self.quantities[path] = arr
        if check_zero:  # what a None (no path) on the tape claims
            self.zero[path] = vanishes(arr)

    def loss(self, exprs: dict[str, np.ndarray]) -> sp.Expr:
        """The scalar the tape differentiates: every target summed, weighted by output_gradients."""
        terms = []
        for t in self.targets:
            w = self.weights.get(t)
            arr = exprs[t]
            if w is None:
                terms.extend(arr.flat)
            else:
                wo = np.broadcast_to(self._weight(w), arr.shape)
                terms.extend(a * b for a, b in zip(wo.flat, arr.flat, strict=True))
        return sp.Add(*terms)

    def _weight(self, w: Any) -> np.ndarray:
        """``w`` as exact numbers, a non-finite one as a symbol standing in for it until
        ``put``: SymPy's ``nan`` absorbs what it multiplies, so d(nan * sin(u)) / dx would
        be 0 where the tape's is nan * cos(u) * du/dx, while a term the source does not
        reach (another part of a concat) must still add nothing."""
        out = objects(w)
        for idx in np.ndindex(out.shape):
            if out[idx].is_finite is not True:
                stand_in = sp.Dummy(f"w{len(self.stand_ins)}", real=True)
                self.stand_ins[stand_in] = out[idx]
                out[idx] = stand_in
        return out

    def gradients(self) -> dict[str, np.ndarray]:
        """d loss / d source per source (shared by the gradient and the Hessian)."""
        if self._gradients is None:
            self._gradients = {}
            for s in self.sources:
                exprs = self.cut_at(s)
                loss = self.loss(exprs)
                self._gradients[s] = np.vectorize(lambda sym, f=loss: clean(sp.diff(f, sym)),
                                                  otypes=[object])(exprs[s])
        return self._gradients


def _outputs(b: _Build) -> None:
    exprs = b.view(frozenset())
    for t in b.targets:
        b.put(("outputs", t), exprs[t], check_zero=False)


def _gradients(b: _Build) -> None:
    for s, g in b.gradients().items():
        b.put(("gradients", s), g)


def _jacobian(b: _Build) -> None:
    for t in b.targets:
        for s in b.sources:
            exprs = b.cut_at(s)
            b.put(("jacobian", t, s), _derivative(exprs[t], exprs[s]))


def _hessian(b: _Build) -> None:
    syms = {s: b.cut_at(s)[s] for s in b.sources}
    for si, g in b.gradients().items():
        for sj, s in syms.items():
            b.put(("hessian", si, sj), _derivative(g, s))


def _derivatives(b: _Build) -> None:
    """Every order up to the job's, by scalar leaf sources. Order j differentiates order
    j - 1 once per nondecreasing index tuple; the rest of the symmetric tensor shares
    those expressions, so evaluating them costs nothing more."""
    exprs = b.view(b.frozen)
    syms = [exprs[s][()] for s in b.sources]
    n = len(syms)
    level: dict[tuple[int, ...], Any] = {(): b.loss(exprs)}
    for j in range(1, b.order + 1):
        level = {
            (*idx, i): clean(sp.diff(e, syms[i]))
            for idx, e in level.items()
            for i in range(idx[-1] if idx else 0, n)
        }
        arr = np.empty((n,) * j if n > 1 else (), dtype=object)
        for idx in np.ndindex(arr.shape):
            arr[idx] = level[tuple(sorted(idx)) if idx else (0,) * j]
        b.put(("derivatives", str(j)), arr, check_zero=False)


def _laid_out(_b: _Build) -> None:
    """A laid-out Hessian (matrix, sparse) is compared with the Hessian's entries, which
    the parent gathers: nothing of its own to build."""


BUILD: dict[str, Callable[[_Build], None]] = {
    "outputs": _outputs,
    "gradients": _gradients,
    "jacobian": _jacobian,
    "hessian": _hessian,
    "derivatives": _derivatives,
    "matrix": _laid_out,
    "sparse": _laid_out,
}
"""How each quantity a job names is built symbolically."""


def _derivative(f: np.ndarray, x: np.ndarray) -> np.ndarray:
    """d f / d x entry by entry: shape ``f.shape + x.shape``."""
    out = np.empty(f.shape + x.shape, dtype=object)
    for a in np.ndindex(f.shape):
        for b in np.ndindex(x.shape):
            out[a + b] = clean(sp.diff(f[a], x[b]))
    return out


def structure_key(job: dict[str, Any]) -> str:
    """Everything that shapes the symbolic derivative, and nothing that is only a value."""
    weights = {k: None if w is None else np.asarray(w).tolist() for k, w in job["weights"].items()}
    shapes = {k: np.shape(v) for k, v in job["values"].items()}
    return repr((job["quantities"], job["order"], job["nodes"], shapes, job["targets"],
                 job["sources"], sorted(weights.items()), sorted(job["frozen"]),
                 job.get("text_max", 16)))


def warm_up() -> None:
    """Run a seed-sized job once so the first real one finds SymPy's caches and printers warm."""
    nodes = [["x", "variable", [], {}], ["y", "pow", ["x", 3.0], {}]]
    run_job({"quantities": ["gradients", "hessian"], "order": 1, "nodes": nodes,
             "values": {"x": np.float64(3.0)}, "targets": ["y"], "sources": ["x"],
             "weights": {}, "frozen": [], "text_max": 16})
    _CACHE.clear()


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Compile (or reuse) the job's symbolic quantities and evaluate them at its values
    (a ``symbolic`` job: the function and its derivatives, engine.check.sympy_symbolic)."""
    if job.get("kind") == "symbolic":
        from engine.check import sympy_symbolic

        return sympy_symbolic.run(job)
    key = structure_key(job)
    compiled = _CACHE.get(key)
    cached = compiled is not None
    if compiled is None:
        compiled = Compiled(job)
        _CACHE.put(key, compiled)
    reply = evaluate(compiled.quantities, compiled.leaves, compiled.defs, job["values"])
    reply.update(text=compiled.text, latex=compiled.latex, cached=cached,
                 zero=[list(p) for p, z in compiled.zero.items() if z])
    if job.get("export"):  # to be compiled and shared by the caller (engine.check.shared_checks)
        reply["compiled"] = shared_checks.export(compiled.quantities, compiled.zero,
                                                 compiled.defs, compiled.leaves,
                                                 compiled.text, compiled.latex)
    return reply
