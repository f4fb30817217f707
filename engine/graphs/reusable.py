"""A graph reused across requests (a registered graph) remembers what its structure decides.

Shape inference walks every node on every request, yet its answer depends only on
the leaves' shapes and the limits: a graph reused with new values of the same
shapes can take it from memory. So can what is a pure function of the graph and its
shapes (the cost model's sums, ``remembered``): all shapes follow from the leaves'.
Values are never cached; every request still runs the graph and its tapes afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import numpy as np

from engine.graphs.graph import Graph, Limits
from engine.lru import LRU
from engine.tensor import Value

SHAPE_MEMO_SIZE = 8  # distinct leaf-shape combinations remembered per graph
_T = TypeVar("_T")
_MISSING = object()  # a remembered answer may be None


class ReusableGraph(Graph):
    """A validated graph kept for reuse: its shape inference is memoized by leaf shapes and
    limits."""

    def __init__(self, nodes: dict[str, Any], last: str, leaves: tuple[str, ...],
                 limits: Limits):
        super().__init__(nodes, last, leaves, limits)
        self._shapes: LRU[tuple, dict[str, tuple[int, ...]]] = LRU(SHAPE_MEMO_SIZE)
        self._known: LRU[tuple, Any] = LRU(SHAPE_MEMO_SIZE)
        self._last: dict[str, tuple[tuple, Any]] = {}  # remembered_last's, by ``what``

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
        known = self._shapes.get(key)
        if known is not None:
            return dict(known)
        shapes = super().infer_shapes(leaf_values, limits)
        self._shapes.put(key, shapes)
        return dict(shapes)

    def remembered(self, what: str, shapes: Mapping[str, tuple[int, ...]], extra: Hashable,
                   compute: Callable[[], _T]) -> _T:
        """``compute()``, a pure function of this graph at ``shapes`` (as ``infer_shapes``
        gave them) and ``extra``, computed once per leaf shapes: the leaves' shapes decide
        every other. The answer is shared: callers must not change it."""
        key = (what, tuple([shapes[nid] for nid in self.leaves]), extra)
        known = self._known.get(key, _MISSING)
        if known is not _MISSING:
            return known  # type: ignore[no-any-return]
        answer = compute()
        self._known.put(key, answer)
        return answer

    def remembered_last(self, what: str, shapes: Mapping[str, tuple[int, ...]],
                        extra: Hashable, compute: Callable[[], _T]) -> _T:
        """``remembered``, but only the last answer of each ``what`` is kept: for answers
        that may weigh more than the graph (a check's plain copy of its nodes), so what a
        graph keeps is one of them whatever the requests ask."""
        key = (tuple([shapes[nid] for nid in self.leaves]), extra)
        last = self._last.get(what)
        if last is not None and last[0] == key:
            return last[1]  # type: ignore[no-any-return]
        answer = compute()
        self._last[what] = (key, answer)  # one tuple, replaced whole: safe across threads
        return answer
