"""The node list's form, checked in one plain pass: the fast road through ``Graph.nodes``.

Pydantic builds a model per node, which on a 100,000-node graph costs more than running
it. ``form_nodes`` checks exactly what the ``Node`` model checks (the keys, the id's
pattern, the op's length, references and values in ``inputs``, string-keyed ``attrs``,
the ``value``, a JSON boolean ``trainable``) and decodes values with the same codec,
into light ``FormNode`` records. It says None at the first doubt, and the caller then
lets the model validate the list: every refusal is the model's own, with its paths.
A test holds the two to the same verdict on valid and broken graphs.

A long list is also keyed by a digest of its JSON text, exact to the type of every
number (``KeyedNodes.digest``): the service's plan cache takes that for its key, and a
list whose digest passed this pass before is not checked again unless it is read
(``KnownNodes``): an optimiser's loop that sends one big graph with new values pays
neither the pass nor a key over the checked nodes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any, overload

import orjson

from app.wire.values import decode
from engine.lru import LRU

NODE_KEYS = frozenset({"id", "op", "inputs", "attrs", "value", "trainable"})
ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
MAX_OP_CHARS = 64
MAX_REF_CHARS = 128
KEYED_MIN_NODES = 256  # lists this long are keyed by their JSON's digest (see the module)
KNOWN_DIGESTS = 256  # digests of lists that passed, remembered (least recently seen out)


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


class KeyedNodes(list[FormNode]):
    """Checked nodes, and the digest of the JSON text they were read from (None: no key)."""

    digest: bytes | None = None


class KnownNodes(Sequence[FormNode]):
    """A long node list whose JSON passed ``form_nodes`` before (its digest says so): it is
    checked and decoded again, the same way, only when its nodes are read."""

    built: object = None  # what the reader made of the nodes, once it released them

    def __init__(self, raw: list[Any], digest: bytes) -> None:
        self._raw: list[Any] | None = raw
        self._nodes: list[FormNode] | None = None
        self._count = len(raw)
        self.digest = digest

    def release(self, built: object) -> None:
        """Let the JSON go (and any nodes read from it): on a 100,000-node graph, 40 MB.
        Its reader made ``built`` of it, and asks for that again (``built``) rather than
        read the nodes once more; only the length stays to read."""
        self._raw = self._nodes = None
        self.built = built

    def _checked(self) -> list[FormNode]:
        if self._nodes is None:
            if self._raw is None:
                raise RuntimeError("the nodes were released: read them before")
            nodes = _checked_nodes(self._raw)
            assert nodes is not None  # the same JSON passed before: the pass is pure
            self._nodes, self._raw = nodes, None
        return self._nodes

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[FormNode]:
        return iter(self._checked())

    @overload
    def __getitem__(self, i: int) -> FormNode: ...
    @overload
    def __getitem__(self, i: slice) -> list[FormNode]: ...
    def __getitem__(self, i: int | slice) -> FormNode | list[FormNode]:
        return self._checked()[i]


PASSED: LRU[bytes, bool] = LRU(KNOWN_DIGESTS)  # digests of lists that passed


def json_digest(raw: list[Any]) -> bytes | None:
    """SHA-256 of ``raw``'s JSON text as orjson writes it, or None where that text would
    not tell two lists apart.

    orjson keeps each number's type (``1``, ``1.0`` and ``true`` stay apart) and key
    order, and writes each float as the shortest text that reads back to it; but it
    writes NaN and the infinities as ``null``, so a text with a ``null`` where a value
    goes (after ``[``, ``,`` or ``:``; also inside a string, rarely) gets no digest (an
    extra check, never a wrong match): an id such as ``nullable`` keeps it. What orjson
    refuses (an int past 64 bits, a lone surrogate) gets none either, and so do
    subclasses of str, int, dict and list, which it would write as their base (only a
    Python caller sends them).
    """
    try:
        text = orjson.dumps(raw, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    except (orjson.JSONEncodeError, TypeError):
        return None
    if b"null" in text and any(token in text for token in _NULL_VALUES):
        return None
    return hashlib.sha256(text).digest()


_NULL_VALUES = (b"[null", b",null", b":null")  # how orjson writes a null value (no spaces)


def form_nodes(raw: Any) -> Sequence[FormNode] | None:
    """Every node of ``raw`` checked and decoded, or None if any is not as the model wants.

    A list of ``KEYED_MIN_NODES`` or more comes with the digest of its JSON (``digest``);
    one whose digest passed before comes unchecked until read (``KnownNodes``)."""
    if type(raw) is not list or not raw:
        return None
    if len(raw) < KEYED_MIN_NODES:
        return _checked_nodes(raw)
    digest = json_digest(raw)
    if digest is not None and PASSED.get(digest):
        return KnownNodes(raw, digest)
    nodes = _checked_nodes(raw)
    if nodes is None:
        return None
    if digest is not None:
        nodes.digest = digest
        PASSED.put(digest, True)
    return nodes


def _checked_nodes(raw: list[Any]) -> KeyedNodes | None:
    """The pass itself (see ``form_nodes``), its nodes not yet keyed."""
    fullmatch = ID_PATTERN.fullmatch
    out = KeyedNodes()
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
