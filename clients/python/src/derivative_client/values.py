"""Values on the wire: float64 numbers or nested lists, non-finite ones as strings.

Arrays come back as numpy arrays when numpy is installed, nested lists of floats
otherwise; a scalar is always a Python float.
"""

from __future__ import annotations

import math
from typing import Any

try:
    import numpy as np
except ImportError:  # numpy is an optional extra: pip install 'derivative-client[numpy]'
    np = None  # type: ignore[assignment]

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode(value: Any) -> Any:
    """A number, nested sequence or numpy array as the wire wants it."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy arrays and scalars
    if isinstance(value, bool):
        raise TypeError("a value is a number or nested list of numbers, not a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isfinite(number):
            return value
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, str) and value in NON_FINITE:
        return value
    raise TypeError(f"not a value: {value!r} (a number or nested list of numbers)")


def _floats(value: Any) -> Any:
    if isinstance(value, list):
        return [_floats(item) for item in value]
    if isinstance(value, str):
        return NON_FINITE[value]
    return float(value)


def decode(value: Any) -> Any:
    """A wire value as a float, or an array (numpy when installed, else nested lists)."""
    if value is None:
        return None
    floats = _floats(value)
    if isinstance(floats, list) and np is not None:
        return np.asarray(floats, dtype=float)
    return floats


def decode_map(values: dict[str, Any] | None) -> dict[str, Any]:
    return {key: decode(value) for key, value in (values or {}).items()}
