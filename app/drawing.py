"""``POST /v1/draw``: the recorded tape of a gradient, laid out by Graphviz ``dot`` as SVG.

The drawing is made from a ``/v1/gradient`` answer with its trace (every recorded op:
op, inputs, shape, value and adjoint) and the leaves' values: boxes for ops, ellipses
for leaves, an edge per input, the adjoint on each node, the nodes and edges on a path
from a source to the target in red, and a source whose gradient is ``null`` dashed,
with the reason from its note.

Every user string (node ids, values' text) reaches DOT only inside a quoted string,
escaped (``dot_string``); nodes are named ``n0, n1, ...`` so no id is ever DOT syntax.
``dot`` escapes text for SVG itself (``<``, ``&``, quotes). It runs as a subprocess
with a bounded input and a timeout, so a slow layout costs a 422, never a hung worker;
one at a time per process (``app.turns``), killed when its client goes away.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from app.turns import POLL_SECONDS, Turns
from app.wire.written import Written
from engine import budget
from engine.errors import ComputeLimitError

DOT_SECONDS = 5.0
DOTS_AT_ONCE = 1  # one core's worth of layouts: each can take DOT_SECONDS of it
_turns = Turns(DOTS_AT_ONCE, DOT_SECONDS, "another drawing kept Graphviz busy",
                "graphviz_renders")
MAX_DOT_BYTES = 512 * 1024  # the DOT text handed to ``dot``: labels are short by design
MAX_SVG_BYTES = 4 * 2**20
_PATH = "#dc2626"


class DrawingUnavailable(RuntimeError):
    """Graphviz's ``dot`` is not installed: the service cannot draw (a 503)."""


def dot_string(text: str) -> str:
    """``text`` as a DOT double-quoted string: quotes and backslashes escaped (so ``\\N``,
    ``\\G``, ``\\l`` stay literal), ``&`` too (Graphviz reads ``&amp;`` as an entity),
    line breaks as DOT's centred-line escape."""
    text = text.replace("&", "&amp;")
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{text}"'


def _number(v: Any) -> str:
    if isinstance(v, str):  # "NaN", "Infinity", "-Infinity" from the value codec
        return v
    return f"{float(v):.6g}"


def show(value: Any, limit: int = 4) -> str:
    """A value in a few characters: a number, or a tensor's first entries.

    Only the first ``limit + 1`` entries are read, never the whole tensor: a drawing of
    150 nodes of a million entries each costs no more than their labels.
    """
    if value is None:
        return "null"
    if isinstance(value, Written):  # a large array, written for the wire in slabs
        first = [_number(x) for x in _leading_text(value, limit + 1)]
    elif isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _number(value.item())
        first = [_number(x) for x in value.flat[: limit + 1]]
    elif isinstance(value, list):
        first = [_number(x) for x in _leading(value, limit + 1)]
    else:
        return _number(value)
    more = ", ..." if len(first) > limit else ""
    return f"[{', '.join(first[:limit])}{more}]"


# One entry of an array's JSON text: the codec's "NaN", "Infinity" or "-Infinity", or a number.
_ENTRY = re.compile(rb'"[^"]*"|-?[0-9][0-9.eE+-]*')


def _leading_text(text: Written, count: int) -> list[Any]:
    """The first ``count`` entries of an array's written text, read from its first parts
    only: parsed whole, a 500 x 1,000 array's took 39 ms and 141 MB for four numbers. Its
    parts end between entries (whole slabs of rows, and the brackets and commas around
    them), so no entry is cut in two."""
    out: list[Any] = []
    for part in text.parts:
        for entry in _ENTRY.finditer(part):
            out.append(orjson.loads(entry.group()))
            if len(out) == count:
                return out
    return out


def _leading(nested: list[Any], count: int) -> list[Any]:
    """The first ``count`` numbers of nested lists, in row-major order (no recursion)."""
    out: list[Any] = []
    stack = [iter(nested)]
    while stack and len(out) < count:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            out.append(item)
    return out


_END = object()


def _shape(shape: Sequence[int]) -> str:
    return "scalar" if not shape else "×".join(str(d) for d in shape)


def on_paths(edges: Iterable[tuple[str, str]], sources: Iterable[str], target: str) -> set[str]:
    """Nodes on some path from a source to ``target``: reachable from a source and
    reaching the target (two walks over the edges, no recursion)."""
    edges = list(edges)
    forward: dict[str, list[str]] = {}
    backward: dict[str, list[str]] = {}
    for a, b in edges:
        forward.setdefault(a, []).append(b)
        backward.setdefault(b, []).append(a)

    def reach(start: Iterable[str], step: Mapping[str, list[str]]) -> set[str]:
        seen, todo = set(start), list(start)
        while todo:
            for nxt in step.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return reach(sources, forward) & reach([target], backward)


def to_dot(answer: Mapping[str, Any], leaves: Mapping[str, tuple[str, Any]], target: str) -> str:
    """The DOT text of a gradient ``answer`` (its ``trace``, ``gradients``, ``notes``);
    ``leaves`` maps each leaf id to its op and value."""
    entries = answer["trace"]["entries"]
    gradients: Mapping[str, Any] = answer.get("gradients") or {}
    why = {n["source"]: n for n in answer.get("notes", []) if n.get("source")}
    names: dict[str, str] = {}

    def name(node_id: str) -> str:
        return names.setdefault(node_id, f"n{len(names)}")

    edges = [(i, e["output"]) for e in entries for i in e["inputs"]]
    path = on_paths(edges, [s for s, g in gradients.items() if g is not None], target)
    lines = [
        "digraph tape {",
        "  rankdir=LR;",
        '  bgcolor="white";',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [color="#64748b"];',
    ]
    outputs = {e["output"] for e in entries}
    for node_id in dict.fromkeys(i for i, _ in edges):
        if node_id not in outputs:
            lines.append(
                _leaf_line(
                    name(node_id),
                    node_id,
                    leaves.get(node_id),
                    gradients,
                    why.get(node_id),
                    node_id in path,
                )
            )
    for source in gradients:  # sources no op reads: drawn alone, with their reason
        if source not in outputs and source not in names:
            lines.append(
                _leaf_line(
                    name(source), source, leaves.get(source), gradients, why.get(source), False
                )
            )
    for e in entries:
        label = (
            f"{e['output']}\n{e['op']} · {_shape(e['shape'])}\n"
            f"value {show(e['value'])}\nadjoint {show(e['grad'])}"
        )
        style = f'color="{_PATH}", penwidth=2' if e["output"] in path else 'color="#334155"'
        tag = "target" if e["output"] == target else "op"
        lines.append(
            f"  {name(e['output'])} [shape=box, style=rounded, {style}, "
            f"label={dot_string(label)}, class={dot_string(tag)}];"
        )
    for a, b in edges:
        hot = a in path and b in path
        lines.append(
            f"  {name(a)} -> {name(b)}" + (f' [color="{_PATH}", penwidth=2];' if hot else ";")
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _leaf_line(
    dot_name: str,
    node_id: str,
    leaf: tuple[str, Any] | None,
    gradients: Mapping[str, Any],
    note: Mapping[str, Any] | None,
    hot: bool,
) -> str:
    op, value = leaf if leaf is not None else ("constant", None)
    text = [node_id, op]
    if value is not None:
        text.append(f"value {show(value)}")
    style = "filled"
    cls = "leaf"
    if node_id in gradients:
        grad = gradients[node_id]
        if grad is None:
            reason = note["reason"] if note else "no path"
            text.append(f"gradient null: {reason}")
            style, cls = "filled,dashed", "source-null"
        else:
            text.append(f"adjoint {show(grad)}")
            cls = "source"
    colour = f'color="{_PATH}", penwidth=2' if hot else 'color="#475569"'
    return (
        f'  {dot_name} [shape=ellipse, style={dot_string(style)}, fillcolor="#f1f5f9", '
        f"{colour}, label={dot_string(chr(10).join(text))}, class={dot_string(cls)}];"
    )


def render(dot: str) -> bytes:
    """``dot -Tsvg`` on ``dot``, bounded in input, time and output."""
    exe = shutil.which("dot")
    if exe is None:
        raise DrawingUnavailable("Graphviz's dot is not installed on this replica")
    data = dot.encode()
    if len(data) > MAX_DOT_BYTES:
        raise ComputeLimitError(
            f"the drawing's DOT text has {len(data)} bytes, over the limit of {MAX_DOT_BYTES}",
            field="graph",
        )
    with _turns.turn("waiting to draw"):
        svg, errors, status = _dot(exe, data)
    if status != 0:  # the DOT text is ours: a failure is this service's bug
        raise RuntimeError(f"dot failed ({status}): {errors[:200]!r}")
    if len(svg) > MAX_SVG_BYTES:
        raise ComputeLimitError(
            f"the drawing's SVG has {len(svg)} bytes, over the limit of "
            f"{MAX_SVG_BYTES}: draw a smaller graph",
            field="graph",
        )
    return svg


def _dot(exe: str, data: bytes) -> tuple[bytes, bytes, int]:
    """``dot -Tsvg`` on ``data``: its output, errors and status, within ``DOT_SECONDS``;
    killed once the request is cancelled (``budget.check``), so a client that leaves
    leaves no layout running.

    ``communicate`` runs whole in a thread of its own while this one polls: retried after
    a timeout, it writes no more of its input (CPython refuses input on a retry and does
    not go on with the first), so a text past the pipe's buffer never reached a dot slow
    to read it."""
    deadline = time.monotonic() + DOT_SECONDS
    with subprocess.Popen([exe, "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        answer: list[tuple[bytes, bytes]] = []
        talk = threading.Thread(target=lambda: answer.append(proc.communicate(data)),
                                name="dot", daemon=True)
        talk.start()
        try:
            while True:
                talk.join(POLL_SECONDS)
                if answer:
                    svg, errors = answer[0]
                    return svg, errors, proc.returncode
                if not talk.is_alive():  # communicate raised: the pipes, not the layout
                    raise RuntimeError("dot's pipes failed before it answered")
                budget.check("drawing the tape")
                if time.monotonic() > deadline:
                    raise ComputeLimitError(
                        f"Graphviz took over {DOT_SECONDS:g} s to lay the tape out; draw a "
                        "smaller graph",
                        field="graph",
                    )
        finally:
            if proc.poll() is None:
                proc.kill()
            talk.join()  # the killed process's pipes close: communicate returns
