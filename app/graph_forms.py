"""A graph's written forms: the text forms a request may send (``expression``,
``expressions``) and what they name, the canonical form a registered graph's id hashes,
and the wire form ``GET /v1/graphs/{graph_id}`` answers (which registers it again).

Registered forms are written from the engine's validated nodes, so a graph sent in any
key order, spacing or number spelling gets one id and one answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from app.graph_store import ID_PREFIX
from app.wire.values import encode, jsonable


def graph_id(nodes: Iterable[Any]) -> str:
    """``g_`` + SHA-256 of the nodes' canonical JSON data: sorted keys, no spaces, floats
    as repr.

    Python's float repr is the shortest text that round-trips, the same on every
    platform, so equal graphs hash equally on every replica.
    """
    text = json.dumps(
        [_canonical(n) for n in nodes],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    return ID_PREFIX + hashlib.sha256(text.encode("ascii")).hexdigest()


def _canonical(node: Any) -> list[Any]:
    """A validated node as plain data for the content hash; a reference and an inline
    constant stay distinct even when the constant is the string "NaN"."""
    inputs = [["r", x] if type(x) is str else ["c", encode(x.value)] for x in node.inputs]
    value = None if node.value is None else encode(node.value)
    return [node.id, node.op, inputs, jsonable(node.attrs), value, node.trainable]


def structure_key(nodes: Iterable[Any]) -> tuple[Any, ...]:
    """An exact key of decoded wire nodes: equal keys, the same graph (engine.graphs.plans).

    Each node's id, op, references, values as their float64 bytes with their shapes
    (NaN too), attrs by ``repr`` (exact for JSON data: ``1``, ``1.0`` and ``true`` stay
    apart), and whether it gave ``trainable``. A differently spelled equal graph only misses.
    """
    return tuple([
        (n.id, n.op, tuple([x if type(x) is str else _value_key(x) for x in n.inputs]),
         repr(n.attrs) if n.attrs else None,
         None if n.value is None else _value_key(n.value), n.given_trainable)
        for n in nodes
    ])


def _value_key(value: Any) -> tuple[tuple[int, ...], bytes]:
    return value.shape, value.tobytes()


def wire_node(node: Any) -> dict[str, Any]:
    """A validated node as the wire writes it: only what differs from the defaults."""
    out: dict[str, Any] = {"id": node.id, "op": node.op}
    if node.inputs:
        out["inputs"] = [x if type(x) is str else encode(x.value) for x in node.inputs]
    if node.attrs:
        out["attrs"] = jsonable(node.attrs)
    if node.value is not None:
        out["value"] = encode(node.value)
    if not node.trainable:
        out["trainable"] = False
    return out


def text_of(request: Any) -> str | Mapping[str, str] | None:
    """The request's ``expressions`` mapping, else its ``expression`` text (or None)."""
    texts = getattr(request, "expressions", None)
    return texts if texts is not None else getattr(request, "expression", None)


def given_names(request: Any) -> set[str]:
    """Every leaf name the request gives a value for, in ``values`` or ``points``."""
    names = set(getattr(request, "values", None) or ())
    batch = getattr(request, "points", None)
    if isinstance(batch, Mapping):
        names |= set(batch)
    elif isinstance(batch, list):
        names = names.union(*(p for p in batch if isinstance(p, Mapping)))
    return names


def target_of(request: Any) -> str | list[str] | None:
    """The request's ``target``; by default every output ``expressions`` names, in order."""
    texts = getattr(request, "expressions", None)
    if request.target is None and texts is not None:
        return list(texts)
    return request.target
