"""A graph in SymPy: translation through each op's own SymPy form, evaluation, text.

Runs inside the SymPy worker process (engine.check.sympy_pool) on a plain-data job:
no strings are ever parsed or evaluated; every expression is built by calling
``OpDef.sympy`` on object arrays of SymPy expressions, one symbol per element.

engine.check.sympy_job builds each quantity of a job from these parts.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from engine.check.agreement import Path
from engine.lru import LRU
from engine.ops.registry import OPS

DPS = 30  # digits SymPy evaluates with: the reference is far more precise than float64
TEXT_CHARS = 2_000  # one derivative's text is cut beyond this
TEXT_OPS = 500  # larger expressions are not printed at all: printing one is its tree's size
IMAGINARY_NOISE = 1e-25  # an evaluation's imaginary part below this is rounding
MERGE_OPS = 500  # a derivative NaN at a point is simplified only up to this size
MERGE_BUDGET_OPS = 4 * MERGE_OPS  # ... and up to this many operations per evaluation
_MERGED: LRU[sp.Basic, sp.Basic] = LRU(256)  # merged forms, by their canonical symbols
_SINGULAR = (sp.Heaviside, sp.DiracDelta)  # undefined at a kink: the tape follows a convention
# in a derivative, sign(0) is |x|'s slope at its kink (d/dx sqrt(x**2) is sign(x)): undefined;
# and a Piecewise branch an op takes at one point (xlogy's Eq(x, 0)) is a convention there
# when the formula around it says otherwise (``_convention_taken``)
_SINGULAR_IN_DERIVATIVES = (*_SINGULAR, sp.sign, sp.Piecewise)
_STEP_FUNCTIONS = (sp.floor, sp.ceiling)
KINK = sp.Dummy("kink")
EXACT = {"e": sp.E, "pi": sp.pi}  # constant nodes marked "exact" by engine.check.job
VALUE_QUANTITIES = ("outputs", "function")  # values, not derivatives


def number(v: float) -> sp.Expr:
    """A float as a person would write it where that is its exact value: 2.0 -> 2,
    0.375 -> 3/8; else the float itself, to the bit (0.1 stays the binary number the tape
    computes with: as 1/10, relu(x - 0.1) at x = 0.1 is past its kink for SymPy)."""
    if not np.isfinite(v):
        return sp.nan if np.isnan(v) else (sp.oo if v > 0 else -sp.oo)
    if float(v).is_integer():
        return sp.Integer(int(v))
    exact = Fraction(v)
    frac = exact.limit_denominator(10_000)
    if frac == exact:
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
        if op == "constant" and attrs.get("exact") in EXACT:
            exprs[nid] = np.array(EXACT[attrs["exact"]], dtype=object)
            continue
        if op in ("variable", "constant"):
            exprs[nid] = symbols(nid, shapes[nid], taken)
            continue
        args = [exprs[x] if isinstance(x, str) else objects(x) for x in inputs]
        out = _basic(np.asarray(OPS[op].sympy(*args, **attrs), dtype=object))
        if nid in cuts:
            syms = symbols(nid, out.shape, taken)
            defs.extend(zip(syms.flat, out.flat, strict=True))
            out = syms
        exprs[nid] = out
    return exprs, defs


def _basic(out: np.ndarray) -> np.ndarray:
    """An op's SymPy form with every entry a SymPy object: numpy's sum or product of no
    terms is the Python int 0 or 1, which SymPy's walks cannot read."""
    if all(isinstance(e, sp.Basic) for e in out.flat):
        return out
    fixed = np.empty(out.shape, dtype=object)
    for idx in np.ndindex(out.shape):
        fixed[idx] = sp.sympify(out[idx])
    return fixed


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


def substitute(expr: sp.Basic, subs: dict, memo: dict[int, sp.Basic],
               singular: tuple[type, ...] = _SINGULAR) -> sp.Basic:
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
        if isinstance(e, singular) and (_convention_taken(e, args) if type(e) is sp.Piecewise
                                        else args[0].is_zero):
            memo[id(e)] = KINK
        elif all(a is b for a, b in zip(args, e.args, strict=True)):
            memo[id(e)] = e
        else:
            value = e.func(*args)
            memo[id(e)] = sp.nan if _leaves_the_reals(e, value) else value
    return memo[id(expr)]


def _leaves_the_reals(e: sp.Basic, value: sp.Basic) -> bool:
    """Whether a power or a function of numbers came out a finite non-real one (sqrt(-3) is
    I*sqrt(3)): the tape, in real arithmetic, has NaN there, and so does the reference from
    then on, even where the formula comes back to the reals (acosh's derivative at -2 is
    1/(sqrt(-3)*sqrt(-1)) = -1/sqrt(3), where TF's and the tape's is NaN)."""
    if value.is_Float or value.is_Rational:  # what a real argument mostly gives: at once
        return False
    if isinstance(e, sp.Pow):
        if e.exp.is_integer:
            return False
    elif not isinstance(e, sp.Function):
        return False
    return bool(value.is_number and value.is_finite) and np.isnan(to_float(value))


def _convention_taken(e: sp.Piecewise, args: list) -> bool:
    """Whether the branch ``e`` takes (its pairs substituted: ``args``) is one for a single
    point (an Eq) whose value differs from the branch that holds around it: d/dx of
    xlogy(x, y) at x = 0 is 0 by TensorFlow's convention where log(y) is the slope, while
    d/dy there is 0 either way (the slope of xlogy(0, y) = 0)."""
    for k, pair in enumerate(args):
        if pair.cond is sp.false:
            continue
        if pair.cond is not sp.true or not isinstance(e.args[k].cond, sp.Eq):
            return False  # an ordinary branch, or one not decided by the numbers
        around = next((p.expr for p in args[k + 1:] if p.cond is not sp.false), None)
        if around is None:
            return False
        gap = around - pair.expr
        return not (gap.is_number and gap == 0)
    return False


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


class HELD(sp.Function):
    """How a held input reads in derivative text: ``stop_gradient(x)``."""

    nargs = 1

    def __str__(self) -> str:
        return f"stop_gradient({self.args[0]})"

    def _sympystr(self, printer: Any) -> str:
        return f"stop_gradient({printer._print(self.args[0])})"

    def _latex(self, printer: Any) -> str:
        return rf"\operatorname{{stop\_gradient}}\left({printer._print(self.args[0])}\right)"


def displays(nodes: list, exprs: dict[str, np.ndarray], defs: list[tuple[sp.Symbol, sp.Expr]],
             frozen: frozenset[str]) -> dict[sp.Symbol, sp.Expr]:
    """What each frozen node's symbols stand for in text: ``floor(x)`` or
    ``stop_gradient(x)``, never the node's internal id (``_1``)."""
    defined = dict(defs)
    shown: dict[sp.Symbol, sp.Expr] = {}
    memo: dict[int, sp.Basic] = {}
    for nid, op, _inputs, _attrs in nodes:
        if nid not in frozen or nid not in exprs:
            continue
        for sym in exprs[nid].flat:
            if sym in defined:
                body = substitute(defined[sym], shown, memo, ())
                shown[sym] = HELD(body) if op == "stop_gradient" else body
    return shown


def shown_as(arr: np.ndarray, display: dict[sp.Symbol, sp.Expr]) -> np.ndarray:
    """``arr`` with every frozen node's symbols replaced by what they stand for."""
    if not display:
        return arr
    memo: dict[int, sp.Basic] = {}
    out = np.empty(arr.shape, dtype=object)
    for idx in np.ndindex(arr.shape):
        out[idx] = substitute(arr[idx], display, memo, ())
    return out


def render(quantities: dict[Path, np.ndarray], text_max: int,
           display: dict[sp.Symbol, sp.Expr] | None = None) -> tuple[dict, dict]:
    """Text and LaTeX per quantity: full for scalars and small tensors, a summary beyond;
    frozen nodes shown as what they stand for (``display``)."""
    text: dict[str, Any] = {}
    latex: dict[str, Any] = {}
    for path, arr in quantities.items():
        arr = shown_as(arr, display or {})
        if arr.size == 0:  # SymPy's LaTeX printer fails on an empty array
            t, lx = arr.tolist(), r"\left[\right]"
        elif arr.size <= text_max:
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
    # an imaginary part is rounding only when it is negligible against the real part, or
    # below what DPS digits leave: (-2)**y*log(-2) at y = -60 is 6e-19 + 3e-18j, complex
    if c.imag and abs(c.imag) > max(1e-12 * abs(c.real), IMAGINARY_NOISE):
        return float("nan")
    return c.real


def _powers_merged(expr: sp.Basic, subs: dict, budget: list[int]) -> float:
    """A derivative SymPy wrote with a removable 0/0 (d/dx x**y is ``x**y*y/x``, NaN at
    x = 0 where the derivative is 0), evaluated again with its powers of one base merged
    (``y*x**(y - 1)``: the same function wherever the first is defined). NaN when that
    does not help, and for a large expression or once the evaluation's ``budget`` of
    operations is spent (merging walks each one whole: about 40 ms for 500). Entries alike
    but for their symbols (d/dx_i of sum(x**y)) are merged once, and kept for the next
    check of the structure (``_MERGED``)."""
    size = tree_size(expr, MERGE_OPS + 1)
    if size > MERGE_OPS or not contains(expr, (sp.Pow,)):
        return float("nan")
    names = sorted(expr.free_symbols, key=str)
    canonical = [sp.Symbol(f"_m{i}", real=True) for i in range(len(names))]
    form = expr.xreplace(dict(zip(names, canonical, strict=True)))
    simpler = _MERGED.get(form)
    if simpler is None:
        if size > budget[0]:
            return float("nan")
        budget[0] -= size
        simpler = sp.powsimp(form)
        _MERGED.put(form, simpler)
    if simpler == form:
        return float("nan")
    back = simpler.xreplace(dict(zip(canonical, names, strict=True)))
    v = substitute(back, subs, {}, _SINGULAR_IN_DERIVATIVES)
    return to_float(v.evalf(DPS)) if v.is_number else float("nan")


def evaluate(quantities: dict[Path, np.ndarray], leaves: dict[str, np.ndarray],
             defs: list[tuple[sp.Symbol, sp.Expr]], values: dict[str, Any]) -> dict[str, Any]:
    """Every quantity at ``values`` (of the ``leaves``' symbols; ``defs`` give the cut
    nodes' symbols theirs); kinks and unevaluated entries are listed and given NaN."""
    subs: dict[sp.Basic, sp.Basic] = {}
    for nid, syms in leaves.items():
        vals = np.asarray(values[nid], dtype=np.float64)
        for sym, v in zip(syms.flat, vals.flat, strict=True):
            if isinstance(sym, sp.Symbol):  # not E or pi: those are exact already
                subs[sym] = _precise(float(v))
    memo: dict[int, sp.Basic] = {}
    for sym, expr in defs:  # stop_gradient outputs and cut sources, in order
        subs[sym] = substitute(expr, subs, memo).evalf(DPS)
        memo = {}  # values of later definitions may depend on this one
    out: dict[str, Any] = {}
    kinks: list[list] = []
    unevaluated: list[list] = []
    derivative_memo: dict[int, sp.Basic] = {}
    merges = [MERGE_BUDGET_OPS]  # operations _powers_merged may still walk
    for path, arr in quantities.items():
        num = np.empty(arr.shape, dtype=np.float64)
        value = path[0] in VALUE_QUANTITIES  # a value's sign(0) is 0, no kink
        for idx, expr in zip(np.ndindex(arr.shape), arr.flat, strict=True):
            v = (substitute(expr, subs, memo) if value else
                 substitute(expr, subs, derivative_memo, _SINGULAR_IN_DERIVATIVES))
            if not v.is_number:
                (kinks if KINK in v.free_symbols else unevaluated).append([*path, list(idx)])
                num[idx] = np.nan
                continue
            num[idx] = to_float(v.evalf(DPS))
            if not value and np.isnan(num[idx]):
                num[idx] = _powers_merged(expr, subs, merges)
        _put(out, path, num)
    return {"values": out, "kinks": kinks, "unevaluated": unevaluated}


def _precise(v: float) -> sp.Expr:
    """A leaf's value, exact to the bit, carried at ``DPS`` digits."""
    return sp.Float(v, DPS) if np.isfinite(v) else number(v)
