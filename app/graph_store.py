"""Registered graphs: a bounded, thread-safe LRU of validated graphs under content hashes.

Bounded by count, by nodes and by bytes (a graph's values: one leaf of 10^6 elements is
8 MB however few its nodes).

A graph is validated and sorted once, at ``POST /v1/graphs``; later requests name
it by ``graph_id`` and skip sending, parsing and validating it. The id is a hash
of the graph's canonical form (``app.graph_forms``), so every replica gives the same
graph the same id and a client can re-register after a miss (a 404) without changing
its ids.
The store holds the engine's graph as an opaque object: nothing here imports it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

ID_PREFIX = "g_"
GRAPH_ID_PATTERN = r"^g_[0-9a-f]{64}$"
REGISTER_HINT = (
    "send the graph again: POST /v1/graphs with {\"graph\": ...} or {\"expression\": ...} "
    "(the same graph gets the same id), or send it inline as `graph`"
)


@dataclass
class StoredGraph:
    """One registered graph: the engine's graph object and what the wire shows of it."""

    graph_id: str
    graph: Any  # the engine's validated, sorted graph, a ReusableGraph (shapes memoized)
    order: tuple[str, ...]  # node ids in the order the client sent them (GET returns this)
    leaves: tuple[str, ...]
    last: str
    nbytes: int = 0  # what the graph holds in memory (its values and nodes)

    @property
    def size(self) -> int:
        return len(self.order)

    def info(self) -> dict[str, Any]:
        """What ``POST /v1/graphs`` answers."""
        return {"graph_id": self.graph_id, "nodes": self.size, "leaves": list(self.leaves),
                "last": self.last}


class GraphNotFound(Exception):
    """No graph under this id here: never registered, deleted, or evicted (a 404)."""

    def __init__(self, gid: str) -> None:
        self.detail = (f"no graph is registered as {gid[:80]!r} on this replica (never "
                       f"registered, deleted, or evicted from its cache); {REGISTER_HINT}")
        self.field = "graph_id"
        self.node = None
        super().__init__(self.detail)


class StoreUnavailable(Exception):
    """The shared graph store cannot be reached and this replica has no copy (a 503).

    Transient by nature: the client retries after ``retry_after`` seconds, on this replica
    or another; inline requests (``graph``, ``expression``) are served meanwhile.
    """

    slug = "store-unavailable"

    def __init__(self, what: str, retry_after: int = 2) -> None:
        self.detail = (f"the shared graph store is unreachable, so {what}; retry after "
                       f"{retry_after} s, or send the graph inline as `graph`")
        self.retry_after = retry_after
        self.limit = None
        super().__init__(self.detail)


class GraphTooLarge(Exception):
    """One graph larger than the whole cache (a 413)."""

    def __init__(self, amount: int, limit: int, unit: str = "nodes",
                 setting: str = "graph_cache_nodes") -> None:
        self.detail = (f"a graph of {amount} {unit} cannot be registered: the graph cache "
                       f"holds {limit} {unit} in all; send it inline as `graph` instead")
        self.field = "graph"
        self.node = None
        self.limit = setting
        super().__init__(self.detail)


class GraphStore:
    """At most ``max_graphs`` graphs and ``max_nodes`` nodes; the least recently used go first.

    One lock guards the dict: compute routes run in a threadpool, and a lookup is a
    dict access and a move, so contention is negligible.
    """

    def __init__(self, max_graphs: int, max_nodes: int, max_bytes: int = 2**62) -> None:
        self.max_graphs = max_graphs
        self.max_nodes = max_nodes
        self.max_bytes = max_bytes
        self._graphs: OrderedDict[str, StoredGraph] = OrderedDict()
        self._nodes = 0
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """What the kept graphs hold in memory, together."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._graphs)

    def state(self) -> str:
        """``ready``: an in-process store is always reachable (see app.redis_store)."""
        return "ready"

    def discard(self, gid: str) -> None:
        """Forget ``gid`` if it is here (a shared store says it is gone)."""
        try:
            self.delete(gid)
        except GraphNotFound:
            pass

    def __contains__(self, gid: object) -> bool:
        return gid in self._graphs

    def put(self, stored: StoredGraph) -> tuple[StoredGraph, bool]:
        """Store ``stored`` unless its id is present; (the stored graph, whether it is new)."""
        if stored.size > self.max_nodes:
            raise GraphTooLarge(stored.size, self.max_nodes)
        if stored.nbytes > self.max_bytes:
            raise GraphTooLarge(stored.nbytes, self.max_bytes, "bytes", "graph_cache_bytes")
        with self._lock:
            present = self._graphs.get(stored.graph_id)
            if present is not None:
                self._graphs.move_to_end(stored.graph_id)
                return present, False
            self._graphs[stored.graph_id] = stored
            self._nodes += stored.size
            self._bytes += stored.nbytes
            while (len(self._graphs) > self.max_graphs or self._nodes > self.max_nodes
                   or self._bytes > self.max_bytes):
                _, old = self._graphs.popitem(last=False)
                self._nodes -= old.size
                self._bytes -= old.nbytes
            return stored, True

    def get(self, gid: str) -> StoredGraph:
        """The graph registered as ``gid``, now the most recently used; GraphNotFound if none."""
        with self._lock:
            stored = self._graphs.get(gid)
            if stored is None:
                raise GraphNotFound(gid)
            self._graphs.move_to_end(gid)
            return stored

    def delete(self, gid: str) -> None:
        """Forget ``gid``; GraphNotFound if it is not here."""
        with self._lock:
            stored = self._graphs.pop(gid, None)
            if stored is None:
                raise GraphNotFound(gid)
            self._nodes -= stored.size
            self._bytes -= stored.nbytes
