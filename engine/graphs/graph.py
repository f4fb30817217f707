"""JSON-graph data -> a validated DAG in topological order, ready to run on tapes.

Every user-triggerable problem is a typed error naming the node (``node``) and the
offending part of it (``field``: "id", "op", "inputs", "attrs.axis", "value", ...).
Nothing here recurses on user input: values are walked with an explicit stack and
the sort is Kahn's, so a 10^6-node chain given in reverse order builds fine.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import budget
from engine.errors import (
    AttrError,
    ComputeLimitError,
    EngineError,
    GraphError,
    LimitError,
    ShapeError,
    short,
)
from engine.graphs.toposort import toposort
from engine.ops import OPS, OPS_FN
from engine.tensor import Tensor, Value, Variable, constant

LEAF_OPS = ("variable", "constant")
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
NODE_KEYS = ("id", "op", "inputs", "attrs", "value", "trainable")
_NODE_KEY_SET = frozenset(NODE_KEYS)
_NUMBER = (int, float, np.integer, np.floating)
_MAX_INT = 2**1023  # ints below this convert to float64 without overflow
_CHECK_EVERY = 256  # nodes between two budget checks
_BIG_OUTPUT = 4096  # and after every op whose output has more elements than this
NUMPY_MAX_RANK = 64  # numpy refuses arrays of more dimensions (a ValueError, not ours)


@dataclass(frozen=True)
class Limits:
    """Size limits a request must stay under; the service fills them from its settings."""

    max_nodes: int = 10_000
    max_elements: int = 1_000_000  # per tensor, checked by shape inference before allocation
    max_total_elements: int = 20_000_000  # sum over all nodes of the graph
    max_inputs: int = 1_000  # per node (concat/stack)
    max_expression_length: int = 10_000
    max_expression_depth: int = 64
    max_value_depth: int = 32  # nesting depth of an inline/leaf value
    # Dimensions of any node's shape. 32 keeps every derived tensor within numpy's 64:
    # a Jacobian block is target.shape + source.shape, a vectorised sweep adds one axis.
    max_rank: int = 32
    max_derivative_work: int = 1_000_000  # Jacobian/Hessian entries
    max_points: int = 100_000  # points evaluated in one batched pass (engine.derive.points)
    dense_max_sources: int = 1_000  # format "auto": a larger Hessian is sparse


@dataclass(frozen=True, eq=False, slots=True)  # eq=False: arrays have no truth value
class InlineConstant:
    """A number or array written directly in a node's ``inputs``."""

    value: Value


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    """One validated node; ``attrs`` are normalized, ``value`` is set on leaves only."""

    id: str
    op: str
    inputs: tuple[str | InlineConstant, ...]
    attrs: dict[str, Any]
    value: Value | None
    trainable: bool = True


# Computes one op node from its id, the node and its input tensors (Graph.run).
Apply = Callable[[str, Node, list[Tensor]], Tensor]


def with_node(err: EngineError, node: str, field: str | None) -> EngineError:
    """The same error class, re-raised naming ``node``."""
    detail = err.detail if len(err.detail) <= 300 else err.detail[:297] + "..."
    return type(err)(detail, node=node, field=field)


def to_value(raw: Any, limits: Limits, node: str | None, field: str) -> Value:
    """Float64 value of a number or rectangular nested list; typed errors otherwise."""
    if type(raw) is float or type(raw) is np.float64:  # fast paths: the common scalars
        return np.float64(raw)
    if type(raw) is int and -_MAX_INT < raw < _MAX_INT:
        return np.float64(raw)

    def bad(why: str) -> GraphError:
        return GraphError(f"{field}: {why}", node=node, field=field)

    count, stack = 0, [(raw, 0)]
    while stack:  # explicit stack: nesting depth is the user's choice
        x, depth = stack.pop()
        if isinstance(x, list | tuple):
            if depth >= limits.max_value_depth:
                raise bad(f"nested deeper than {limits.max_value_depth} levels")
            stack.extend([(y, depth + 1) for y in x])
            continue
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in "iuf":
                raise bad(f"an array of dtype {x.dtype} is not numeric")
            if depth + x.ndim > limits.max_value_depth:
                raise bad(f"nested deeper than {limits.max_value_depth} levels")
            count += x.size
        elif isinstance(x, bool | np.bool_) or not isinstance(x, _NUMBER):
            raise bad(f"{short(x)} is not a number")
        else:
            count += 1
        if count > limits.max_elements:
            raise LimitError(
                f"{field} has more than {limits.max_elements} elements", node=node, field=field
            )
    try:
        arr = np.array(raw, dtype=np.float64)
    except OverflowError:
        raise bad("a number is too large for float64") from None
    except (ValueError, TypeError):
        raise bad("nested lists must be rectangular (same length at each level)") from None
    if arr.ndim == 0:
        return arr[()]
    arr.flags.writeable = False  # shared by every run() of the graph
    return arr


class Graph:
    """A validated DAG: nodes in a topological order, the request's last node, its leaves."""

    def __init__(self, nodes: dict[str, Node], last: str, leaves: tuple[str, ...], limits: Limits):
        self.nodes = nodes
        self.order = tuple(nodes)
        self.last = last
        self.leaves = leaves
        self.limits = limits

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, last={self.last!r})"

    def leaf_values(self, values: Mapping[str, Any]) -> dict[str, Value]:
        """Each leaf's value: the request's ``values`` first, else the node's own ``value``."""
        if not isinstance(values, Mapping):
            raise GraphError("values must be an object {leaf id: value}", field="values")
        for key in values:
            node = self.nodes.get(key) if isinstance(key, str) else None
            if node is None:
                raise GraphError(
                    f"values names {short(key)}, which is not a node of the graph",
                    node=key[:128] if isinstance(key, str) else None, field="values",
                )
            if node.op not in LEAF_OPS:
                raise GraphError(
                    f"values gives {node.op} node {short(key)} a value; only leaves take one",
                    node=key, field="values",
                )
        out = {}
        for nid in self.leaves:
            if nid in values:
                out[nid] = to_value(values[nid], self.limits, nid, "values")
            elif self.nodes[nid].value is not None:
                out[nid] = self.nodes[nid].value
            else:
                raise GraphError(
                    "no value: give one in the request's values or in the node's value",
                    node=nid, field="values",
                )
        return out

    def infer_shapes(
        self, leaf_values: Mapping[str, Value], limits: Limits
    ) -> dict[str, tuple[int, ...]]:
        """Every node's shape, without computing anything; limits are checked per node."""
        shapes: dict[str, tuple[int, ...]] = {}
        memo: dict[tuple, tuple[int, ...]] = {}  # shape rules are pure: same question, same answer
        total = 0
        for k, nid in enumerate(self.order):
            if not k % _CHECK_EVERY:
                budget.check("shape inference")
            node = self.nodes[nid]
            if node.op in LEAF_OPS:
                shape = tuple(np.shape(leaf_values[nid]))
            else:
                _check_shape_attr(nid, node.attrs, limits)
                ins = [shapes[x] if type(x) is str else x.value.shape for x in node.inputs]
                total += sum(math.prod(x.value.shape) for x in node.inputs if type(x) is not str)
                key = (node.op, *ins, *node.attrs.items())
                hashable = _hashable(key)
                shape = memo.get(key) if hashable else None
                try:
                    if shape is None:
                        rule = OPS[node.op].infer_shape
                        shape = tuple([int(n) for n in rule(*ins, **node.attrs)])
                        if hashable:
                            memo[key] = shape
                except EngineError as e:
                    raise with_node(e, nid, e.field) from e
                except (ValueError, OverflowError) as e:  # numpy on absurd sizes
                    raise ShapeError(f"shape inference failed: {short(str(e))}", node=nid) from e
            _check_rank(nid, shape, limits)
            size = math.prod(shape)
            if size > limits.max_elements:
                raise ComputeLimitError(
                    f"shape {list(shape)} has {size} elements, over the limit of "
                    f"{limits.max_elements}", node=nid,
                )
            total += size
            if total > limits.max_total_elements:
                raise ComputeLimitError(
                    f"the graph holds more than {limits.max_total_elements} elements in all",
                    node=nid,
                )
            shapes[nid] = shape
        return shapes

    def make_leaves(self, leaf_values: Mapping[str, Value]) -> dict[str, Tensor]:
        """Leaf tensors named by id: a ``variable`` is a Variable, a ``constant`` a constant."""
        return {nid: self._leaf(self.nodes[nid], leaf_values[nid]) for nid in self.leaves}

    @staticmethod
    def _leaf(node: Node, value: Value) -> Tensor:
        if node.op == "variable":
            return Variable(value, trainable=node.trainable, name=node.id)
        return constant(value, name=node.id)

    def run(
        self, leaf_values: Mapping[str, Value | Tensor], apply: Apply | None = None
    ) -> dict[str, Tensor]:
        """Fresh tensors for every node, computed in topological order (tapes record them).

        A leaf given as a Tensor is used as it is, so a caller can watch it first.
        ``apply(node id, node, input tensors)`` computes an op node instead of its op
        alone: engine.derive.points runs each op over a batch of points that way.
        """
        tensors: dict[str, Tensor] = {}
        nid = ""
        try:
            for k, nid in enumerate(self.order):
                if not k % _CHECK_EVERY:
                    budget.check("graph evaluation")
                node = self.nodes[nid]
                if node.op in LEAF_OPS:
                    given = leaf_values[nid]
                    out = given if isinstance(given, Tensor) else self._leaf(node, given)
                else:
                    args = [
                        tensors[x] if type(x) is str else constant(x.value, f"{nid}.inputs[{i}]")
                        for i, x in enumerate(node.inputs)
                    ]
                    if apply is None:
                        out = OPS_FN[node.op](*args, **node.attrs)
                    else:
                        out = apply(nid, node, args)
                    out.name = nid
                    if type(out.value) is not np.float64 and out.value.size > _BIG_OUTPUT:
                        budget.check("graph evaluation")  # a costly op: stop at its boundary
                tensors[nid] = out
        except EngineError as e:
            if e.node is not None:
                raise
            raise with_node(e, nid, e.field) from e
        return tensors


def build_graph(nodes: Sequence[Mapping[str, Any]], limits: Limits = Limits()) -> Graph:
    """Validate the contract's node list (any order) and sort it topologically."""
    if not isinstance(nodes, list | tuple):
        raise GraphError("the graph's nodes must be a list", field="nodes")
    if not nodes:
        raise GraphError("the graph has no nodes", field="nodes")
    if len(nodes) > limits.max_nodes:
        raise LimitError(
            f"{len(nodes)} nodes, over the limit of {limits.max_nodes}", field="nodes"
        )
    parsed: list[Node] = []
    index: dict[str, int] = {}
    for i, raw in enumerate(nodes):
        if not i % 4096:
            budget.check("graph validation")
        node = _parse_node(raw, i, limits)
        if node.id in index:
            raise GraphError(
                f"duplicate id (nodes[{index[node.id]}] and nodes[{i}])", node=node.id, field="id"
            )
        index[node.id] = i
        parsed.append(node)
    order = toposort(parsed, index)
    leaves = tuple(n.id for n in parsed if n.op in LEAF_OPS)
    return Graph({parsed[k].id: parsed[k] for k in order}, parsed[-1].id, leaves, limits)


def _parse_node(raw: Any, i: int, limits: Limits) -> Node:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise GraphError(f"nodes[{i}] must be an object, not {type(raw).__name__}",
                         field=f"nodes[{i}]")
    if "id" not in raw:
        raise GraphError(f"nodes[{i}] has no id", field=f"nodes[{i}].id")
    nid = raw["id"]
    if not isinstance(nid, str) or not ID_PATTERN.fullmatch(nid):
        raise GraphError(
            f"nodes[{i}]: id {short(nid)} must be 1 to 128 characters of [A-Za-z0-9_.:-], "
            "starting with a letter or _", field=f"nodes[{i}].id",
        )
    extra = raw.keys() - _NODE_KEY_SET
    if extra:
        key = next(k for k in raw if k in extra)  # the first one, deterministically
        raise GraphError(f"unknown key {short(key)}; a node has {', '.join(NODE_KEYS)}",
                         node=nid, field=str(key)[:40])
    op = raw.get("op")
    if not isinstance(op, str):
        raise GraphError(f"op must be an op name, got {short(op)}", node=nid, field="op")
    if op in LEAF_OPS:
        return _parse_leaf(raw, nid, op, limits)
    opdef = OPS.get(op)
    if opdef is None:
        close = difflib.get_close_matches(op[:64], [*LEAF_OPS, *OPS], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see GET /v1/ops"
        raise GraphError(f"unknown op {short(op, 40)}{hint}", node=nid, field="op")
    for key in ("value", "trainable"):
        if key in raw:
            raise GraphError(f"only leaves take {key!r}, not {op} nodes", node=nid, field=key)
    inputs = raw.get("inputs")
    inputs = [] if inputs is None else inputs
    if not isinstance(inputs, list | tuple):
        raise GraphError("inputs must be a list", node=nid, field="inputs")
    if len(inputs) > limits.max_inputs:
        raise LimitError(f"{len(inputs)} inputs, over the limit of {limits.max_inputs}",
                         node=nid, field="inputs")
    try:
        opdef.check_arity(len(inputs), node=nid)
    except GraphError as e:
        raise with_node(e, nid, "inputs") from e
    items = tuple([
        x if type(x) is str else InlineConstant(to_value(x, limits, nid, "inputs"))
        for x in inputs
    ])
    attrs = raw.get("attrs")
    if attrs is not None and (
        not isinstance(attrs, Mapping) or not all(isinstance(k, str) for k in attrs)
    ):
        raise AttrError("attrs must be an object of named options", node=nid, field="attrs")
    if not attrs and not opdef.attrs:
        return Node(nid, op, items, {}, None)  # nothing to normalize: skip the work
    try:
        normalized = opdef.normalize_attrs(attrs, node=nid)
    except AttrError as e:
        raise with_node(e, nid, f"attrs.{e.field}" if e.field else "attrs") from e
    return Node(nid, op, items, normalized, None)


def _parse_leaf(raw: Mapping[str, Any], nid: str, op: str, limits: Limits) -> Node:
    if not _empty(raw.get("inputs")):
        raise GraphError(f"a {op} is a leaf and takes no inputs", node=nid, field="inputs")
    if not _empty(raw.get("attrs")):
        raise AttrError(f"a {op} takes no attrs", node=nid, field="attrs")
    trainable = raw.get("trainable", True)
    if "trainable" in raw and op != "variable":
        raise GraphError("only a variable takes 'trainable'", node=nid, field="trainable")
    if not isinstance(trainable, bool):
        raise GraphError("trainable must be true or false", node=nid, field="trainable")
    value = to_value(raw["value"], limits, nid, "value") if "value" in raw else None
    return Node(nid, op, (), {}, value, trainable)


def _check_rank(nid: str, shape: tuple[int, ...], limits: Limits) -> None:
    """Refuse a node of more than ``limits.max_rank`` dimensions before numpy meets it:
    past 64 numpy raises, and derived tensors (Jacobian blocks, batch axes) add more."""
    if len(shape) > limits.max_rank:
        raise ShapeError(
            f"its shape would have {len(shape)} dimensions, over the limit of "
            f"{limits.max_rank}", node=nid,
        )


def _check_shape_attr(nid: str, attrs: Mapping[str, Any], limits: Limits) -> None:
    """A ``shape`` attr (reshape, broadcast_to) over the rank limit, refused before its
    shape rule runs: numpy's broadcasting raises a RuntimeError past 32 dimensions."""
    shape = attrs.get("shape")
    if isinstance(shape, list | tuple) and len(shape) > limits.max_rank:
        raise ShapeError(
            f"shape has {len(shape)} dimensions, over the limit of {limits.max_rank}",
            node=nid, field="attrs.shape",
        )


def _hashable(key: tuple) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _empty(x: Any) -> bool:
    """None or an empty list/object (never truth-tests an array)."""
    return x is None or (isinstance(x, list | tuple | Mapping) and not x)
