"""Random small graphs for the differential suite, and a numpy reference that never
touches the tape: each op's own ``forward`` run node by node, differentiated by central
finite differences.

A graph is a handful of op nodes drawn from the op table (``engine.ops.OPS``), each fed
from leaves (variables, non-trainable variables, constants, inline numbers) or from
earlier op outputs whose values lie in the op's declared domain, away from its kinks,
as ``tests/engine/op_cases.py`` samples them. Every op output then enters a smooth
scalar ``t = sum_k sum(sin(o_k) * w_k)``, so second derivatives mix every node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from engine import OPS
from engine.ops.registry import Case, OpDef
from tests.gradcheck import call_with_attrs, sample_inputs

Shape = tuple[int, ...]
MAX_ELEMENTS = 6  # every tensor of a drawn graph: small enough for dense Hessians by FD

# Shapes an elementwise op is drawn at: scalars, vectors, matrices, all <= MAX_ELEMENTS.
UNARY_SHAPES: tuple[Shape, ...] = ((), (2,), (3,), (2, 3), (3, 1))
# Binary shapes that broadcast every way numpy allows: equal, scalar, rank and size-1 axes.
BINARY_SHAPES: tuple[tuple[Shape, Shape], ...] = (
    ((), ()), ((3,), (3,)), ((2, 3), (2, 3)), ((2, 1), (1, 3)), ((2, 3), ()),
    ((), (3,)), ((3,), (2, 3)), ((2, 3), (3,)), ((3, 1), (3,)),
)
# Non-differentiable ops (no vjp: stop_gradient, floor, ceil) stay in the draw: they cut
# paths (None gradients), and the reference freezes their values (``frozen_values``).


def _small(case: Case, op: OpDef) -> bool:
    try:
        out = op.infer_shape(*case.shapes, **op.normalize_attrs(case.attrs))
    except Exception:  # noqa: BLE001 - a shrunk case the op refuses is simply not used
        return False
    return all(math.prod(s) <= MAX_ELEMENTS for s in (*case.shapes, out))


def _shrunk(case: Case) -> Case:
    """A reduction's case with its 4-long axes made 2-long: same ranks, same attrs."""
    return Case(tuple(tuple(2 if d == 4 else d for d in s) for s in case.shapes), case.attrs)


def _cases(op: OpDef) -> tuple[Case, ...]:
    """The op's declared cases (reductions' also shrunk) that keep every tensor small;
    the smallest declared case when none does."""
    if op.family == "elementwise":
        return tuple(Case((s,)) for s in UNARY_SHAPES)
    if op.family == "binary":
        return tuple(Case(p) for p in BINARY_SHAPES)
    declared = list(op.cases)
    if op.family == "reductions":
        declared += [_shrunk(c) for c in op.cases]
    small = tuple(c for c in declared if _small(c, op))
    return small or (min(op.cases, key=lambda c: sum(math.prod(s) for s in c.shapes)),)


CASES: dict[str, tuple[Case, ...]] = {name: _cases(op) for name, op in OPS.items()}
OP_NAMES = sorted(CASES)


# ------------------------------------------------------------------ the numpy reference


def forward(nodes: Sequence[Mapping[str, Any]], leaf_values: Mapping[str, Any],
            frozen: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every node's value by the ops' own numpy forwards, in node order (drawn graphs are
    written in topological order). ``frozen``: values that ``stop_gradient`` nodes keep,
    so finite differences see no path through them, as the tape does not."""
    out: dict[str, np.ndarray] = {}
    for n in nodes:
        if n["op"] in ("variable", "constant"):
            out[n["id"]] = np.asarray(leaf_values.get(n["id"], n.get("value")), dtype=float)
            continue
        if frozen is not None and n["id"] in frozen:
            out[n["id"]] = frozen[n["id"]]
            continue
        op = OPS[n["op"]]
        args = [out[x] if isinstance(x, str) else np.asarray(x, dtype=float)
                for x in n["inputs"]]
        attrs = op.normalize_attrs(n.get("attrs", {}))
        out[n["id"]] = np.asarray(call_with_attrs(op.forward, args, attrs), dtype=float)
    return out


def frozen_values(nodes: Sequence[Mapping[str, Any]], base: Mapping[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """The base point's values of the nodes no gradient flows through."""
    return {n["id"]: base[n["id"]] for n in nodes
            if n["op"] not in ("variable", "constant") and OPS[n["op"]].vjp is None}


@dataclass
class Drawn:
    """A drawn graph: wire nodes, each node's shape and value, and what kind each leaf is."""

    nodes: list[dict[str, Any]]
    values: dict[str, np.ndarray]
    leaves: list[str]
    outputs: list[str]  # op node ids (not the smooth tail), in order
    target: str  # the scalar tail
    leaf_kind: dict[str, str] = field(default_factory=dict)  # "variable", "frozen", "constant"

    def shape(self, i: str) -> Shape:
        return tuple(np.shape(self.values[i]))

    def leaf_values(self) -> dict[str, Any]:
        return {i: self.values[i].tolist() for i in self.leaves}

    def consumers(self) -> dict[str, list[str]]:
        """Node id -> ids of the nodes that take it through a differentiable op."""
        out: dict[str, list[str]] = {n["id"]: [] for n in self.nodes}
        for n in self.nodes:
            if n["op"] in ("variable", "constant") or OPS[n["op"]].vjp is None:
                continue
            cut = OPS[n["op"]].inputs_without_gradient
            for k, x in enumerate(n["inputs"]):
                if isinstance(x, str) and k not in cut:
                    out[x].append(n["id"])
        return out

    def reaches(self, source: str, targets: Sequence[str]) -> bool:
        """A differentiable path from ``source`` to one of ``targets`` (TF's "connected")."""
        seen, todo, consumers = {source}, [source], self.consumers()
        while todo:
            for c in consumers[todo.pop()]:
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
        return any(t in seen for t in targets)


def _in_domain(op: OpDef, i: int, value: np.ndarray) -> bool:
    d = op.domain(i)
    v = np.asarray(value)
    if not np.all(np.isfinite(v)) or np.any(v < d.low) or np.any(v > d.high):
        return False
    return all(np.all(np.abs(v - k) >= d.gap) for k in d.kinks)


@st.composite
def graphs(draw: st.DrawFn, max_ops: int = 3, ops: Sequence[str] = OP_NAMES,
           inline: bool = True, leaf_kinds: Sequence[str] = ("variable", "frozen", "constant"),
           plain: bool = False) -> Drawn:
    """A graph of 1..``max_ops`` op nodes from ``ops`` and its smooth scalar tail ``t``.

    ``plain``: only what expression text can say (no attrs, scalar weights in the tail)."""
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    nodes: list[dict[str, Any]] = []
    values: dict[str, np.ndarray] = {}
    leaves: list[str] = []
    kinds: dict[str, str] = {}
    outputs: list[str] = []
    for k in range(draw(st.integers(1, max_ops), label="ops")):
        op = OPS[draw(st.sampled_from(list(ops)), label=f"op{k}")]
        cases = [c for c in CASES[op.name] if not (plain and c.attrs)]
        if not cases:
            continue
        case = draw(st.sampled_from(cases), label=f"case{k}")
        fresh = sample_inputs(op, case, rng)
        inputs: list[Any] = []
        for i, shape in enumerate(case.shapes):
            pool = [] if op.sample is not None else [
                n for n in (*leaves, *outputs)
                if np.shape(values[n]) == shape and _in_domain(op, i, values[n])]
            # an inline constant (-2), a new leaf (-1) or a node of the pool; the first op's
            # last input is a leaf at least, so that every graph has one
            first_leaf = not leaves and i == len(case.shapes) - 1
            low = -1 if first_leaf or not inline else -2
            choice = draw(st.integers(low, len(pool) - 1), label=f"in{k}.{i}")
            if choice >= 0:
                inputs.append(pool[choice])
            elif choice == -2:  # an inline constant, as the wire allows
                inputs.append(np.asarray(fresh[i]).tolist())
            else:
                lid = f"x{len(leaves)}"
                kind = draw(st.sampled_from(list(leaf_kinds)), label=f"kind.{lid}")
                node: dict[str, Any] = {"id": lid, "op": "constant" if kind == "constant"
                                        else "variable", "value": np.asarray(fresh[i]).tolist()}
                if kind == "frozen":
                    node["trainable"] = False
                nodes.append(node)
                values[lid] = np.asarray(fresh[i], dtype=float)
                leaves.append(lid)
                kinds[lid] = kind
                inputs.append(lid)
        oid = f"o{k}"
        node = {"id": oid, "op": op.name, "inputs": inputs}
        if case.attrs:
            node["attrs"] = dict(case.attrs)
        nodes.append(node)
        values[oid] = forward(nodes, {})[oid]
        outputs.append(oid)
    if not outputs:  # every drawn op needed attrs a plain graph cannot give
        nodes.append({"id": "x0", "op": "variable", "value": 0.5})
        nodes.append({"id": "o0", "op": "sin", "inputs": ["x0"]})
        leaves, kinds, outputs = ["x0"], {"x0": "variable"}, ["o0"]
    tail = []
    for k, o in enumerate(outputs):
        w = np.round(rng.uniform(0.5, 1.5, () if plain else np.shape(values[o])), 3).tolist()
        tail += [{"id": f"s{k}", "op": "sin", "inputs": [o]},
                 {"id": f"m{k}", "op": "mul", "inputs": [f"s{k}", w]},
                 {"id": f"r{k}", "op": "sum", "inputs": [f"m{k}"]}]
    total = "r0"
    for k in range(1, len(outputs)):
        tail.append({"id": f"a{k}", "op": "add", "inputs": [total, f"r{k}"]})
        total = f"a{k}"
    tail.append({"id": "t", "op": "identity", "inputs": [total]})
    nodes += tail
    values = forward(nodes, {})
    return Drawn(nodes, values, leaves, outputs, "t", kinds)


# ------------------------------------------------------------------ finite differences

H1 = 1e-6  # first order: truncation ~h^2 |f'''| and rounding ~1e-16 |f| / h, both ~1e-10
H2 = 1e-4  # second order (four evaluations over 4h^2): rounding ~1e-16 |f| / h^2 ~ 1e-8


def scalar_fn(g: Drawn, weights: Mapping[str, Any] | None, targets: Sequence[str]
              ) -> Any:
    """``x -> sum over target occurrences of sum(weight * value)`` on leaf values."""
    frozen = frozen_values(g.nodes, g.values)
    base = {i: g.values[i] for i in g.leaves}

    def f(changes: Mapping[str, np.ndarray]) -> float:
        vals = forward(g.nodes, {**base, **changes}, frozen)
        total = 0.0
        for t in targets:
            w = 1.0 if not weights or t not in weights else np.asarray(weights[t])
            total += float(np.sum(w * vals[t]))
        return total

    return f


def fd_gradient(f: Any, g: Drawn, source: str) -> np.ndarray:
    x = g.values[source]
    out = np.zeros(np.shape(x))
    for i in np.ndindex(np.shape(x)):
        e = np.zeros(np.shape(x))
        e[i] = H1
        out[i] = (f({source: x + e}) - f({source: x - e})) / (2 * H1)
    return out


def fd_hessian(f: Any, g: Drawn, sources: Sequence[str]) -> np.ndarray:
    """The dense Hessian over the flattened ``sources`` (a source listed twice appears
    twice), by four-point central differences of ``f`` alone."""
    slots = [(s, i) for s in sources for i in np.ndindex(np.shape(g.values[s]))]
    n = len(slots)
    cache: dict[tuple, float] = {}

    def at(moves: tuple[tuple[str, tuple, float], ...]) -> float:
        key = tuple(sorted(moves))
        if key not in cache:
            changes: dict[str, np.ndarray] = {}
            for s, i, h in moves:
                x = changes.setdefault(s, np.array(g.values[s], dtype=float))
                x[i] += h
            cache[key] = f(changes)
        return cache[key]

    out = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            (sa, ia), (sb, ib) = slots[a], slots[b]
            v = (at(((sa, ia, H2), (sb, ib, H2))) - at(((sa, ia, H2), (sb, ib, -H2)))
                 - at(((sa, ia, -H2), (sb, ib, H2))) + at(((sa, ia, -H2), (sb, ib, -H2))))
            out[a, b] = out[b, a] = v / (4 * H2 * H2)
    return out
