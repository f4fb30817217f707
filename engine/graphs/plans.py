"""Graphs sent inline again and again are built once: a small LRU keyed by their structure.

A client that sends the same graph with new values (an optimiser's loop) would have it
validated, sorted and shape-inferred on every request. Keyed by the node list's exact
structure (ids, ops, inputs, attrs, values, as the caller spells them in ``key``), the
built graph is kept as a ``ReusableGraph``: its run plan, its shapes and its costs per
leaf shapes are remembered as a registered graph's are. Values from the request's
``values`` are never part of it. Bounded by graphs and by nodes, so what it holds stays
small next to the graph store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from engine import budget
from engine.graphs.graph import Graph
from engine.graphs.reusable import ReusableGraph

MAX_GRAPHS = 16
WAIT_SLICE_SECONDS = 0.05  # a request waiting for another's build checks its budget this often
MAX_NODES = 200_000  # over every graph held


class PlanCache:
    """Built graphs by structure key: least recently used first out."""

    def __init__(self, max_graphs: int = MAX_GRAPHS, max_nodes: int = MAX_NODES) -> None:
        self.max_graphs = max_graphs
        self.max_nodes = max_nodes
        self._graphs: OrderedDict[Hashable, ReusableGraph] = OrderedDict()
        self._nodes = 0
        self._lock = threading.Lock()
        self._building: dict[Hashable, _Build] = {}

    def __len__(self) -> int:
        return len(self._graphs)

    @property
    def nodes(self) -> int:
        """Nodes held, over every graph."""
        return self._nodes

    def get(self, key: Hashable, build: Callable[[], Graph]) -> ReusableGraph:
        """The graph built for ``key`` before, else ``build()``'s (kept if it fits).

        ``key`` must decide the graph: two node lists with equal keys build the same
        graph. A build that raises keeps nothing. Requests that ask for a key while it is
        being built wait for that build instead of building it again (eight clients that
        send one new 100,000-node graph at once build it once), within their own time
        budget; if it fails (the graph's fault, or its request's: a client gone, a budget
        spent), one of them builds it next, and so on, each raising its own error.
        """
        while True:
            with self._lock:
                known = self._graphs.get(key)
                if known is not None:
                    self._graphs.move_to_end(key)
                    return known
                pending = self._building.get(key)
                if pending is None:
                    pending = self._building[key] = _Build()
                    break  # this request builds
            while not pending.done.wait(WAIT_SLICE_SECONDS):
                budget.check("waiting for the same graph's build")
            if pending.graph is not None:
                return pending.graph
        try:
            graph = pending.graph = ReusableGraph.of(build())
            self._keep(key, graph)
        finally:
            with self._lock:
                del self._building[key]
            pending.done.set()  # waiters find ``pending.graph`` still None if it raised
        return graph

    def _keep(self, key: Hashable, graph: ReusableGraph) -> None:
        size = len(graph.nodes)
        if size > self.max_nodes or self.max_graphs < 1:
            return
        with self._lock:
            if key not in self._graphs:
                self._graphs[key] = graph
                self._nodes += size
                while len(self._graphs) > self.max_graphs or self._nodes > self.max_nodes:
                    _, old = self._graphs.popitem(last=False)
                    self._nodes -= len(old.nodes)


class _Build:
    """A build in progress: done once it has ended, with its graph if it succeeded."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.graph: ReusableGraph | None = None
