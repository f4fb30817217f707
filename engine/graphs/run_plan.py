"""A graph's run plan: per node, how to call its op and where its inputs are (Graph.run).

Made once per graph (a registered graph, an inline one sent again, keeps it): positions,
not ids, because a run keeps its tensors in a list while it runs (on a long graph,
looking ids up in a dict of every node costs a fifth of the run); inline constants
become their tensors here, once, since a tensor is immutable and no tape watches a
constant unless asked; and the usual shapes of a call (one or two inputs, no attrs) are
spelled out, so that the run calls them with no argument list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.ops import OPS_FN
from engine.tensor import Tensor, constant

if TYPE_CHECKING:
    from engine.graphs.graph import InlineConstant, Node

LEAF_OPS = ("variable", "constant")

# One node of a run's plan: its id, the node, its op's function (None for a leaf), how it
# is called (CALL_* below), its inputs as called (CALL_ANY: a tuple of all).
Step = tuple[str, "Node", Callable[..., Tensor] | None, int, Any, Any]
CALL_REF, CALL_REF_REF, CALL_REF_CONST, CALL_CONST_REF, CALL_ANY = range(5)
CALL_LEAF, CALL_APPLY = 5, 6  # a leaf; an op node computed by the run's ``apply``


def plan_steps(nodes: Mapping[str, Node]) -> list[Step]:
    """The plan of ``nodes`` (in topological order): one step per node."""
    position = {nid: k for k, nid in enumerate(nodes)}
    return [_step(nid, node, position) for nid, node in nodes.items()]


def _step(nid: str, node: Node, position: Mapping[str, int]) -> Step:
    """One node's step: the usual shapes spelled out, as a long graph makes one per node."""
    inputs = node.inputs
    if node.op in LEAF_OPS:
        return (nid, node, None, CALL_LEAF, None, None)
    fn = OPS_FN[node.op]
    if not node.attrs and 0 < len(inputs) <= 2:
        a = inputs[0]
        if len(inputs) == 1:
            if type(a) is str:
                return (nid, node, fn, CALL_REF, position[a], None)
        elif type(a) is str:
            b = inputs[1]
            if type(b) is str:
                return (nid, node, fn, CALL_REF_REF, position[a], position[b])
            return (nid, node, fn, CALL_REF_CONST, position[a], _constant(nid, 1, b))
        elif type(inputs[1]) is str:
            return (nid, node, fn, CALL_CONST_REF, _constant(nid, 0, a), position[inputs[1]])
    ins = tuple([position[x] if type(x) is str else _constant(nid, i, x)
                 for i, x in enumerate(inputs)])
    return (nid, node, fn, CALL_ANY, ins, None)


def _constant(nid: str, i: int, x: InlineConstant) -> Tensor:
    """An inline constant's tensor, named as the trace names it."""
    return constant(x.value, f"{nid}.inputs[{i}]")


def inputs_of(call: int, a: Any, b: Any) -> tuple[Any, ...]:
    """A step's inputs as one tuple, however its call spells them."""
    if call == CALL_REF:
        return (a,)
    if call in (CALL_REF_REF, CALL_REF_CONST, CALL_CONST_REF):
        return (a, b)
    return a  # type: ignore[no-any-return]  # CALL_ANY: all of them already
