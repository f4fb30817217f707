"""A registered graph as bytes a shared store keeps: compact, versioned, checked on the way back.

The form is a one-line header (``dgraph/1``) and the zlib-compressed JSON of the graph's
wire nodes in the order the client sent them (what ``GET /v1/graphs/{graph_id}`` answers,
which registers the same graph again). A replica that reads it validates the nodes as if
they had just been sent and recomputes the content hash: bytes that are damaged, written by
another version or not matching their key are refused (``UnreadableGraph``), never run.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from app.graph_forms import wire_node
from app.graph_store import StoredGraph

VERSION = b"dgraph/1\n"
# Registered graphs are decoded once per replica; level 1 is within 10 % of level 9's size
# on float-heavy JSON at a fraction of its time.
COMPRESSION_LEVEL = 1
# A graph's JSON is at most a body (DERIV_MAX_BODY_BYTES) re-spelled; refuse to inflate
# anything much larger than that, whatever the stored bytes claim.
MAX_INFLATED_BYTES = 64 * 1024 * 1024


class UnreadableGraph(Exception):
    """Stored bytes that are not a graph this version wrote (damaged, foreign or stale)."""


def encode(stored: StoredGraph) -> bytes:
    """``stored`` in the shared form: its wire nodes, in the order they were sent."""
    nodes = [wire_node(stored.graph.nodes[i]) for i in stored.order]
    text = json.dumps(nodes, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return VERSION + zlib.compress(text.encode("ascii"), COMPRESSION_LEVEL)


def decode(blob: bytes) -> list[dict[str, Any]]:
    """The wire nodes ``encode`` wrote; UnreadableGraph for anything else."""
    if not blob.startswith(VERSION):
        raise UnreadableGraph(f"stored graph does not start with {VERSION!r}")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(blob[len(VERSION) :], MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise UnreadableGraph(f"stored graph is not zlib data: {exc}") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise UnreadableGraph("stored graph is truncated or inflates past its bound")
    try:
        nodes = json.loads(text)
    except ValueError as exc:
        raise UnreadableGraph(f"stored graph is not JSON: {exc}") from exc
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise UnreadableGraph("stored graph is not a list of nodes")
    return nodes
