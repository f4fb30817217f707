"""SymPy's derivative of a graph structure, derived once, shared, and evaluated here.

A SymPy worker derives a structure's quantities (engine.check.sympy_job) and, asked to
``export``, sends them back as JSON: each expression a tree of a few smooth SymPy
functions, numbers and the leaves' symbols, nothing else. They are kept in this process
(compiled with ``lambdify``) and, when a ``StructureCache`` is configured (the app passes
one that shares them between replicas), there too, under a digest of everything that shapes the
derivative (engine.check.sympy_job.structure_key: nodes, kinds, sources, order, shapes).
The next check of the same structure, on any replica, is evaluated in the request's own
thread: no worker, no pipe, no re-derivation.

Only structures whose every entry is smooth (``_smooth_functions`` of the leaves, no
``stop_gradient`` cuts) and small (``MAX_TREE``) take that road, and only while every
value comes out a finite real float: kinks, domain edges and non-finite values go to
the worker, whose exact evaluation says what they are. Reading a structure never runs
code (no pickle, no ``sympify`` of text): an unknown node in the tree is refused, so a
shared cache can at worst hand back a wrong formula, which the app's signature
(app.redis_store.SharedCheckCache) keeps out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from engine.lru import LRU

logger = logging.getLogger(__name__)

LOCAL_SIZE = 128  # compiled structures kept per process
MAX_TREE = 4_000  # SymPy nodes of one entry of a structure compiled here
# ... and over every entry of one evaluated for a caller on an event loop (``local_only``),
# which must not hold it long: an evaluation took 7 to 45 us for structures of 8 to 54,528
# nodes with shared parts (compiled with common subexpressions), and may take about 30 ns
# a node without them
LOCAL_ONLY_MAX_TREE = 4_000
MAX_BLOB_BYTES = 1 << 20  # one exported structure, as JSON


class StructureCache(Protocol):
    """Bytes under a key, shared between processes; both calls may silently do nothing."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, blob: bytes) -> None: ...


_shared: StructureCache | None = None
# compiled structures by name; None: a structure the worker answers (not compiled here)
_local: LRU[str, Compiled | None] = LRU(LOCAL_SIZE)
_UNKNOWN = object()


def configure(cache: StructureCache | None) -> None:
    """Share derived structures through ``cache`` (None: within this process only)."""
    global _shared
    _shared = cache
    _local.clear()


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class NotLocal(Exception):
    """A check asked to run from this process's memory alone (``local_only``) needs more:
    the shared store or a SymPy worker, which wait on another process."""


def reply(
    job: dict[str, Any], key: str, run_worker: Callable[[dict[str, Any]], dict[str, Any]],
    local_only: bool = False,
) -> dict[str, Any]:
    """The worker's reply to ``job`` (``key``: its structure key), computed here when the
    structure is known and smooth, else by ``run_worker`` (asked to export what it derives
    when the structure is new here). ``local_only``: NotLocal rather than waiting on the
    shared store or a worker (a caller on an event loop, which then moves to a thread)."""
    name = digest(key)
    found = _local.get(name, _UNKNOWN)
    known = found is not _UNKNOWN
    compiled = None if found is _UNKNOWN else found
    if local_only:
        small = compiled is not None and compiled.size <= LOCAL_ONLY_MAX_TREE
        answer = compiled.evaluate(job["values"]) if small else None
        if answer is None:
            raise NotLocal("the check needs the shared store, a SymPy worker or a thread")
        return answer
    if not known and _shared is not None:
        blob = _shared.get(f"check:{name}")
        if blob is not None and len(blob) <= MAX_BLOB_BYTES:
            compiled = _remember(name, blob)
            known = True
    if compiled is not None:
        answer = compiled.evaluate(job["values"])
        if answer is not None:
            return answer
    answer = run_worker(job if known else {**job, "export": True})
    blob = answer.pop("compiled", None)
    if blob is not None and not known:
        if len(blob) > MAX_BLOB_BYTES:  # too large to be worth loading: the worker's, always
            _remember(name, None)
        elif _remember(name, blob) is not None and _shared is not None:
            _shared.put(f"check:{name}", blob)
    return answer


def _remember(name: str, blob: bytes | None) -> Compiled | None:
    """Keep ``blob`` compiled under ``name`` (None: the worker answers this structure)."""
    compiled = None
    try:
        compiled = None if blob is None else Compiled.load(blob)
    except Exception as exc:  # a stale or foreign blob: derive again instead
        logger.warning("ignoring an unreadable shared check structure: %s", exc)
    _local.put(name, compiled)
    return compiled


def export(quantities: dict, zero: dict, defs: list, leaves: dict, text: Any, latex: Any) -> bytes:
    """What a worker sends back to be shared: a structure's parts as JSON; its entries
    only when every one is a smooth tree small enough to compile (else the worker answers)."""
    try:
        entries = (
            None
            if defs
            else [
                [list(path), list(arr.shape), [_tree(e, [0]) for e in arr.flat]]
                for path, arr in quantities.items()
            ]
        )
    except _NotSmooth:
        entries = None
    return json.dumps(
        {
            "v": 2,
            "entries": entries,
            "zero": [list(p) for p, z in zero.items() if z],
            "leaves": {
                nid: [list(arr.shape), [str(s) for s in arr.flat]] for nid, arr in leaves.items()
            },
            "text": text,
            "latex": latex,
        }
    ).encode()


class _NotSmooth(Exception):
    """An expression outside what this module compiles: the worker keeps answering it."""


def _smooth_functions() -> dict[str, Any]:
    import sympy as sp

    return {
        f.__name__: f
        for f in (
            sp.Add,
            sp.Mul,
            sp.Pow,
            sp.exp,
            sp.log,
            sp.sin,
            sp.cos,
            sp.tan,
            sp.asin,
            sp.acos,
            sp.atan,
            sp.atan2,
            sp.sinh,
            sp.cosh,
            sp.tanh,
            sp.asinh,
            sp.acosh,
            sp.atanh,
            sp.erf,
        )
    }


def _tree(expr: Any, size: list[int]) -> list:
    """``expr`` as nested lists: ``["s", name]``, ``["n", p, q]`` (a rational),
    ``["f", float]``, ``["E"]``, ``["pi"]`` or ``[function, *args]``."""
    import sympy as sp

    size[0] += 1
    if size[0] > MAX_TREE:
        raise _NotSmooth("too large")
    if expr.is_Symbol:
        return ["s", expr.name]
    if expr.is_Rational:
        return ["n", int(expr.p), int(expr.q)]
    if expr.is_Float:
        return ["f", float(expr)]
    if expr is sp.E or expr is sp.pi:
        return [str(expr) if expr is sp.pi else "E"]
    name = type(expr).__name__
    if name not in _smooth_functions():
        raise _NotSmooth(name)
    return [name, *(_tree(a, size) for a in expr.args)]


def _expr(tree: Any, symbols: dict[str, Any], functions: dict[str, Any]) -> Any:
    """The inverse of ``_tree``; anything else in the tree is a ValueError."""
    import sympy as sp

    if not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
        raise ValueError("not an expression tree")
    head, args = tree[0], tree[1:]
    if head == "s" and len(args) == 1:
        return symbols[args[0]]  # a KeyError for a symbol that is not a leaf's
    if head == "n" and len(args) == 2 and all(type(a) is int for a in args) and args[1]:
        return sp.Rational(args[0], args[1])
    if head == "f" and len(args) == 1 and isinstance(args[0], float) and math.isfinite(args[0]):
        return sp.Float(args[0])
    if head in ("E", "pi") and not args:
        return sp.E if head == "E" else sp.pi
    if head in functions:
        return functions[head](*(_expr(a, symbols, functions) for a in args))
    raise ValueError(f"{head!r} is not a function this module compiles")


def _size(tree: list) -> int:
    """Nodes of an expression tree (``_tree``'s lists)."""
    return 1 + sum(_size(a) for a in tree[1:] if isinstance(a, list))


class Compiled:
    """One structure's entries as a float function of its leaves (None when not smooth)."""

    def __init__(self, parts: dict[str, Any]) -> None:
        import sympy as sp

        self.leaves: dict[str, list[Any]] = {
            nid: [sp.Symbol(name, real=True) for name in names]
            for nid, (_shape, names) in parts["leaves"].items()
        }
        self.extra = {
            "text": parts["text"],
            "latex": parts["latex"],
            "kinks": [],
            "unevaluated": [],
            "cached": True,
            "zero": parts["zero"],
        }
        self.shapes: dict[tuple[str, ...], tuple[int, ...]] = {}
        self.function = None
        self.size = 0  # SymPy nodes over every entry: what an evaluation costs
        if parts["entries"] is not None:
            symbols = {str(s): s for syms in self.leaves.values() for s in syms}
            functions = _smooth_functions()
            exprs = []
            for path, shape, trees in parts["entries"]:
                self.shapes[tuple(path)] = tuple(shape)
                exprs += [_expr(t, symbols, functions) for t in trees]
                self.size += sum(map(_size, trees))
            flat = [s for syms in self.leaves.values() for s in syms]
            # dummify: the generated code names no leaf, whatever its node id reads like
            self.function = sp.lambdify(flat, exprs, modules="math", cse=True, dummify=True)

    @classmethod
    def load(cls, blob: bytes) -> Compiled:
        parts = json.loads(blob)
        if not isinstance(parts, dict) or parts.get("v") != 2:
            raise ValueError("not a version-2 structure")
        return cls(parts)

    def evaluate(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """The reply the worker would give at ``values``; None where it must be asked."""
        if self.function is None:
            return None
        args = [
            float(v) for nid in self.leaves for v in np.asarray(values[nid], dtype=np.float64).flat
        ]
        try:
            # ``math`` raises at domain edges; a float power of a negative is complex
            flat = [float(v) for v in self.function(*args)]
        except (ArithmeticError, ValueError, TypeError):
            return None  # a domain edge or a complex value: the worker says what it is
        if not all(math.isfinite(v) for v in flat):
            return None
        out: dict[str, Any] = {}
        at = 0
        for path, shape in self.shapes.items():
            n = math.prod(shape)
            tree = out
            for part in path[:-1]:
                tree = tree.setdefault(part, {})
            tree[path[-1]] = np.array(flat[at : at + n], dtype=np.float64).reshape(shape)
            at += n
        return {"values": out, **self.extra}
