"""``Graph``: Python code recorded as the service's wire graph.

    g = Graph()
    x = g.variable("x", 2.0)
    y = g.variable("y", 3.0)
    z = x**2 + y**3          # operators record add, sub, mul, div, pow, matmul, neg
    w = g.sum(g.sin(x) * y, axis=None)   # every op of the catalogue, attrs as keywords

Nothing is computed here: each call appends a node, and ``to_json()`` is what a
request sends as ``graph``. Each op method checks its inputs and attrs against the
catalogue (``derivative_client.catalogue``), so a typo fails in Python, not as a 422.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable
from typing import Any

from .catalogue import BY_NAME, LEAVES, OPS, OpSpec
from .values import encode

NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")


class Tensor:
    """A node of a ``Graph``: pass it to the graph's ops, as ``target=`` or ``sources=``."""

    __slots__ = ("graph", "id")
    __array_ufunc__ = None  # numpy defers to the reflected operators: np.float64(2) * x records mul

    def __init__(self, graph: Graph, node_id: str) -> None:
        self.graph = graph
        self.id = node_id

    def __repr__(self) -> str:
        return f"Tensor({self.id!r})"

    def __str__(self) -> str:
        return self.id

    def _op(self, name: str, *inputs: Any) -> Tensor:
        return self.graph.apply(name, *inputs)

    def __add__(self, other: Any) -> Tensor:
        return self._op("add", self, other)

    def __radd__(self, other: Any) -> Tensor:
        return self._op("add", other, self)

    def __sub__(self, other: Any) -> Tensor:
        return self._op("sub", self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return self._op("sub", other, self)

    def __mul__(self, other: Any) -> Tensor:
        return self._op("mul", self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return self._op("mul", other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return self._op("div", self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._op("div", other, self)

    def __pow__(self, other: Any) -> Tensor:
        return self._op("pow", self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return self._op("pow", other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return self._op("matmul", self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._op("matmul", other, self)

    def __neg__(self) -> Tensor:
        return self._op("neg", self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self._op("abs", self)


class Graph:
    """An expression graph under construction; ops are methods named as in the catalogue.

    A method whose name is a Python keyword gets a trailing underscore. Node ids are
    made up (``add_3``) unless ``name=`` gives one.
    """

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes)"

    def variable(self, name: str, value: Any = None, *, trainable: bool = True) -> Tensor:
        """A ``tf.Variable``: watched unless ``trainable=False``; its value may come later
        from the request's ``values``."""
        node: dict[str, Any] = {"id": self._claim(name), "op": "variable"}
        if value is not None:
            node["value"] = encode(value)
        if not trainable:
            node["trainable"] = False
        return self._add(node)

    def constant(self, value: Any, *, name: str | None = None) -> Tensor:
        """A ``tf.constant``: watched only when listed in a request's ``watch``."""
        node_id = self._claim(name) if name else self._fresh("constant")
        return self._add({"id": node_id, "op": "constant", "value": encode(value)})

    def apply(self, op: str, *inputs: Any, name: str | None = None, **attrs: Any) -> Tensor:
        """Record ``op`` on ``inputs`` (tensors of this graph, or numbers and arrays)."""
        spec = BY_NAME.get(op)
        if spec is None or op in LEAVES:
            raise ValueError(f"unknown op {op!r}: not in the catalogue (GET /v1/ops)")
        if spec.arity is not None and len(inputs) != spec.arity:
            raise TypeError(f"{op} takes {spec.arity} input(s), got {len(inputs)}")
        if spec.arity is None and not inputs:
            raise TypeError(f"{op} takes at least one input")
        unknown = sorted(set(attrs) - set(spec.attrs))
        if unknown:
            allowed = ", ".join(spec.attrs) or "none"
            raise TypeError(f"{op} has no attr {', '.join(unknown)} (attrs: {allowed})")
        node: dict[str, Any] = {
            "id": self._claim(name) if name else self._fresh(op),
            "op": op,
            "inputs": [self._input(item) for item in inputs],
        }
        if attrs:
            node["attrs"] = {key: _attr(value) for key, value in attrs.items()}
        return self._add(node)

    def to_dict(self) -> dict[str, Any]:
        """The wire graph, ``{"nodes": [...]}``, ready for a request's ``graph``."""
        if not self.nodes:
            raise ValueError("an empty graph: add a variable first")
        return {"nodes": [dict(node) for node in self.nodes]}

    def to_json(self, **dumps: Any) -> str:
        """The wire graph as JSON text."""
        return json.dumps(self.to_dict(), **dumps)

    @property
    def last(self) -> Tensor:
        """The last node recorded: the service's default target."""
        return Tensor(self, self.nodes[-1]["id"])

    def _input(self, item: Any) -> Any:
        if isinstance(item, Tensor):
            if item.graph is not self:
                raise ValueError(f"{item.id!r} belongs to another graph")
            return item.id
        return encode(item)

    def _claim(self, node_id: str) -> str:
        if not isinstance(node_id, str) or not NODE_ID.match(node_id):
            raise ValueError(
                f"bad node id {node_id!r}: 1 to 128 of [A-Za-z0-9_.:-], starting with a letter or _"
            )
        if node_id in self._ids:
            raise ValueError(f"duplicate node id {node_id!r}")
        self._ids.add(node_id)
        return node_id

    def _fresh(self, stem: str) -> str:
        while True:
            self._counts[stem] = self._counts.get(stem, 0) + 1
            candidate = f"{stem}_{self._counts[stem]}"
            if candidate not in self._ids:
                return self._claim(candidate)

    def _add(self, node: dict[str, Any]) -> Tensor:
        self.nodes.append(node)
        return Tensor(self, node["id"])


def _attr(value: Any) -> Any:
    """Attrs are ints, lists of ints, booleans or null; numpy ints and tuples become JSON."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, tuple):
        return [_attr(item) for item in value]
    if isinstance(value, list):
        return [_attr(item) for item in value]
    return value


def method_name(op: str) -> str:
    return f"{op}_" if keyword.iskeyword(op) else op


def _op_method(spec: OpSpec) -> Callable[..., Tensor]:
    def method(self: Graph, *inputs: Any, name: str | None = None, **attrs: Any) -> Tensor:
        return self.apply(spec.name, *inputs, name=name, **attrs)

    inputs = "any number of inputs" if spec.arity is None else f"{spec.arity} input(s)"
    attrs = f"; attrs: {', '.join(spec.attrs)}" if spec.attrs else ""
    method.__name__ = method.__qualname__ = method_name(spec.name)
    method.__doc__ = f"Record ``{spec.name}`` ({inputs}{attrs}); see GET /v1/ops."
    return method


for _spec in OPS:
    if _spec.name not in LEAVES and not hasattr(Graph, method_name(_spec.name)):
        setattr(Graph, method_name(_spec.name), _op_method(_spec))
