"""SymPy's derivative of a graph structure, derived once, shared, and evaluated here.

A SymPy worker derives a structure's quantities (engine.check.sympy_job) and, asked to
``export``, sends them back pickled. They are kept in this process (compiled with
``lambdify``) and, when a ``StructureCache`` is configured (the app passes one that
shares them between replicas), there too, under a digest of everything that shapes the
derivative (engine.check.sympy_job.structure_key: nodes, kinds, sources, order, shapes).
The next check of the same structure, on any replica, is evaluated in the request's own
thread: no worker, no pipe, no re-derivation.

Only structures whose every entry is smooth (``SMOOTH`` functions of the leaves, no
``stop_gradient`` cuts) and small (``MAX_TREE``) take that road, and only while every
value comes out a finite real float: kinks, domain edges and non-finite values go to
the worker, whose exact evaluation says what they are. Compiled code is built from
expressions a worker of this service derived: a shared cache must hand back only what
the service put (the app's signs each structure with the replicas' secret,
app.redis_store.SharedCheckCache).
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

LOCAL_SIZE = 128  # compiled structures kept per process
MAX_TREE = 4_000  # SymPy nodes over all entries of a structure compiled here
MAX_BLOB_BYTES = 1 << 20  # one exported structure, pickled


class StructureCache(Protocol):
    """Bytes under a key, shared between processes; both calls may silently do nothing."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, blob: bytes) -> None: ...


_shared: StructureCache | None = None
_local: OrderedDict[str, Compiled | None] = OrderedDict()
_lock = threading.Lock()


def configure(cache: StructureCache | None) -> None:
    """Share derived structures through ``cache`` (None: within this process only)."""
    global _shared
    _shared = cache
    with _lock:
        _local.clear()


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def reply(
    job: dict[str, Any], key: str, run_worker: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """The worker's reply to ``job`` (``key``: its structure key), computed here when the
    structure is known and smooth, else by ``run_worker`` (asked to export what it derives
    when the structure is new here)."""
    name = digest(key)
    known = name in _local
    compiled = _local.get(name)
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
    with _lock:
        _local[name] = compiled
        while len(_local) > LOCAL_SIZE:
            _local.popitem(last=False)
    return compiled


def export(quantities: dict, zero: dict, defs: list, leaves: dict, text: Any, latex: Any) -> bytes:
    """What a worker sends back to be shared: a compiled structure's parts, pickled."""
    return pickle.dumps(
        {
            "v": 1,
            "quantities": quantities,
            "zero": zero,
            "defs": defs,
            "leaves": leaves,
            "text": text,
            "latex": latex,
        }
    )


class Compiled:
    """One structure's entries as a float function of its leaves (None when not smooth)."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.leaves: dict[str, np.ndarray] = parts["leaves"]
        self.shapes = {path: arr.shape for path, arr in parts["quantities"].items()}
        self.extra = {
            "text": parts["text"],
            "latex": parts["latex"],
            "kinks": [],
            "unevaluated": [],
            "cached": True,
            "zero": [list(p) for p, z in parts["zero"].items() if z],
        }
        self.function = _compile(parts) if not parts["defs"] else None

    @classmethod
    def load(cls, blob: bytes) -> Compiled:
        parts = pickle.loads(blob)  # noqa: S301 - written by this service's own workers
        if not isinstance(parts, dict) or parts.get("v") != 1:
            raise ValueError("not a version-1 structure")
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


def _compile(parts: dict[str, Any]) -> Callable[..., list[Any]] | None:
    """``lambdify`` over the math module (floats, raising at domain edges), or None."""
    import sympy as sp

    smooth = {
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
    }
    symbols = [s for arr in parts["leaves"].values() for s in arr.flat]
    exprs = [sp.sympify(e) for arr in parts["quantities"].values() for e in arr.flat]
    size = 0
    for expr in exprs:
        if not expr.free_symbols <= set(symbols):
            return None
        for node in sp.preorder_traversal(expr):
            size += 1
            if size > MAX_TREE or not (node.is_Atom or node.func in smooth):
                return None
    return sp.lambdify(symbols, exprs, modules="math", cse=True)
