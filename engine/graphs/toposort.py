"""Kahn's topological sort of a node list given in any order, and cycle finding.

Iterative (autograd's ``util.toposort`` idea): a 10^6-node chain in reverse order
must not touch Python's recursion limit. A cycle error names a node on the cycle.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from engine.errors import GraphError, short

if TYPE_CHECKING:
    from engine.graphs.graph import Node


def toposort(parsed: list[Node], index: dict[str, int]) -> list[int]:
    """Kahn's sort, stable: a list that is already topological keeps its order."""
    if _in_order(parsed, index):
        return list(range(len(parsed)))
    n = len(parsed)
    indegree = [0] * n
    users: list[list[int] | None] = [None] * n
    for k, node in enumerate(parsed):
        for x in node.inputs:
            if type(x) is not str:
                continue
            j = index.get(x)
            if j is None:
                raise GraphError(f"input {short(x)} is not a node of the graph",
                                 node=node.id, field="inputs")
            if j == k:
                raise GraphError("a node cannot be its own input", node=node.id, field="inputs")
            indegree[k] += 1
            users_j = users[j]
            if users_j is None:
                users[j] = [k]
            else:
                users_j.append(k)
    ready = [k for k in range(n) if not indegree[k]]  # ascending, hence a heap already
    order: list[int] = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users[k] or ():
            indegree[u] -= 1
            if not indegree[u]:
                heapq.heappush(ready, u)
    if len(order) < n:
        cycle = find_cycle(parsed, index, indegree)
        path = " -> ".join(short(parsed[k].id, 40) for k in cycle[:6])
        more = " -> ..." if len(cycle) > 6 else f" -> {short(parsed[cycle[0]].id, 40)}"
        raise GraphError(f"the graph has a cycle: {path}{more}",
                         node=parsed[cycle[0]].id, field="inputs")
    return order


def _in_order(parsed: list[Node], index: dict[str, int]) -> bool:
    """Whether every reference names an earlier node (the usual case, and a chain's): one
    pass that allocates nothing. A reference that is missing or to itself is left for
    Kahn's pass to name."""
    get = index.get
    for k, node in enumerate(parsed):
        for x in node.inputs:
            if type(x) is str:
                j = get(x)
                if j is None or j >= k:
                    return False
    return True


def find_cycle(parsed: list[Node], index: dict[str, int], indegree: list[int]) -> list[int]:
    """Nodes of one cycle, in data-flow order: walk unsorted inputs until one repeats."""
    # Every unsorted node has an unsorted input, so the walk can always go on.
    k = next(k for k in range(len(parsed)) if indegree[k])
    seen: dict[int, int] = {}
    path: list[int] = []
    while k not in seen:
        seen[k] = len(path)
        path.append(k)
        k = next(
            index[x] for x in parsed[k].inputs if type(x) is str and indegree[index[x]]
        )
    return path[seen[k]:][::-1]
