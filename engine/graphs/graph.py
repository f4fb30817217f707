"""A validated DAG (engine.graphs.build makes one) and how it runs.

Leaf values, shape inference and evaluation, all in the graph's topological order.
Errors are typed and name the node (``node``) and the part at fault (``field``).
Nothing here recurses on user input: values are walked with an explicit stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from engine import budget
from engine.errors import (
    ComputeLimitError,
    EngineError,
    GraphError,
    LimitError,
    ShapeError,
    short,
)
from engine.graphs.run_plan import (
    CALL_APPLY,
    CALL_CONST_REF,
    CALL_LEAF,
    CALL_REF,
    CALL_REF_CONST,
    CALL_REF_REF,
    LEAF_OPS,
    Step,
    inputs_of,
    plan_steps,
)
from engine.ops import OPS
from engine.tensor import Tensor, Value, Variable, constant

_NUMBER = (int, float, np.integer, np.floating)
_MAX_INT = 2**1023  # ints below this convert to float64 without overflow
RUN_CHECK_EVERY = 256  # nodes between two budget checks
BIG_OUTPUT = 4096  # and after every op whose output has more elements than this
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


DEFAULT_LIMITS = Limits()


def check_count(count: int, limit: int, what: str, *, node: str | None = None,
                field: str | None = None) -> None:
    """Refuse ``count`` of ``what`` (nodes, a node's inputs, points, targets) past
    ``limit``: checked on a list's length before any of its items is read."""
    if count > limit:
        raise LimitError(f"{count} {what}, over the limit of {limit}", node=node, field=field)


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
        if count > limits.max_elements:  # while walking: a list may hold lists many times
            raise _too_large(limits, node, field)
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


def held(value: Value, limits: Limits, node: str, field: str) -> Value:
    """A value decoded already (float64, its nesting bounded by the decoder, as the web
    layer's codec gives it) held to the element limit and made read-only: no walk, no copy."""
    if type(value) is np.float64:
        return value
    if value.size > limits.max_elements:
        raise _too_large(limits, node, field)
    value.flags.writeable = False  # shared by every run() of the graph
    return value


def _too_large(limits: Limits, node: str | None, field: str) -> LimitError:
    return LimitError(f"{field} has more than {limits.max_elements} elements",
                      node=node, field=field)


class Graph:
    """A validated DAG: nodes in a topological order, the request's last node, its leaves."""

    def __init__(self, nodes: dict[str, Node], last: str, leaves: tuple[str, ...], limits: Limits):
        self.nodes = nodes
        self.order = tuple(nodes)
        self.last = last
        self.leaves = leaves
        self.limits = limits
        self._plan: list[Step] | None = None

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, last={self.last!r})"

    @cached_property
    def inline_elements(self) -> int:
        """Elements of the constants written inline among its nodes' inputs (``x * 0.9``'s
        0.9; an empty one counts one): what its nodes hold beyond their ids and leaves."""
        return sum(max(1, int(np.size(x.value))) for n in self.nodes.values()
                   for x in n.inputs if not isinstance(x, str))

    @cached_property
    def leaf_position(self) -> dict[str, int]:
        """Each leaf's position in the graph's order (and in its run plan)."""
        leaves = set(self.leaves)
        return {nid: k for k, nid in enumerate(self.order) if nid in leaves}

    @cached_property
    def read_leaves(self) -> frozenset[str]:
        """The leaves some op reads (of which a tape that watches what ops access watches
        the trainable variables)."""
        leaves = set(self.leaves)
        return frozenset([x for n in self.nodes.values() for x in n.inputs
                          if type(x) is str and x in leaves])

    @cached_property
    def kinked(self) -> tuple[str, ...]:
        """Its op nodes whose op has a kink, in order: a kink-notes walk visits no other."""
        return tuple([i for i, n in self.nodes.items() if n.inputs and OPS[n.op].kink is not None])

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
                raise GraphError(  # reads well for an expression's variable and a node alike
                    f"{nid} has no value: add {nid} to values",
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
        nodes, max_rank, max_elements = self.nodes, limits.max_rank, limits.max_elements
        prod = math.prod
        for k, nid in enumerate(self.order):
            if not k % RUN_CHECK_EVERY:
                budget.check("shape inference")
            node = nodes[nid]
            if node.op in LEAF_OPS:
                shape = tuple(np.shape(leaf_values[nid]))
            else:
                attrs = node.attrs
                if attrs:
                    _check_shape_attr(nid, attrs, limits)
                ins = []
                for x in node.inputs:
                    if type(x) is str:
                        ins.append(shapes[x])
                    else:
                        ins.append(x.value.shape)
                        total += prod(x.value.shape)
                key = (node.op, *ins, *attrs.items()) if attrs else (node.op, *ins)
                try:
                    shape = memo.get(key)
                except TypeError:  # an unhashable attr (a list): ask the rule every time
                    shape, key = None, None
                if shape is None:
                    shape = self._shape_rule(nid, node, ins)
                    if key is not None:
                        memo[key] = shape
            if len(shape) > max_rank:
                _check_rank(nid, shape, limits)
            size = prod(shape)
            if size > max_elements:
                raise ComputeLimitError(
                    f"shape {list(shape)} has {size} elements, over the limit of "
                    f"{max_elements}", node=nid,
                )
            total += size
            if total > limits.max_total_elements:
                raise ComputeLimitError(
                    f"the graph holds more than {limits.max_total_elements} elements in all",
                    node=nid,
                )
            shapes[nid] = shape
        return shapes

    @staticmethod
    def _shape_rule(nid: str, node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
        """The op's shape rule on these input shapes; its errors name the node."""
        try:
            rule = OPS[node.op].infer_shape
            return tuple([int(n) for n in rule(*ins, **node.attrs)])
        except EngineError as e:
            raise with_node(e, nid, e.field) from e
        except (ValueError, OverflowError) as e:  # numpy on absurd sizes
            raise ShapeError(f"shape inference failed: {short(str(e))}", node=nid) from e

    def make_leaves(self, leaf_values: Mapping[str, Value]) -> dict[str, Tensor]:
        """Leaf tensors named by id: a ``variable`` is a Variable, a ``constant`` a constant."""
        return {nid: self._leaf(self.nodes[nid], leaf_values[nid]) for nid in self.leaves}

    @staticmethod
    def _leaf(node: Node, value: Value) -> Tensor:
        if node.op == "variable":
            return Variable(value, trainable=node.trainable, name=node.id)
        return constant(value, name=node.id)

    def steps(self) -> list[Step]:
        """The run's plan (engine.graphs.run_plan), made once per graph. Two threads may
        both make it; they make the same."""
        steps = self._plan
        if steps is None:
            steps = self._plan = plan_steps(self.nodes)
        return steps

    def run(
        self, leaf_values: Mapping[str, Value | Tensor], apply: Apply | None = None
    ) -> dict[str, Tensor]:
        """Fresh tensors for every node, computed in topological order (tapes record them).

        A leaf given as a Tensor is used as it is, so a caller can watch it first.
        ``apply(node id, node, input tensors)`` computes an op node instead of its op
        alone: engine.derive.points runs each op over a batch of points that way.
        """
        steps = self.steps()
        if apply is not None:
            steps = [(nid, node, fn, CALL_APPLY if fn else CALL_LEAF, inputs_of(call, a, b),
                      None) for nid, node, fn, call, a, b in steps]
        done: list[Tensor] = []  # each node's tensor, at its position in the plan
        put = done.append
        nid = ""
        check, f64 = budget.check, np.float64
        try:
            for start in range(0, len(steps), RUN_CHECK_EVERY):
                check("graph evaluation")
                for nid, node, fn, call, a, b in steps[start:start + RUN_CHECK_EVERY]:
                    if call == CALL_REF_REF:  # the usual node, first
                        out = fn(done[a], done[b])
                    elif call == CALL_REF:
                        out = fn(done[a])
                    elif call == CALL_REF_CONST:
                        out = fn(done[a], b)
                    elif call == CALL_LEAF:
                        given = leaf_values[nid]
                        put(given if isinstance(given, Tensor) else self._leaf(node, given))
                        continue
                    elif call == CALL_CONST_REF:
                        out = fn(a, done[b])
                    else:
                        args = [done[x] if type(x) is int else x for x in a]
                        if call == CALL_APPLY:
                            out = apply(nid, node, args)  # type: ignore[misc]
                        else:
                            out = fn(*args, **node.attrs) if node.attrs else fn(*args)
                    out._name = nid  # the slot itself: the property's setter is a call
                    if type(out.value) is not f64 and out.value.size > BIG_OUTPUT:
                        check("graph evaluation")  # a costly op: stop at its boundary
                    put(out)
        except EngineError as e:
            if e.node is not None:
                raise
            raise with_node(e, nid, e.field) from e
        return dict(zip(self.order, done, strict=True))


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

