"""The functions and constants an expression may name, and how each call becomes ops.

Every catalogue op without required attrs is callable by its own name. People's names
map onto the same ops (``ln``, ``arcsin``, ``sgn``, ...), a few are spelled with ops
(``log10(x)`` is ``log(x) / ln 10``, ``sec(x)`` is ``reciprocal(cos(x))``), and calls
with more arguments pick the op the reader means: ``max(a, b)`` is ``maximum``,
``sum(x, 0)`` is ``sum`` over axis 0.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.graphs.graph import LEAF_OPS
from engine.ops import OPS
from engine.ops.registry import OpDef

Ref = str | int | float  # a node id, or a number not yet a node
Emit = Callable[[str, list[Ref], dict[str, Any] | None], Ref]

CONSTANTS = {"e": math.e, "pi": math.pi}
SPELLED = {"e": "e = 2.71828...", "pi": "pi = 3.14159..."}
ALIASES = {
    "ln": "log",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arcsinh": "asinh",
    "arsinh": "asinh",
    "arccosh": "acosh",
    "arcosh": "acosh",
    "arctanh": "atanh",
    "artanh": "atanh",
    "arctan2": "atan2",
    "sgn": "sign",
}
# name -> (op applied first, then reciprocal or a division by a constant)
COMPOSITES = {
    "log10": ("log", math.log(10)),
    "log2": ("log", math.log(2)),
    "sec": ("cos", None),
    "csc": ("sin", None),
    "cot": ("tan", None),
}
PAIRWISE = {"max": "maximum", "min": "minimum"}  # two arguments: elementwise


@dataclass(frozen=True, slots=True)
class Arg:
    ref: Ref
    pos: int  # where the argument starts in the text


class CallError(Exception):
    """Why a call is wrong; the parser adds the column."""

    def __init__(self, why: str, pos: int | None = None):
        super().__init__(why)
        self.why, self.pos = why, pos


def is_function(name: str) -> bool:
    return name in OPS or name in ALIASES or name in COMPOSITES


def accepts(op: OpDef, nargs: int) -> bool:
    """Whether ``op`` can be called by name with ``nargs`` arguments and no attrs."""
    if any(a.required for a in op.attrs.values()):
        return False  # needs options only a JSON graph can give
    return nargs >= 1 if op.arity is None else nargs == op.arity


def callable_names(nargs: int) -> list[str]:
    """Catalogue ops an expression may call by their own name with ``nargs`` arguments."""
    return [name for name, op in OPS.items() if accepts(op, nargs)]


def suggest(name: str) -> str:
    """'; did you mean X?' for a name close to a function or constant, else ''."""
    known = [*OPS, *ALIASES, *COMPOSITES, *CONSTANTS]
    if name.lower() in known:
        return f"; did you mean {name.lower()}?"
    close = difflib.get_close_matches(name, known, n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def reserved(name: str) -> str | None:
    """Why ``name`` cannot be a variable, or None."""
    if name in CONSTANTS:
        return None
    if name in LEAF_OPS:
        return f"{name!r} is a reserved word, not a variable; pick another name"
    if is_function(name):
        return f"{name!r} is a function, not a variable; call it: {name}(x) or {name} x"
    return None


def call(name: str, args: Sequence[Arg], axis: Arg | None, emit: Emit) -> Ref:
    """The ops for ``name(args...)``, with ``axis=`` when given; CallError if wrong."""
    refs = [a.ref for a in args]
    if name in PAIRWISE and len(args) == 2 and axis is None:
        return emit(PAIRWISE[name], refs, None)
    if name in COMPOSITES:
        _want(name, args, 1, axis)
        first, divisor = COMPOSITES[name]
        inner = emit(first, refs, None)
        if divisor is None:
            return emit("reciprocal", [inner], None)
        return emit("div", [inner, divisor], None)
    if name == "log" and len(args) == 2 and axis is None:  # log(x, base)
        return emit("div", [emit("log", refs[:1], None), emit("log", refs[1:], None)], None)
    op = OPS[ALIASES.get(name, name)]
    if any(a.required for a in op.attrs.values()):
        raise CallError(f"{name} needs attrs; use a JSON graph for it")
    if op.arity == 1 and "axis" in op.attrs and len(args) == 2 and axis is None:
        axis, args = args[1], args[:1]
    if axis is not None:
        if "axis" not in op.attrs:
            raise CallError(f"{name} takes no axis", axis.pos)
        if type(axis.ref) is not int:
            raise CallError(
                f"the axis of {name} is a whole number, as in {name}(x, 0) or {name}(x, axis=-1)",
                axis.pos,
            )
    if not accepts(op, len(args)):
        raise CallError(_arity(name, op, len(args)))
    return emit(op.name, [a.ref for a in args], None if axis is None else {"axis": axis.ref})


def _want(name: str, args: Sequence[Arg], n: int, axis: Arg | None) -> None:
    if axis is not None:
        raise CallError(f"{name} takes no axis", axis.pos)
    if len(args) != n:
        raise CallError(f"{name} takes {n} argument{'s' if n > 1 else ''}, got {len(args)}")


def _arity(name: str, op: OpDef, got: int) -> str:
    if name in PAIRWISE:
        return (
            f"{name} takes one argument (its largest entry: {name}(x), {name}(x, axis=0)) "
            f"or two ({PAIRWISE[name]} of each pair: {name}(x, 0)), got {got}"
        )
    if op.arity is None:
        return f"{name} takes at least 1 argument"
    extra = " (and an axis)" if "axis" in op.attrs else ""
    return f"{name} takes {op.arity} argument{'s' if op.arity > 1 else ''}{extra}, got {got}"
