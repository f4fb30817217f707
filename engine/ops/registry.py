"""The op table: one ``OpDef`` per op, holding everything about it in one place.

An op's forward (plain numpy), its vector-Jacobian product (written in engine
ops, so an outer tape records the backward pass; its contract is in engine.ops.vjp),
its SymPy form, its shape rule, its kink convention and the domain its tests sample
from live together in one ``defop`` call in a family module (``elementwise``,
``binary``, ...); ``engine.ops`` imports every family, which fills ``OPS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from engine.errors import GraphError
from engine.ops.attrs import Attr, normalize_attrs
from engine.ops.costs import ELEMENTWISE, CostRule
from engine.ops.vjp import VJP, sweep_rule
from engine.tape.recording import op_function
from engine.tensor import OPS_FN, Tensor

Shape = tuple[int, ...]
# ``batch(xs, batched, **attrs) -> Tensor``: see OpDef.batch.
BatchRule = Callable[..., Tensor]


@dataclass(frozen=True)
class Domain:
    """Where tests sample an input: uniform in [low, high], at least ``gap`` from each kink."""

    low: float = -2.0
    high: float = 2.0
    kinks: tuple[float, ...] = ()
    gap: float = 0.1


@dataclass(frozen=True)
class Case:
    """One test configuration of an op: input shapes and attrs."""

    shapes: tuple[Shape, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bilinear:
    """Second derivatives only between the listed input pairs ``(i, j)``, term by term:
    ``mul`` is ``Bilinear(((0, 1),))`` (d²(ab)/da² = 0), ``div`` adds ``(1, 1)``.

    ``terms``: (op, input shapes, output shape, attrs) -> (number of terms, one
    ``engine.ops.dependence`` map per input from terms to the elements each term
    multiplies), as matmul's terms ``a[..., i, k] b[..., k, j]``. None: the terms are the
    output elements, with ``deps``'s maps (mul: S(a_e) x S(b_e) per output element e).
    """

    pairs: tuple[tuple[int, int], ...]
    terms: Callable[..., tuple[int, tuple[Any, ...]]] | None = None


@dataclass(frozen=True)
class Sparsity:
    """How an op's output elements depend on its input elements, from shapes alone.

    What ``engine.derive.pattern`` propagates over a tape to find the zeros of a Jacobian or
    Hessian without evaluating it, as ADOL-C's or SparseConnectivityTracer's index sets.
    ``deps``: (op, input shapes, output shape, attrs with defaults) -> per input an index
    map (``engine.ops.dependence.Pairs`` or ``Groups``), or None for no dependence (a zero
    derivative). ``second`` says where second derivatives may be non-zero: "linear" (none:
    add, slice, sum, and piecewise-linear abs, relu, maximum), "nonlinear" (between any two
    elements one output element depends on) or a ``Bilinear``.
    """

    deps: Callable[..., tuple[Any, ...]]
    second: str | Bilinear = "nonlinear"


@dataclass(frozen=True)
class OpDef:
    """Everything about one op, each field's contract beside it (``vjp``'s: engine.ops.vjp)."""

    name: str
    arity: int | None  # None: one or more inputs (concat, stack)
    forward: Callable[..., Any]
    vjp: VJP | None  # None: not differentiable, gradient is None (tf.NotDifferentiable)
    sympy: Callable[..., Any]  # object ndarrays of SymPy expressions in, object ndarray out
    infer_shape: Callable[..., Shape]  # input shapes (+ attrs) -> output shape, or ShapeError
    formula: str  # the op and its derivative in one line
    convention: str  # behaviour at kinks and ties, as TensorFlow defines it
    domains: tuple[Domain, ...]  # one per input (the last repeats for variadic ops)
    cases: tuple[Case, ...]  # shapes and attrs every derivative test runs
    attrs: Mapping[str, Attr] = field(default_factory=dict)
    kink: Callable[..., Any] | None = None  # input values -> bool mask of kink points
    nonfinite: str = "overflow"  # why this op may produce a non-finite value
    family: str = ""
    # Inputs the VJP always answers None for (``where``'s condition): no path runs through them.
    inputs_without_gradient: tuple[int, ...] = ()
    # Test inputs where a box Domain is not enough (e.g. well-conditioned matrices):
    # (rng, input shapes) -> one ndarray per input.
    sample: Callable[[np.random.Generator, tuple[Shape, ...]], tuple[np.ndarray, ...]] | None = None
    # How the op runs over a leading batch axis of B points (engine.derive.points):
    # ``batch(xs, batched, **attrs)`` gets the inputs, which of them carry the axis (one at
    # least) and the attrs, and returns the batched output made of engine ops (so tapes
    # record it). None: elementwise, numpy broadcasting after the batch axis.
    batch: BatchRule | None = None
    # Which output elements depend on which input elements, and which of those
    # dependences interact nonlinearly (engine.derive.pattern: Jacobian and Hessian patterns).
    # None: every output element on every input element, fully nonlinear (always correct).
    sparsity: Sparsity | None = None
    # What the forward and the VJP cost from shapes (engine.ops.costs): the request's cost
    # is estimated from these before anything runs (engine.cost). Default: a libm call
    # per element of the largest operand.
    cost: CostRule = ELEMENTWISE
    # ``rule``'s numbers, free to write one cotangent into ``g``'s own memory: a vectorised
    # raw sweep calls it instead when nothing else holds a large ``g`` (engine.tape.backprop).
    rule_into: Callable[..., tuple] | None = None
    # The vjp as the reverse sweep calls it, ``rule(g, needs, ans, *inputs, **attrs)``
    # (see ``sweep_rule``); None when the op is not differentiable. Derived, not given.
    rule: Callable[..., tuple] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", sweep_rule(self.vjp))  # frozen: set once, here

    def domain(self, i: int) -> Domain:
        return self.domains[min(i, len(self.domains) - 1)]

    def check_arity(self, n: int, node: str | None = None) -> None:
        if self.arity is None:
            if n < 1:
                raise GraphError(f"{self.name} takes at least one input, got {n}", node=node)
        elif n != self.arity:
            raise GraphError(f"{self.name} takes {self.arity} input(s), got {n}", node=node)

    def normalize_attrs(self, raw: Mapping[str, Any] | None, node: str | None = None) -> dict:
        """Validate attrs against their specs and fill defaults (engine.ops.attrs)."""
        return normalize_attrs(self.name, self.attrs, raw, node)


# ---------------------------------------------------------------- the table

OPS: dict[str, OpDef] = {}

# ``F.cos(x)``: every op by name, so rule blocks never import each other (late-bound:
# ``defop`` adds each op as it is registered). A module object rather than a class with
# ``__getattr__``: rules read ``F.<op>`` on every call, and a module attribute is read
# at a third of the cost.
F = ModuleType("engine.ops.F", "Every registered op by name, as engine.ops.registry.defop adds it.")


def defop(op: OpDef) -> Callable[..., Tensor]:
    """Register ``op`` and return its callable, ``fn(*inputs, **attrs) -> Tensor``, which
    runs the forward and records it on the tapes recording (engine.tape.recording)."""
    assert op.name not in OPS, f"duplicate op {op.name}"
    OPS[op.name] = op
    fn = op_function(op)
    OPS_FN[op.name] = fn
    setattr(F, op.name, fn)
    return fn
