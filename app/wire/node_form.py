"""The node list's form, checked in one plain pass: the fast road through ``Graph.nodes``.

Pydantic builds a model per node, which on a 100,000-node graph costs more than running
it. ``form_nodes`` checks exactly what the ``Node`` model checks (the keys, the id's
pattern, the op's length, references and values in ``inputs``, string-keyed ``attrs``,
the ``value``, a JSON boolean ``trainable``) and decodes values with the same codec,
into light ``FormNode`` records. It says None at the first doubt, and the caller then
lets the model validate the list: every refusal is the model's own, with its paths.
A test holds the two to the same verdict on valid and broken graphs.
"""

from __future__ import annotations

import re
from typing import Any

from app.wire.values import decode

NODE_KEYS = frozenset({"id", "op", "inputs", "attrs", "value", "trainable"})
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
MAX_OP_CHARS = 64
MAX_REF_CHARS = 128


class FormNode:
    """A node whose form is checked and whose values are decoded (as the model has it)."""

    __slots__ = ("id", "op", "inputs", "attrs", "value", "trainable", "given_trainable")

    def __init__(
        self,
        nid: str,
        op: str,
        inputs: list[Any],
        attrs: dict[str, Any],
        value: Any,
        trainable: bool | None,
    ) -> None:
        self.id = nid
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.value = value
        self.given_trainable = trainable  # None when the node does not say
        self.trainable = trainable is not False


def form_nodes(raw: Any) -> list[FormNode] | None:
    """Every node of ``raw`` checked and decoded, or None if any is not as the model wants."""
    if type(raw) is not list or not raw:
        return None
    fullmatch = ID_PATTERN.fullmatch
    out: list[FormNode] = []
    append = out.append
    try:
        for item in raw:
            if type(item) is not dict or not item.keys() <= NODE_KEYS:
                return None
            nid = item.get("id")
            op = item.get("op")
            if type(nid) is not str or type(op) is not str or len(op) > MAX_OP_CHARS:
                return None
            if not fullmatch(nid):
                return None
            inputs = item.get("inputs", ())
            if type(inputs) is not list:
                if "inputs" in item:
                    return None
                inputs = []
            else:
                inputs = [
                    x if type(x) is str and 0 < len(x) <= MAX_REF_CHARS else _decoded(x)
                    for x in inputs
                ]
            attrs = item.get("attrs")
            if attrs is None:
                if "attrs" in item:
                    return None
                attrs = {}
            elif type(attrs) is not dict or not all(type(k) is str for k in attrs):
                return None
            value = item.get("value")
            if value is not None:
                value = decode(value)
            trainable = item.get("trainable")
            if trainable is None:
                if "trainable" in item:
                    return None
            elif type(trainable) is not bool:
                return None
            append(FormNode(nid, op, inputs, attrs, value, trainable))
    except ValueError:  # the codec refused a value: the model says how
        return None
    return out


def _decoded(x: Any) -> Any:
    """An inline constant; a string here is a reference of the wrong length."""
    if type(x) is str:
        raise ValueError("a node reference has 1 to 128 characters")
    return decode(x)
