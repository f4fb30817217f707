"""A graph reused across requests (a registered graph) remembers what its structure decides.

Shape inference walks every node on every request, yet its answer depends only on
the leaves' shapes and the limits: a graph reused with new values of the same
shapes can take it from memory. So can what is a pure function of the graph and its
shapes (the cost model's sums, ``remembered``): all shapes follow from the leaves'.
Values are never cached; every request still runs the graph and its tapes afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import numpy as np

from engine.graphs.graph import Graph, Limits
from engine.tensor import Value

SHAPE_MEMO_SIZE = 8  # distinct leaf-shape combinations remembered per graph
_T = TypeVar("_T")


class ReusableGraph(Graph):
    """A validated graph kept for reuse: its shape inference is memoized by leaf shapes and
    limits."""

    def __init__(self, nodes: dict[str, Any], last: str, leaves: tuple[str, ...],
                 limits: Limits):
        super().__init__(nodes, last, leaves, limits)
        self._shapes: OrderedDict[tuple, dict[str, tuple[int, ...]]] = OrderedDict()
        self._known: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, graph: Graph) -> ReusableGraph:
        """The same graph (sharing its validated nodes), made reusable; a reusable graph is
        itself (a registered graph and the inline plan it was built as share one memory
        of plans, shapes and costs)."""
        if type(graph) is cls:
            return graph
        return cls(graph.nodes, graph.last, graph.leaves, graph.limits)

    def infer_shapes(
        self, leaf_values: Mapping[str, Value], limits: Limits
    ) -> dict[str, tuple[int, ...]]:
        """``Graph.infer_shapes``, computed once per leaf shapes and limits (a copy each time).

        A failure (a shape error, a limit) is not remembered: it raises every time.
        """
        key = (limits, tuple([np.shape(leaf_values[nid]) for nid in self.leaves]))
        with self._lock:
            known = self._shapes.get(key)
            if known is not None:
                self._shapes.move_to_end(key)
                return dict(known)
        shapes = super().infer_shapes(leaf_values, limits)
        with self._lock:
            self._shapes[key] = shapes
            while len(self._shapes) > SHAPE_MEMO_SIZE:
                self._shapes.popitem(last=False)
        return dict(shapes)

    def remembered(self, what: str, shapes: Mapping[str, tuple[int, ...]], extra: Hashable,
                   compute: Callable[[], _T]) -> _T:
        """``compute()``, a pure function of this graph at ``shapes`` (as ``infer_shapes``
        gave them) and ``extra``, computed once per leaf shapes: the leaves' shapes decide
        every other. The answer is shared: callers must not change it."""
        key = (what, tuple([shapes[nid] for nid in self.leaves]), extra)
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]  # type: ignore[no-any-return]
        answer = compute()
        with self._lock:
            self._known[key] = answer
            while len(self._known) > SHAPE_MEMO_SIZE:
                self._known.popitem(last=False)
        return answer
