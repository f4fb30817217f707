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

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
MAX_RANK = 32  # of a value and of any node (Limits.max_rank): Jacobians add ranks, numpy allows 64
_NUMBER_TYPES = frozenset({float, int})

SCALAR_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": list(NON_FINITE)}]
}
VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [*SCALAR_SCHEMA["anyOf"], {"type": "array", "items": {}}],
    "description": (
        'A number, "NaN", "Infinity", "-Infinity", or a rectangular nested array of '
        "them (a tensor whose shape is read from the nesting). Arithmetic is float64."
    ),
}


def _kind(v: Any) -> str:
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


def _check_leaves(items: list[Any], path: tuple[int, ...]) -> None:
    """Raise unless every item is a number or one of the non-finite strings."""
    types = set(map(type, items))
    if types <= _NUMBER_TYPES:
        return
    for i, v in enumerate(items):
        t = type(v)
        if t is float or t is int or (t is str and v in NON_FINITE):
            continue
        raise _bad_leaf(v, (*path, i))


def _check(node: list[Any], shape: list[int], depth: int, path: tuple[int, ...]) -> None:
    """Raise unless ``node`` is a rectangular array of ``shape[depth:]``."""
    if len(node) != shape[depth]:
        raise ValueError(
            f"ragged array at {_where(path)}: expected {shape[depth]} items, got {len(node)}"
        )
    if depth == len(shape) - 1:
        _check_leaves(node, path)
        return
    for i, child in enumerate(node):
        if type(child) is not list:
            raise ValueError(
                f"ragged array at {_where((*path, i))}: expected an array of "
                f"{shape[depth + 1]} items, got {_kind(child)}"
            )
        _check(child, shape, depth + 1, (*path, i))


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
        _check(obj, shape, 0, ())
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
    """As ``encode``, but a finite array stays a (C-ordered) ndarray.

    Why: the response renderer (orjson) writes float64 arrays straight from memory,
    about ten times faster than building nested lists first; that is most of a large
    Hessian's response time. Non-finite arrays still become lists with the strings.
    """
    if isinstance(value, np.ndarray) and value.ndim and value.dtype == np.float64:
        if np.isfinite(value).all():
            return np.ascontiguousarray(value)
    return encode(value)


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
