"""A graph in SymPy: translation through each op's own SymPy form, derivatives, text.

Runs inside the SymPy worker process (engine.check.sympy_worker) on a plain-data job:
no strings are ever parsed or evaluated; every expression is built by calling
``OpDef.sympy`` on object arrays of SymPy expressions, one symbol per element.

Job fields (all plain data): ``kind``, ``nodes`` (``[id, op, inputs, attrs]`` in
topological order; an input is a node id or a nested list of numbers),
``values`` (leaf id -> array), ``targets``, ``sources``, ``weights`` (target id
-> array or None), ``frozen`` (ids of stop_gradient and non-differentiable
nodes: their outputs are constants), ``text_max`` (entries shown as text).
"""

from __future__ import annotations

from collections import OrderedDict
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from engine.ops.registry import OPS

DPS = 30  # digits SymPy evaluates with: the reference is far more precise than float64
TEXT_CHARS = 2_000  # one derivative's text is cut beyond this
TEXT_OPS = 500  # larger expressions are not printed at all: printing one is its tree's size
_SINGULAR = (sp.Heaviside, sp.DiracDelta)  # undefined at a kink: the tape follows a convention
_STEP_FUNCTIONS = (sp.floor, sp.ceiling)
KINK = sp.Dummy("kink")
_CACHE: OrderedDict[str, Compiled] = OrderedDict()
CACHE_SIZE = 64

Path = tuple[str, ...]  # ("gradients", s) | ("jacobian", t, s) | ("hessian", si, sj) | ...


def number(v: float) -> sp.Expr:
    """A float as a person would write it: 2.0 -> 2, 0.5 -> 1/2, else its exact float."""
    if not np.isfinite(v):
        return sp.nan if np.isnan(v) else (sp.oo if v > 0 else -sp.oo)
    if float(v).is_integer():
        return sp.Integer(int(v))
    frac = Fraction(v).limit_denominator(10_000)
    if float(frac) == v:
        return sp.Rational(frac.numerator, frac.denominator)
    return sp.Float(float(v))


def objects(value: Any) -> np.ndarray:
    """An inline constant as an object array of exact numbers, keeping its shape."""
    arr = np.asarray(value, dtype=np.float64)
    out = np.empty(arr.shape, dtype=object)
    for idx in np.ndindex(arr.shape):
        out[idx] = number(float(arr[idx]))
    return out


def symbols(name: str, shape: tuple[int, ...], taken: set[str]) -> np.ndarray:
    """One real symbol per element: ``x`` for a scalar, ``w_0_1`` for ``w[0, 1]``."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        label = "_".join([name, *map(str, idx)])
        if idx and label in taken:  # a node id already reads like this element
            label = f"{name}[{','.join(map(str, idx))}]"
        out[idx] = sp.Symbol(label, real=True)
    return out


def translate(
    nodes: list, shapes: dict[str, tuple[int, ...]], cuts: frozenset[str]
) -> tuple[dict[str, np.ndarray], list[tuple[sp.Symbol, sp.Expr]]]:
    """Each node as an object array; a cut node becomes fresh symbols, defined in ``defs``."""
    taken = {n[0] for n in nodes}
    exprs: dict[str, np.ndarray] = {}
    defs: list[tuple[sp.Symbol, sp.Expr]] = []
    for nid, op, inputs, attrs in nodes:
        if op in ("variable", "constant"):
            exprs[nid] = symbols(nid, shapes[nid], taken)
            continue
        args = [exprs[x] if isinstance(x, str) else objects(x) for x in inputs]
        out = np.asarray(OPS[op].sympy(*args, **attrs), dtype=object)
        if nid in cuts:
            syms = symbols(nid, out.shape, taken)
            defs.extend(zip(syms.flat, out.flat, strict=True))
            out = syms
        exprs[nid] = out
    return exprs, defs


def clean(expr: sp.Expr) -> sp.Expr:
    """d/dx floor and ceil are 0 where they are defined; SymPy leaves them unevaluated."""
    if not contains(expr, (sp.Derivative, sp.Subs)):
        return expr
    steps = (sp.Derivative, sp.Subs)
    return expr.replace(
        lambda e: isinstance(e, steps) and e.has(*_STEP_FUNCTIONS), lambda _e: sp.S.Zero
    )


def vanishes(arr: np.ndarray) -> bool:
    """Every entry is 0 almost everywhere: 0 once the DiracDelta spikes at kinks are dropped.

    That is what a None ("no path") on the tape claims, e.g. for relu's second derivative.
    """
    for e in arr.flat:
        if e != 0 and not (contains(e, (sp.DiracDelta,)) and e.replace(
                lambda a: isinstance(a, sp.DiracDelta), lambda _a: sp.S.Zero) == 0):
            return False
    return True


def contains(expr: sp.Basic, types: tuple[type, ...]) -> bool:
    """``expr.has`` over the shared graph: linear where SymPy's walk is exponential."""
    seen: set[int] = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, types):
            return True
        for a in e.args:
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)
    return False


def substitute(expr: sp.Basic, subs: dict, memo: dict[int, sp.Basic]) -> sp.Basic:
    """``expr.xreplace(subs)`` rebuilt bottom-up once per shared subexpression.

    With numbers for every symbol each rebuilt node evaluates at once (at the
    numbers' precision). A Heaviside or DiracDelta whose argument is exactly 0
    becomes ``KINK``: the derivative is undefined there and the tape follows a
    convention, so that entry is not compared.
    """
    stack = [(expr, False)]
    while stack:
        e, ready = stack.pop()
        if id(e) in memo:
            continue
        if not e.args:
            memo[id(e)] = subs.get(e, e)
            continue
        if not ready:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args if id(a) not in memo)
            continue
        args = [memo[id(a)] for a in e.args]
        if isinstance(e, _SINGULAR) and args[0].is_zero:
            memo[id(e)] = KINK
        elif all(a is b for a, b in zip(args, e.args, strict=True)):
            memo[id(e)] = e
        else:
            memo[id(e)] = e.func(*args)
    return memo[id(expr)]


class Compiled:
    """The symbolic quantities of one graph structure, reused for every set of values."""

    def __init__(self, job: dict[str, Any]):
        self.quantities: dict[Path, np.ndarray] = {}
        self.zero: dict[Path, bool] = {}  # identically 0: no path, whatever the values
        self.defs: list[tuple[sp.Symbol, sp.Expr]] = []
        shapes = {k: np.shape(v) for k, v in job["values"].items()}
        self.leaves: dict[str, np.ndarray] = {}
        frozen = frozenset(job["frozen"])
        views: dict[frozenset[str], dict[str, np.ndarray]] = {}

        def view(cuts: frozenset[str]) -> dict[str, np.ndarray]:
            if cuts not in views:
                views[cuts], defs = translate(job["nodes"], shapes, cuts)
                known = {s for s, _ in self.defs}
                self.defs.extend(d for d in defs if d[0] not in known)
            return views[cuts]

        kind, targets, sources = job["kind"], job["targets"], job["sources"]
        if kind == "evaluate":
            exprs = view(frozenset())
            for t in targets:
                self.quantities[("outputs", t)] = exprs[t]
        self.leaves = {k: v for k, v in view(frozenset()).items() if k in shapes}
        leaves = set(shapes)
        cut_for = {s: frozen if s in leaves else frozen | {s} for s in sources}
        if kind in ("gradient", "hessian"):
            grads = {}
            for s in sources:
                exprs = view(cut_for[s])
                loss = self._loss(exprs, targets, job["weights"])
                grads[s] = np.vectorize(lambda sym, f=loss: clean(sp.diff(f, sym)),
                                        otypes=[object])(exprs[s])
                self.quantities[("gradients", s)] = grads[s]
                self.zero[("gradients", s)] = vanishes(grads[s])
            if kind == "hessian":
                self._hessian(grads, {s: view(cut_for[s])[s] for s in sources})
        if kind == "jacobian":
            for t in targets:
                for s in sources:
                    exprs = view(cut_for[s])
                    jac = _jacobian(exprs[t], exprs[s])
                    self.quantities[("jacobian", t, s)] = jac
                    self.zero[("jacobian", t, s)] = vanishes(jac)
        self.text, self.latex = render(self.quantities, job.get("text_max", 16))

    @staticmethod
    def _loss(exprs: dict[str, np.ndarray], targets: list[str], weights: dict) -> sp.Expr:
        """The scalar the tape differentiates: every target summed, weighted by output_gradients."""
        terms = []
        for t in targets:
            w = weights.get(t)
            arr = exprs[t]
            if w is None:
                terms.extend(arr.flat)
            else:
                wo = np.broadcast_to(objects(w), arr.shape)
                terms.extend(a * b for a, b in zip(wo.flat, arr.flat, strict=True))
        return sp.Add(*terms)

    def _hessian(self, grads: dict[str, np.ndarray], syms: dict[str, np.ndarray]) -> None:
        for si, g in grads.items():
            for sj, s in syms.items():
                block = np.empty(g.shape + s.shape, dtype=object)
                for a in np.ndindex(g.shape):
                    for b in np.ndindex(s.shape):
                        block[a + b] = clean(sp.diff(g[a], s[b]))
                self.quantities[("hessian", si, sj)] = block
                self.zero[("hessian", si, sj)] = vanishes(block)


def _jacobian(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    out = np.empty(target.shape + source.shape, dtype=object)
    for a in np.ndindex(target.shape):
        for b in np.ndindex(source.shape):
            out[a + b] = clean(sp.diff(target[a], source[b]))
    return out


def tree_size(expr: sp.Basic, cap: int) -> int:
    """Operations in ``expr`` written out as a tree (what printing costs), counted up to ``cap``.

    SymPy shares repeated subexpressions, so a chain of squares is small in memory but
    exponential on paper; this counts over the shared graph, in linear time.
    """
    sizes: dict[int, int] = {}
    stack = [(expr, False)]
    while stack:
        e, done = stack.pop()
        if id(e) in sizes:
            continue
        if done or not e.args:
            sizes[id(e)] = min(cap, 1 + sum(sizes[id(a)] for a in e.args))
            continue
        stack.append((e, True))
        stack.extend((a, False) for a in e.args if id(a) not in sizes)
    return sizes[id(expr)]


def _cut(expr: sp.Basic, printer: Any) -> str:
    size = tree_size(expr, TEXT_OPS + 1)
    if size > TEXT_OPS:
        return f"(an expression of more than {TEXT_OPS} operations, not shown)"
    text = printer(expr)
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def render(quantities: dict[Path, np.ndarray], text_max: int) -> tuple[dict, dict]:
    """Text and LaTeX per quantity: full for scalars and small tensors, a summary beyond."""
    text: dict[str, Any] = {}
    latex: dict[str, Any] = {}
    for path, arr in quantities.items():
        if arr.size <= text_max:
            if arr.ndim == 0:
                t, lx = _cut(arr[()], str), _cut(arr[()], sp.latex)
            else:
                t = np.vectorize(lambda e: _cut(e, str), otypes=[object])(arr).tolist()
                lx = _cut(sp.Array(arr.tolist()), sp.latex)
        else:
            head = [f"[{', '.join(map(str, i))}]: {_cut(arr[i], str)}"
                    for i in list(np.ndindex(arr.shape))[:3]]
            t = f"shape {list(arr.shape)}, {arr.size} entries; " + "; ".join(head) + "; …"
            lx = f"\\text{{{arr.size} entries}}"
        _put(text, path, t)
        _put(latex, path, lx)
    return text, latex


def _put(tree: dict, path: Path, value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def to_float(value: sp.Expr) -> float:
    """A real number, or NaN for complex, undefined (``zoo``, ``nan``) and unevaluated results."""
    try:
        c = complex(value)
    except (TypeError, ValueError):
        return float("nan")
    if c.imag and abs(c.imag) > 1e-12 * max(1.0, abs(c.real)):
        return float("nan")
    return c.real


def evaluate(compiled: Compiled, values: dict[str, Any]) -> dict[str, Any]:
    """Every quantity at ``values``; kinks and unevaluated entries are listed and given NaN."""
    subs: dict[sp.Basic, sp.Basic] = {}
    for nid, syms in compiled.leaves.items():
        vals = np.asarray(values[nid], dtype=np.float64)
        for sym, v in zip(syms.flat, vals.flat, strict=True):
            subs[sym] = _precise(float(v))
    memo: dict[int, sp.Basic] = {}
    for sym, expr in compiled.defs:  # stop_gradient outputs and cut sources, in order
        subs[sym] = substitute(expr, subs, memo).evalf(DPS)
        memo = {}  # values of later definitions may depend on this one
    out: dict[str, Any] = {}
    kinks: list[list] = []
    unevaluated: list[list] = []
    for path, arr in compiled.quantities.items():
        num = np.empty(arr.shape, dtype=np.float64)
        for idx, expr in zip(np.ndindex(arr.shape), arr.flat, strict=True):
            v = substitute(expr, subs, memo)
            if not v.is_number:
                (kinks if KINK in v.free_symbols else unevaluated).append([*path, list(idx)])
                num[idx] = np.nan
                continue
            num[idx] = to_float(v.evalf(DPS))
        _put(out, path, num)
    return {"values": out, "kinks": kinks, "unevaluated": unevaluated}


def _precise(v: float) -> sp.Expr:
    """A leaf's value, exact to the bit, carried at ``DPS`` digits."""
    return sp.Float(v, DPS) if np.isfinite(v) else number(v)


def structure_key(job: dict[str, Any]) -> str:
    """Everything that shapes the symbolic derivative, and nothing that is only a value."""
    weights = {k: None if w is None else np.asarray(w).tolist() for k, w in job["weights"].items()}
    shapes = {k: np.shape(v) for k, v in job["values"].items()}
    return repr((job["kind"], job["nodes"], shapes, job["targets"], job["sources"],
                 sorted(weights.items()), sorted(job["frozen"]), job.get("text_max", 16)))


def warm_up() -> None:
    """Run a seed-sized job once so the first real one finds SymPy's caches and printers warm."""
    nodes = [["x", "variable", [], {}], ["y", "pow", ["x", 3.0], {}]]
    run_job({"kind": "hessian", "nodes": nodes, "values": {"x": np.float64(3.0)},
             "targets": ["y"], "sources": ["x"], "weights": {}, "frozen": [], "text_max": 16})
    _CACHE.clear()


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Compile (or reuse) the job's symbolic quantities and evaluate them at its values."""
    if job["kind"] == "derivative":  # every order up to k, for engine.derive.derivatives.derivative
        from engine.check.higher_check import run_symbolic

        return run_symbolic(job)
    key = structure_key(job)
    compiled = _CACHE.get(key)
    cached = compiled is not None
    if compiled is None:
        compiled = Compiled(job)
        _CACHE[key] = compiled
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    reply = evaluate(compiled, job["values"])
    reply.update(text=compiled.text, latex=compiled.latex, cached=cached,
                 zero=[list(p) for p, z in compiled.zero.items() if z])
    return reply
