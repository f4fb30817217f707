"""The trace of a tape: entries in recording order, the leaves they read, and a jaxpr-like text.

The text opens with a header as jaxpr's does, ``{ lambda consts ; leaves. let``: the
inline constants (named ``node.inputs[i]``, with their values) and the leaves (name and
shape), then one line per entry (index, output name and shape, op, attrs, inputs, and
its value and cotangent), then ``in (outputs) }`` and each leaf's gradient. Every name
is the same in the text and in the structured entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
class TraceLeaf:
    """A tensor the entries read that no entry produced: a leaf or an inline constant."""

    name: str
    kind: str  # "leaf" (a variable or constant node) or "constant" (an inline number)
    shape: tuple[int, ...]
    value: np.ndarray
    grad: np.ndarray | None  # the leaf's gradient, when the request computed it


@dataclass
class Trace:
    entries: list[TraceEntry]
    text: str
    leaves: list[TraceLeaf] = field(default_factory=list)


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


def _inline(name: str) -> bool:
    """An inline constant of a node's inputs is named ``node.inputs[i]``."""
    return name.endswith("]")


def _leaves(entries: Sequence[Entry], grads: Mapping[str, Any]) -> list[TraceLeaf]:
    """The tensors read before (or without) being produced by an entry, in first-read order."""
    made = {id(e.output) for e in entries}
    seen: set[int] = set()
    out = []
    for e in entries:
        for t in e.inputs:
            if id(t) in made or id(t) in seen:
                continue
            seen.add(id(t))
            name = _label(t)
            g = grads.get(name)
            out.append(
                TraceLeaf(
                    name,
                    "constant" if _inline(name) else "leaf",
                    t.shape,
                    t.numpy(),
                    None if g is None else np.asarray(g),
                )
            )
    return out


def build_trace(
    entries: Sequence[Entry],
    grads_seen: dict[int, Tensor] | None,
    leaf_grads: Mapping[str, Any] | None = None,
    points: int | None = None,
) -> Trace:
    """Structured entries, their leaves and their text, from a tape's entries, a sweep's
    cotangents and the leaves' gradients (by name). With ``points``, every value has a
    leading axis of that many points, and the header says so."""
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
        grad_text = "" if g is None else f"  grad={_short(g.value)}"
        lines.append(
            f"{i:>4}  {entry.output}:{_type(entry.shape)} = {entry.op}{attr_text} "
            f"{' '.join(entry.inputs)}  ; value={_short(entry.value)}{grad_text}"
        )
    leaves = _leaves(entries, leaf_grads or {})
    consts = " ".join(
        f"{c.name}:{_type(c.shape)}={_short(c.value)}" for c in leaves if c.kind == "constant"
    )
    named = " ".join(f"{c.name}:{_type(c.shape)}" for c in leaves if c.kind == "leaf")
    over = (
        f"  # over {points} points: every value has a leading axis of {points}"
        if points is not None
        else ""
    )
    head = f"{{ lambda {consts + ' ' if consts else ''}; {named}. let{over}"
    results = _results(entries)
    tail = [f"  in ({', '.join(results)}) }}"]
    if leaf_grads:
        tail.append(
            "grads: "
            + "  ".join(
                f"{c.name}={'None' if c.grad is None else _short(c.grad)}"
                for c in leaves
                if c.kind == "leaf" and c.name in leaf_grads
            )
        )
    return Trace(out, "\n".join([head, *lines, *tail]), leaves)


def _results(entries: Sequence[Entry]) -> list[str]:
    """The entries' outputs no later entry reads: what the recording computed."""
    read = {id(t) for e in entries for t in e.inputs}
    return [_label(e.output) for e in entries if id(e.output) not in read]
