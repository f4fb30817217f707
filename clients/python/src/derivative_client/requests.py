"""Request bodies from Python arguments: what to compute first, the rest as keywords.

``what`` is an expression string, a ``Graph``, a registered ``GraphInfo`` (or a
``graph_id`` string), a wire graph dict (``{"nodes": [...]}``) or a dict of named
expressions (``{"u": "x*y", "v": "x+y"}``, sent as ``expressions``). Tensors may stand
for node ids anywhere an id goes; numpy arrays for values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .graph import Graph, Tensor
from .results import GraphInfo
from .values import encode

GRAPH_ID = re.compile(r"^g_[0-9a-f]{64}$")


def _id(ref: Any) -> str:
    if isinstance(ref, Tensor):
        return ref.id
    if isinstance(ref, str):
        return ref
    raise TypeError(f"a node id is a string or a graph's tensor, not {ref!r}")


def _ids(refs: Any) -> Any:
    if refs is None or isinstance(refs, (str, Tensor)):
        return None if refs is None else _id(refs)
    return [_id(ref) for ref in refs]


def _value_map(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {_id(key): encode(value) for key, value in values.items()}


def computation(what: Any) -> dict[str, Any]:
    """The body's ``graph``, ``expression``, ``expressions`` or ``graph_id`` member."""
    if isinstance(what, Graph):
        return {"graph": what.to_dict()}
    if isinstance(what, GraphInfo):
        return {"graph_id": what.graph_id}
    if isinstance(what, str):
        return {"graph_id": what} if GRAPH_ID.match(what) else {"expression": what}
    if isinstance(what, Mapping):
        if "nodes" in what:
            return {"graph": dict(what)}
        if what and all(isinstance(text, str) for text in what.values()):
            return {"expressions": dict(what)}
    raise TypeError(
        "compute what? an expression string, a Graph, a GraphInfo or graph_id, "
        f"a wire graph or a dict of named expressions, not {type(what).__name__}"
    )


def body(what: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """One request body; keywords left as None are left out (the service's defaults)."""
    out = computation(what) if what is not None else {}
    for key, value in fields.items():
        if value is None:
            continue
        if key in ("values", "output_gradients"):
            value = _value_map(value)
        elif key == "points":
            value = (
                _value_map(value)
                if isinstance(value, Mapping)
                else [_value_map(point) for point in value]
            )
        elif key in ("target", "sources", "watch"):
            value = _ids(value)
        elif key == "graph_id" and isinstance(value, GraphInfo):
            value = value.graph_id
        out[key] = value
    return out


def graph_id_of(graph: Any) -> str:
    """The id of a ``GraphInfo`` or the id string itself."""
    gid = graph.graph_id if isinstance(graph, GraphInfo) else graph
    if not isinstance(gid, str) or not GRAPH_ID.match(gid):
        raise ValueError(f"not a graph id: {gid!r} (`g_` and 64 hex digits)")
    return gid
