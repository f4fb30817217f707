"""Attr kinds whose wire forms need more than a line to read: gather's ``indices``,
strided_slice's ``index`` and norm's ``ord``.

Each is normalised to one form that is at once JSON (a stored graph shows it back),
hashable (shape inference memoises on attrs) and what the library spelling gives:
``x[1:, None, ..., 0]`` and ``{"index": ["1:", null, "...", 0]}`` are the same attr.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from engine.ops.attrs import SPECIAL_KINDS, int64, is_int

MAX_INDEX_DEPTH = 32  # nesting of an ``indices`` list, as a value's
_SLICE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?$")


# ------------------------------------------------------------------ indices


def coerce_indices(v: Any) -> int | tuple:
    """An int64 or a rectangular nested list of them, as nested tuples."""
    if is_int(v):
        return int64(v)
    if isinstance(v, np.ndarray) and v.dtype.kind in "iu":
        return _tuples(v.tolist())
    _check_int_tree(v, 0)
    try:
        arr = np.asarray(v, dtype=np.int64)
    except OverflowError:
        raise ValueError("a nested list of integers of at most 64 bits (-2**63 to "
                         "2**63 - 1)") from None
    except ValueError:
        raise ValueError("a rectangular nested list of integers") from None
    return _tuples(arr.tolist())


def _check_int_tree(v: Any, depth: int) -> None:
    if depth > MAX_INDEX_DEPTH:
        raise ValueError(f"an integer list nested at most {MAX_INDEX_DEPTH} deep")
    if not isinstance(v, list | tuple):
        raise ValueError("an integer or a nested list of integers")
    for x in v:
        if not is_int(x):
            _check_int_tree(x, depth + 1)


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else int(v)


def indices_shape(indices: Any) -> tuple[int, ...]:
    return np.shape(np.asarray(indices, dtype=np.int64))


# ------------------------------------------------------------------ index

ELLIPSIS = "..."


def coerce_index(v: Any) -> tuple:
    """A list of index items: an int, null (a new axis), "..." (Ellipsis, at most one) or
    a slice "begin:end:step" (each part optional, step non-zero); Python's slice objects
    and Ellipsis are read as those."""
    items = v if isinstance(v, list | tuple) else [v]
    out: list[Any] = []
    for item in items:
        if is_int(item):
            out.append(int64(item))
        elif item is None:
            out.append(None)
        elif item is Ellipsis or item == ELLIPSIS:
            out.append(ELLIPSIS)
        elif isinstance(item, slice):
            out.append(_slice_text(item.start, item.stop, item.step))
        elif isinstance(item, str) and (m := _SLICE.match(item)):
            out.append(_slice_text(*(None if g is None else int(g) for g in m.groups())))
        else:
            raise ValueError(
                'a list of index items: integers, null (new axis), "..." or slices "begin:end:step"'
            )
    if out.count(ELLIPSIS) > 1:
        raise ValueError('an index with at most one "..."')
    return tuple(out)


def _slice_text(start: Any, stop: Any, step: Any) -> str:
    for part in (start, stop, step):
        if part is not None and not is_int(part):
            raise ValueError("slices of integers (or null)")
    if step is not None and int(step) == 0:
        raise ValueError("slices with a non-zero step")

    def text(p: Any) -> str:
        return "" if p is None else str(int(p))

    return f"{text(start)}:{text(stop)}" + ("" if step is None else f":{text(step)}")


def python_index(items: tuple) -> tuple:
    """The normalised items as the tuple numpy indexes with."""
    out: list[Any] = []
    for item in items:
        if item == ELLIPSIS:
            out.append(Ellipsis)
        elif isinstance(item, str):
            parts = [None if p == "" else int(p) for p in item.split(":")]
            out.append(slice(*parts))
        else:
            out.append(item)
    return tuple(out)


# ------------------------------------------------------------------ ord

NAMED_ORDS = ("euclidean", "fro", "inf")


def coerce_ord(v: Any) -> str | float | int:
    """ "euclidean", "fro", "inf" (or infinity itself) or a positive real number p."""
    if isinstance(v, str) and v in NAMED_ORDS:
        return v
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        if math.isinf(v) and v > 0:
            return "inf"
        if math.isfinite(v) and v > 0:
            # an integer p stays an int only while JSON keeps it exact (p = 1e308 would
            # be a 1,024-bit int that no response can carry)
            return int(v) if float(v).is_integer() and abs(v) <= 2**53 else float(v)
    raise ValueError('"euclidean", "fro", "inf" or a positive number')


SPECIAL_KINDS.update({"indices": coerce_indices, "index": coerce_index, "ord": coerce_ord})
