"""The one value codec: JSON numbers and nested arrays <-> float64 numpy values.

Non-finite numbers travel as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` both ways (the protobuf JSON convention), so a response never
holds a bare ``NaN`` token. Requests decode through ``decode`` (a pydantic
validator); responses encode through ``encode`` and ``jsonable``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import PlainValidator, WithJsonSchema

from app.sending import Part
from app.wire.written import Written, dumps

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Elements of a large array written at a time (``encode_for_response``): about 2 ms of the
# interpreter lock each.
PIECE_ELEMENTS = 1 << 16
# Bytes of text a finite array is estimated to write from which it is written in slabs:
# about 10 ms of the lock in one call (orjson writes about 1.2 ns a byte here).
SLAB_MIN_TEXT = 8 << 20
MAX_RANK = 32  # of a value and of any node (Limits.max_rank): Jacobians add ranks, numpy allows 64
_NUMBER_TYPES = frozenset({float, int})

SCALAR_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": list(NON_FINITE)}]
}
VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [*SCALAR_SCHEMA["anyOf"], {"type": "array", "items": {}}],
    "description": (
        'A number, "NaN", "Infinity", "-Infinity", or a rectangular nested array of '
        "them (a tensor whose shape is read from the nesting). Arithmetic is float64. A "
        'number past its range (1e309) is refused: an infinite value is written "Infinity".'
    ),
}


class BeyondFloat64(float):
    """A JSON number written past float64's range (``1e309``), as the decoder reads it
    (``float_literal``): JSON has no infinity and the wire writes one as ``"Infinity"``,
    so where a value is expected it is refused (a 422 naming it), not read as one."""


def float_literal(text: str) -> float:
    """A JSON number's text as a float, or a ``BeyondFloat64`` past float64's range
    (``json.loads``' ``parse_float``)."""
    x = float(text)
    return x if x - x == 0 else BeyondFloat64(x)


def _kind(v: Any) -> str:
    if isinstance(v, BeyondFloat64):
        sign = "-" if v < 0 else ""
        return (f"a number beyond the float64 range (an infinite value is written "
                f'"{sign}Infinity")')
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string" if len(v) > 20 else f"the string {v!r}"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "an array"
    return type(v).__name__


def _where(path: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in path) or "the top level"


def _bad_leaf(v: Any, path: tuple[int, ...]) -> ValueError:
    if isinstance(v, list):
        return ValueError(f"ragged array at {_where(path)}: found an array where numbers were")
    return ValueError(
        f"expected a number, NaN, Infinity or -Infinity at {_where(path)}, got {_kind(v)}"
    )


def _check_leaves(items: list[Any], path: list[int]) -> None:
    """Raise unless every item is a number or one of the non-finite strings."""
    types = set(map(type, items))
    if types <= _NUMBER_TYPES:
        return
    for i, v in enumerate(items):
        t = type(v)
        if t is float or t is int or (t is str and v in NON_FINITE):
            continue
        raise _bad_leaf(v, (*path, i))


def _check(node: list[Any], shape: list[int], depth: int, path: list[int]) -> None:
    """Raise unless ``node`` is a rectangular array of ``shape[depth:]``. ``path``, the
    indices down to ``node``, is one list pushed and popped: a tuple built per array cost
    its depth each time (1.2 s for 32,765 arrays nested 31 deep)."""
    if len(node) != shape[depth]:
        raise ValueError(f"ragged array at {_where(tuple(path))}: expected {shape[depth]} "
                         f"items, got {len(node)}")
    if depth == len(shape) - 1:
        _check_leaves(node, path)
        return
    for i, child in enumerate(node):
        path.append(i)
        if type(child) is not list:
            raise ValueError(
                f"ragged array at {_where(tuple(path))}: expected an array of "
                f"{shape[depth + 1]} items, got {_kind(child)}"
            )
        _check(child, shape, depth + 1, path)
        path.pop()


def decode(obj: Any) -> np.ndarray | np.float64:
    """A JSON value as float64: a numpy scalar for a number, an ndarray for an array."""
    t = type(obj)
    if t is float:
        return np.float64(obj)
    if t is int:
        try:
            return np.float64(float(obj))
        except OverflowError:
            raise ValueError("a number beyond the float64 range") from None
    if t is str and obj in NON_FINITE:
        return np.float64(NON_FINITE[obj])
    if t is list:
        shape: list[int] = []
        cur: Any = obj
        while type(cur) is list:
            shape.append(len(cur))
            if len(shape) > MAX_RANK:
                raise ValueError(f"an array of more than {MAX_RANK} dimensions")
            if not cur:
                break
            cur = cur[0]
        _check(obj, shape, 0, [])
        try:
            return np.array(obj, dtype=np.float64)
        except OverflowError:
            raise ValueError("a number beyond the float64 range") from None
    if isinstance(obj, np.ndarray | np.floating | np.integer) and not isinstance(obj, np.bool_):
        arr = np.asarray(obj, dtype=np.float64)
        return arr[()] if arr.ndim == 0 else arr
    raise ValueError(
        f"expected a number, NaN, Infinity, -Infinity or a nested array of them, got {_kind(obj)}"
    )


def encode(value: Any) -> Any:
    """A float64 value as JSON data: numbers, nested lists, non-finite as strings."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype != np.float64:
        arr = arr.astype(np.float64)
    if arr.ndim == 0:
        x = float(arr)
        return x if math.isfinite(x) else _nonfinite_str(x)
    finite = np.isfinite(arr)
    if finite.all():
        return arr.tolist()
    out = arr.astype(object)
    out[np.isnan(arr)] = "NaN"
    out[arr == math.inf] = "Infinity"
    out[arr == -math.inf] = "-Infinity"
    return out.tolist()


def encode_for_response(value: Any) -> Any:
    """As ``encode``, but a finite array stays a (C-ordered) ndarray, and a large array is
    written now, a slab of rows at a time (a ``Written`` text of the same bytes).

    Why: the response renderer (orjson) writes float64 arrays straight from memory,
    about ten times faster than building nested lists first; that is most of a large
    Hessian's response time. But orjson holds the interpreter lock while it writes, and
    ``/healthz`` on the event loop waits it out: a dense 1,000 x 1,000 array of distinct
    numbers takes about 30 ms in one call, and one with a non-finite number, built into
    nested lists with the strings, far longer and about 65 MB. Slabs cost their copies (a
    tridiagonal one's 4 MB: 11 ms in slabs, 4.4 ms in one call), so a finite array that
    writes little text (mostly zeros) is written in one call.
    """
    if not (isinstance(value, np.ndarray) and value.ndim and value.dtype == np.float64):
        return encode(value)
    value = np.asarray(value)  # a subclass (np.matrix) may keep its rank when indexed
    finite = bool(np.isfinite(value).all())
    if value.size > PIECE_ELEMENTS and (not finite or _text_bytes(value) >= SLAB_MIN_TEXT):
        parts: list[Part] = []
        _write_in_slabs(value, parts)
        # never joined: each copy of megabytes is a fresh allocation whose every page
        # faults in (app.wire.written)
        return Written(parts)
    return np.ascontiguousarray(value) if finite else encode(value)


def _write_in_slabs(value: np.ndarray, parts: list[Part]) -> None:
    """Append ``value``'s JSON text to ``parts``, at most ``PIECE_ELEMENTS`` a call."""
    if value.size <= PIECE_ELEMENTS:
        parts.append(dumps(encode_for_response(value)))  # a piece: never slabs again
        return
    row = value.size // len(value)
    step = max(1, PIECE_ELEMENTS // row)
    parts.append(b"[")
    for i in range(0, len(value), step):
        if i:
            parts.append(b",")
        if row > PIECE_ELEMENTS:  # one row is more than a piece: split inside it
            _write_in_slabs(value[i], parts)
        else:  # the slab's rows, less the brackets around them
            parts.append(memoryview(dumps(encode_for_response(value[i : i + step])))[1:-1])
    parts.append(b"]")


def _text_bytes(value: np.ndarray) -> int:
    """About the bytes of JSON ``value`` writes: 4 a zero (``0.0,``), 24 any other number
    (the longest float64 text and its comma; a non-finite one's string is shorter)."""
    nonzero = int(np.count_nonzero(value))
    return 4 * (value.size - nonzero) + 24 * nonzero


def _nonfinite_str(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


_PLAIN = frozenset({type(None), bool, str, int})


def jsonable(obj: Any, depth: int = 0) -> Any:
    """Any engine-produced data (reports, attrs) as JSON data that cannot fail to serialize."""
    t = type(obj)
    if t in _PLAIN:
        return obj
    if t is float:
        return obj if math.isfinite(obj) else _nonfinite_str(obj)
    if isinstance(obj, bool | str | int):  # subclasses (enums, ...)
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else _nonfinite_str(obj)
    if isinstance(obj, np.ndarray | np.floating | np.integer) and not isinstance(obj, np.bool_):
        return encode(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if depth > MAX_RANK:
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in obj]
    return str(obj)


Value = Annotated[Any, PlainValidator(decode), WithJsonSchema(VALUE_SCHEMA)]
"""A request value: decoded to ``np.float64`` or a float64 ``np.ndarray``."""

EncodedValue = Annotated[Any, WithJsonSchema(VALUE_SCHEMA)]
"""A response value, already encoded by ``encode`` (documentation type)."""
