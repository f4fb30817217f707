"""The trace of a tape: entries in recording order, and a jaxpr-like text form.

One line per entry: index, output name and shape, op, attrs, inputs; values
and the cotangent that reached each entry are in the structured form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.tape.entries import Entry

TEXT_VALUE_ELEMENTS = 6  # a value longer than this is summarised in the text form


@dataclass
class TraceEntry:
    index: int
    op: str
    inputs: list[str]
    output: str
    shape: tuple[int, ...]
    value: np.ndarray
    grad: np.ndarray | None
    attrs: dict[str, Any]


@dataclass
class Trace:
    entries: list[TraceEntry]
    text: str


def _label(t: Tensor) -> str:
    return t.name if t.name is not None else f"t{id(t) & 0xFFFF:04x}"


def _type(shape: tuple[int, ...]) -> str:
    return f"f64[{','.join(map(str, shape))}]"


def _short(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return format(float(arr), ".6g")
    if arr.size > TEXT_VALUE_ELEMENTS:
        return f"<{arr.size} values>"
    return np.array2string(arr, precision=6, separator=",").replace("\n", "")


def build_trace(entries: Sequence[Entry], grads_seen: dict[int, Tensor] | None) -> Trace:
    """Structured entries and their text, from a tape's entries and a sweep's cotangents."""
    grads = grads_seen or {}
    out: list[TraceEntry] = []
    lines = []
    for i, e in enumerate(entries):
        g = grads.get(id(e.output))
        attrs = {k: v for k, v in e.attrs.items() if v is not None}
        entry = TraceEntry(
            index=i,
            op=e.op.name,
            inputs=[_label(x) for x in e.inputs],
            output=_label(e.output),
            shape=e.output.shape,
            value=e.output.numpy(),
            grad=None if g is None else g.numpy(),
            attrs=attrs,
        )
        out.append(entry)
        attr_text = "".join(f"[{k}={v}]" for k, v in attrs.items())
        # inline constants (named "node.inputs[i]") read better as their value
        args = " ".join(
            _short(t.value) if x.endswith("]") else x
            for x, t in zip(entry.inputs, e.inputs, strict=True)
        )
        grad_text = "" if g is None else f"  grad={_short(g.value)}"
        lines.append(
            f"{i:>4}  {entry.output}:{_type(entry.shape)} = {entry.op}{attr_text} {args}"
            f"  ; value={_short(entry.value)}{grad_text}"
        )
    return Trace(out, "\n".join(lines))
