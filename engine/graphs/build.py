"""The contract's node list -> a validated Graph in topological order.

A node is validated once, in two steps: its form (``parse_node``: an object of the
contract's keys, an id of the contract's form, lists and numbers where they belong),
then what it means (``check_node``: a known op with its arity and attrs, the leaf
rules, the size limits). A caller whose nodes had their form checked and their values
decoded already (the web layer's models do both) builds with ``check_node`` alone.
Every user-triggerable problem is a typed error naming the node (``node``) and the
offending part of it (``field``: "id", "op", "inputs", "attrs.axis", "value", ...).
The sort is Kahn's (engine.graphs.toposort): a 10^6-node chain in reverse order builds.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine import budget
from engine.errors import AttrError, GraphError, short
from engine.graphs.graph import (
    DEFAULT_LIMITS,
    LEAF_OPS,
    Graph,
    InlineConstant,
    Limits,
    Node,
    check_count,
    held,
    to_value,
    with_node,
)
from engine.graphs.toposort import toposort
from engine.ops import OPS
from engine.tape.collector import collector_paused
from engine.tensor import Value

ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
NODE_KEYS = ("id", "op", "inputs", "attrs", "value", "trainable")
_NODE_KEY_SET = frozenset(NODE_KEYS)

# One item of the caller's node list (its index, the limits) -> a validated Node.
ParseNode = Callable[[Any, int, Limits], Node]
# A node's value or inline constant -> its float64 value within the limits (node, field).
Decode = Callable[[Any, Limits, str, str], Value]


def parse_node(raw: Any, i: int, limits: Limits) -> Node:
    """``nodes[i]`` as the contract writes it (a mapping of JSON data), fully validated."""
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
    inputs = raw.get("inputs")
    if inputs is not None and not isinstance(inputs, list | tuple):
        raise GraphError("inputs must be a list", node=nid, field="inputs")
    attrs = raw.get("attrs")
    if attrs is not None and (
        not isinstance(attrs, Mapping) or not all(isinstance(k, str) for k in attrs)
    ):
        raise AttrError("attrs must be an object of named options", node=nid, field="attrs")
    trainable = raw.get("trainable")
    if "trainable" in raw and not isinstance(trainable, bool):
        raise GraphError("trainable must be true or false", node=nid, field="trainable")
    if "value" in raw and raw["value"] is None:
        raise GraphError("value: null is not a number", node=nid, field="value")
    return check_node(nid, op, inputs or (), attrs, raw.get("value"), trainable, limits,
                      to_value)


def check_node(nid: str, op: str, inputs: Sequence[Any], attrs: Mapping[str, Any] | None,
               value: Any, trainable: bool | None, limits: Limits,
               decode: Decode = held) -> Node:
    """A node whose form is checked already, checked for what it means: a known op with
    its arity and attrs, or a leaf; the size limits.

    Form: an id of the contract's form, references (str) or values as inputs,
    string-keyed attrs, ``value`` None and ``trainable`` None when not given. Values
    go through ``decode``: ``held`` when they are float64 already (the web layer's
    models decode them), ``to_value`` for raw JSON data (``parse_node``).
    """
    if op in LEAF_OPS:
        if inputs:
            raise GraphError(f"a {op} is a leaf and takes no inputs", node=nid, field="inputs")
        if attrs:
            raise AttrError(f"a {op} takes no attrs", node=nid, field="attrs")
        if trainable is not None and op != "variable":
            raise GraphError("only a variable takes 'trainable'", node=nid, field="trainable")
        leaf = None if value is None else decode(value, limits, nid, "value")
        return Node(nid, op, (), {}, leaf, trainable is not False)
    opdef = OPS.get(op)
    if opdef is None:
        close = difflib.get_close_matches(op[:64], [*LEAF_OPS, *OPS], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see GET /v1/ops"
        raise GraphError(f"unknown op {short(op, 40)}{hint}", node=nid, field="op")
    if value is not None:
        raise GraphError(f"only leaves take 'value', not {op} nodes", node=nid, field="value")
    if trainable is not None:
        raise GraphError(f"only leaves take 'trainable', not {op} nodes", node=nid,
                         field="trainable")
    if len(inputs) > limits.max_inputs:  # per node: a comparison, the call only to refuse
        check_count(len(inputs), limits.max_inputs, "inputs", node=nid, field="inputs")
    if opdef.arity != len(inputs):  # the usual case costs one comparison, not a call
        try:
            opdef.check_arity(len(inputs), node=nid)
        except GraphError as e:
            raise with_node(e, nid, "inputs") from e
    items = tuple([
        x if type(x) is str else InlineConstant(decode(x, limits, nid, "inputs"))
        for x in inputs
    ])
    if not attrs and not opdef.attrs:
        return Node(nid, op, items, {}, None)  # nothing to normalize: skip the work
    try:
        normalized = opdef.normalize_attrs(attrs, node=nid)
    except AttrError as e:
        raise with_node(e, nid, f"attrs.{e.field}" if e.field else "attrs") from e
    return Node(nid, op, items, normalized, None)


def build_graph(nodes: Sequence[Any], limits: Limits = DEFAULT_LIMITS,
                parse: ParseNode = parse_node) -> Graph:
    """Validate a node list (any order) and sort it topologically.

    ``parse`` validates one item: by default a node as the contract writes it; a caller
    that checked its nodes' form already passes its own, built on ``check_node``.
    """
    if not isinstance(nodes, Sequence) or isinstance(nodes, str | bytes | bytearray):
        raise GraphError("the graph's nodes must be a list", field="nodes")
    if not nodes:
        raise GraphError("the graph has no nodes", field="nodes")
    check_count(len(nodes), limits.max_nodes, "nodes", field="nodes")
    with collector_paused:  # its rescans of a big graph's young nodes cost more than checking
        parsed: list[Node] = []
        index: dict[str, int] = {}
        for i, raw in enumerate(nodes):
            if not i % 4096:
                budget.check("graph validation")
            node = parse(raw, i, limits)
            if node.id in index:
                raise GraphError(f"duplicate id (nodes[{index[node.id]}] and nodes[{i}])",
                                 node=node.id, field="id")
            index[node.id] = i
            parsed.append(node)
        order = toposort(parsed, index)
        leaves = tuple([n.id for n in parsed if n.op in LEAF_OPS])
        return Graph({parsed[k].id: parsed[k] for k in order}, parsed[-1].id, leaves, limits)
