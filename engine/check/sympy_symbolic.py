"""A symbolic-derivative job in the SymPy worker: the function and its derivatives as text.

Job fields (plain data): ``kind`` ("symbolic"), ``nodes`` (``[id, op, inputs, attrs]`` in
topological order, as engine.check.job builds them), ``shapes`` (leaf id -> shape),
``target`` (a scalar node), ``sources`` (``[leaf id, index]`` per scalar source),
``order``, ``simplify``, ``simplify_seconds`` (simplification stops being started past
this), ``frozen`` (non-differentiable nodes: constants to the derivative) and ``values``
(leaf id -> array, or None: text only).

Order j differentiates order j - 1 once per nondecreasing index tuple (mixed partials
commute); the reply holds those distinct entries once, keyed by their index, and the
caller lays out the symmetric tensors.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import sympy as sp

from engine.check.symbolic import (
    TEXT_OPS,
    clean,
    displays,
    evaluate,
    shown_as,
    symbols,
    translate,
    tree_size,
)

_SIMPLIFY_MAX_OPS = 400  # larger expressions are left as they are: simplify grows with size


def run(job: dict[str, Any]) -> dict[str, Any]:
    """The function, its distinct derivative entries, as text, LaTeX and (with values) numbers."""
    shapes = {k: tuple(v) for k, v in job["shapes"].items()}
    frozen = frozenset(job["frozen"])
    exprs, defs = translate(job["nodes"], shapes, frozen)
    function = exprs[job["target"]].reshape(())[()]
    taken = {nd[0] for nd in job["nodes"]}
    for leaf, _ in job["sources"]:  # a source the target does not read: derivatives 0
        if leaf not in exprs:
            exprs[leaf] = symbols(leaf, shapes[leaf], taken)
    syms = [exprs[leaf][tuple(idx)] for leaf, idx in job["sources"]]
    entries: dict[tuple[int, ...], sp.Expr] = {(): function}
    level: dict[tuple[int, ...], sp.Expr] = {(): function}
    for _ in range(job["order"]):
        level = {
            (*idx, i): clean(sp.diff(e, syms[i]))
            for idx, e in level.items()
            for i in range(idx[-1] if idx else 0, len(syms))
        }
        entries.update(level)
    keys = list(entries)
    column = _column([entries[k] for k in keys])
    shown = shown_as(column, displays(job["nodes"], exprs, defs, frozen))
    simplified, left = _simplify(list(shown), job)
    reply: dict[str, Any] = {
        "keys": [list(k) for k in keys],
        "text": [_text(e, str) for e in simplified],
        "latex": [_text(e, sp.latex) for e in simplified],
        "unsimplified": left,
        "symbols": [str(s) for s in syms],
    }
    if job.get("values") is not None:
        leaves = {k: exprs[k] for k in shapes if k in exprs}
        got = evaluate({("derivatives", "all"): column}, leaves, defs, job["values"])
        reply["values"] = got["values"]["derivatives"]["all"].tolist()
        reply["kinks"] = [k[-1][0] for k in got["kinks"]]
    return reply


def _column(exprs: list[sp.Expr]) -> np.ndarray:
    out = np.empty(len(exprs), dtype=object)
    for i, e in enumerate(exprs):
        out[i] = e
    return out


def _simplify(exprs: list[sp.Expr], job: dict[str, Any]) -> tuple[list[sp.Expr], int]:
    """Each expression simplified while time is left: the rest as they are, and how many."""
    if not job["simplify"]:
        return exprs, 0
    deadline = time.monotonic() + job["simplify_seconds"]
    out, left = [], 0
    for e in exprs:
        if time.monotonic() >= deadline or tree_size(e, _SIMPLIFY_MAX_OPS + 1) > _SIMPLIFY_MAX_OPS:
            out.append(e)
            left += 1
            continue
        out.append(sp.simplify(e))
    return out, left


def _text(expr: sp.Expr, printer: Any) -> str:
    """One expression printed, or a summary when its written-out tree is too large."""
    size = tree_size(expr, TEXT_OPS + 1)
    if size > TEXT_OPS:
        return f"(an expression of more than {TEXT_OPS} operations, not shown)"
    return printer(expr)
