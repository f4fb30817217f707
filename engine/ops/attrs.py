"""Op attrs: what an option of an op is (``Attr``), and turning a request's raw values
into validated ones with defaults filled in.

Attrs come from JSON, so an integer may arrive as a bool or a list as anything; each
kind accepts exactly its wire form and names the attr (and the node) when it does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import AttrError


@dataclass(frozen=True)
class Attr:
    """An op option: its kind drives validation, ``default`` is used when absent."""

    # "axis" | "axes" | "bool" | "shape" | "perm" | "int" | "ints", and for one op each:
    # "indices" (gather), "index" (strided_slice), "ord" (norm): see engine.ops.index_attrs
    kind: str
    default: Any = None
    required: bool = False
    doc: str = ""


SHOWN_UNKNOWN = 5  # unknown attrs a refusal names


def normalize_attrs(
    op_name: str, specs: Mapping[str, Attr], raw: Mapping[str, Any] | None, node: str | None
) -> dict[str, Any]:
    """``raw`` validated against ``specs`` (the attrs of op ``op_name``), defaults filled."""
    raw = dict(raw or {})
    unknown = [k for k in raw if k not in specs]
    if unknown:  # the first few named, in the order sent: a body may bring 190,000
        allowed = ", ".join(specs) or "none"
        named = ", ".join(repr(k if len(k) <= 40 else k[:37] + "...")
                          for k in unknown[:SHOWN_UNKNOWN])
        more = f" and {len(unknown) - SHOWN_UNKNOWN} more" if len(unknown) > SHOWN_UNKNOWN else ""
        raise AttrError(f"unknown attr(s) [{named}]{more} for {op_name}; allowed: {allowed}",
                        node=node)
    out = {}
    for name, spec in specs.items():
        if name not in raw:
            if spec.required:
                raise AttrError(f"{op_name} needs attr {name!r}", node=node, field=name)
            out[name] = spec.default
            continue
        out[name] = _coerce(spec, raw[name], name, node)
    return out


INT64_BOUND = 2**63  # integer attrs are int64, as TF's: -2**63 <= i < 2**63


def is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def int64(v: Any) -> int:
    """An integer attr as an int64, else ValueError: JSON brings integers of any length, and
    one past 64 bits would fail where the attr is written back (a trace, a registered graph
    read again)."""
    if -INT64_BOUND <= v < INT64_BOUND:
        return int(v)
    raise ValueError("an integer of at most 64 bits (-2**63 to 2**63 - 1)")


def _coerce(spec: Attr, v: Any, name: str, node: str | None) -> Any:
    def bad(expected: str) -> AttrError:
        return AttrError(f"attr {name!r} must be {expected}", node=node, field=name)

    def checked_int64(v: Any) -> int:
        try:
            return int64(v)
        except ValueError as e:
            raise bad(str(e)) from None

    def int_list(v: Any) -> tuple[int, ...]:
        if isinstance(v, list | tuple) and all(is_int(x) for x in v):
            return tuple(map(checked_int64, v))
        raise bad("a list of integers")

    kind = spec.kind
    if kind == "bool":
        if isinstance(v, bool):
            return v
        raise bad("true or false")
    if kind == "int":
        if is_int(v):
            return checked_int64(v)
        raise bad("an integer")
    if kind == "axis":  # int or null
        if v is None or is_int(v):
            return None if v is None else checked_int64(v)
        raise bad("an integer or null")
    if kind == "axes":  # int, list of ints or null
        if v is None:
            return None
        if is_int(v):
            return checked_int64(v)
        return int_list(v)
    if kind in ("shape", "perm", "ints"):
        if v is None and not spec.required:
            return None
        return int_list(v)
    special = SPECIAL_KINDS.get(kind)
    if special is None:
        raise AssertionError(f"unknown attr kind {kind}")
    try:
        return special(v)
    except ValueError as e:
        raise bad(str(e)) from None


# kind -> ``coerce(raw) -> value``, raising ValueError with what was expected; filled by
# engine.ops.index_attrs (kinds whose wire forms need more than a line to read)
SPECIAL_KINDS: dict[str, Any] = {}
