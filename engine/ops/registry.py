"""The op table: one ``OpDef`` per op, holding everything about it in one place.

An op's forward (plain numpy), its vector-Jacobian product (written in engine
ops, so an outer tape records the backward pass), its SymPy form, its shape
rule, its kink convention and the domain its tests sample from live together
in one ``defop`` call in a family module (``elementwise``, ``binary``, ...).

A ``vjp`` is curried like autograd's: ``vjp(ans, *inputs, **attrs)`` returns
``back(g) -> tuple`` with one entry per input; ``None`` means "no gradient
flows here", never a silent zero. It is called lazily, during the reverse sweep.
For ops of two or more inputs the sweep calls ``back(g, needs)``: ``needs[i]``
is False when input ``i`` lies on no path from a source, and the rule may then
return None for it instead of computing a cotangent nobody reads (autograd's
``argnums``). Called with ``g`` alone, a rule computes every cotangent.

``g`` may carry leading batch dims, ``g.shape == batch + ans.shape`` (a vectorised
sweep: many Jacobian rows at once); a rule then returns cotangents with the same
batch in front (broadcast shapes are fine, the sweep sums them down). Rules that
name axes, shapes or permutations shift them past the batch (engine.ops.batching).

A rule gets Tensors when a tape records the backward pass (higher orders), and raw
numpy values when none does (the first-order sweep builds no Tensor): the same
code serves both, reading values through ``value_of`` and making constants with
``constant_like``. A rule with nothing to prepare before ``g`` may be written
uncurried (``uncurried``): the sweep then calls it without a closure per entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np

from engine.errors import AttrError, GraphError
from engine.ops.costs import ELEMENTWISE, CostRule
from engine.tensor import OPS_FN, EagerTensor, Tensor, Variable, as_value

Shape = tuple[int, ...]
VJP = Callable[..., Callable[[Tensor], tuple[Tensor | None, ...]]]
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
class Attr:
    """An op option: its kind drives validation, ``default`` is used when absent."""

    kind: str  # "axis" | "axes" | "bool" | "shape" | "perm" | "int" | "ints"
    default: Any = None
    required: bool = False
    doc: str = ""


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
    """Everything about one op. See the module docstring for the contract of each field."""

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
        """Validate attrs against their specs and fill defaults."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(self.attrs))
        if unknown:
            allowed = ", ".join(self.attrs) or "none"
            raise AttrError(
                f"unknown attr(s) {unknown} for {self.name}; allowed: {allowed}", node=node
            )
        out = {}
        for name, spec in self.attrs.items():
            if name not in raw:
                if spec.required:
                    raise AttrError(f"{self.name} needs attr {name!r}", node=node, field=name)
                out[name] = spec.default
                continue
            out[name] = _coerce_attr(spec, raw[name], name, node)
        return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _coerce_attr(spec: Attr, v: Any, name: str, node: str | None) -> Any:
    def bad(expected: str) -> AttrError:
        return AttrError(f"attr {name!r} must be {expected}", node=node, field=name)

    def int_list(v: Any) -> tuple[int, ...]:
        if isinstance(v, list | tuple) and all(_is_int(x) for x in v):
            return tuple(int(x) for x in v)
        raise bad("a list of integers")

    kind = spec.kind
    if kind == "bool":
        if isinstance(v, bool):
            return v
        raise bad("true or false")
    if kind == "int":
        if _is_int(v):
            return int(v)
        raise bad("an integer")
    if kind == "axis":  # int or null
        if v is None or _is_int(v):
            return None if v is None else int(v)
        raise bad("an integer or null")
    if kind == "axes":  # int, list of ints or null
        if v is None:
            return None
        if _is_int(v):
            return int(v)
        return int_list(v)
    if kind in ("shape", "perm", "ints"):
        if v is None and not spec.required:
            return None
        return int_list(v)
    raise AssertionError(f"unknown attr kind {kind}")


# ---------------------------------------------------------------- the table

OPS: dict[str, OpDef] = {}


# The tapes recording here, innermost last, as TF's tape stack; and whether a raw
# reverse sweep runs (see _Recording). Context variables rather than a thread-local:
# each thread (and each asyncio task) has its own, and reading one costs a third of a
# thread-local attribute, on every op. The stack is an immutable tuple, so a copied
# context (a task, a threadpool call) never shares pushes and pops with its parent.
_TAPES: ContextVar[tuple[Any, ...]] = ContextVar("engine_tapes", default=())
_RAW: ContextVar[bool] = ContextVar("engine_raw_sweep", default=False)


class _Recording:
    """The tapes recording in this thread or task, innermost last, as TF's tape stack.

    Per context, so that concurrent requests never record (nor auto-watch the
    variables of) each other's ops. Maintained by engine.tape.gradient_tape; read on every op,
    so that no tape means no recording cost at all.

    ``raw`` is True while a reverse sweep runs its rules on raw numpy values
    (engine.tape.backprop.sweep, when no tape records): an op called then with no
    Tensor among its inputs returns a raw value too, so the first-order backward
    pass builds no Tensor at all. Outside such a sweep, ``sin(0.5)`` is a Tensor.
    """

    @property
    def tapes(self) -> tuple[Any, ...]:
        return _TAPES.get()

    def push(self, tape: Any) -> None:
        _TAPES.set((*_TAPES.get(), tape))

    def remove(self, tape: Any) -> None:
        _TAPES.set(tuple([t for t in _TAPES.get() if t is not tape]))

    @property
    def raw(self) -> bool:
        return _RAW.get()

    @raw.setter
    def raw(self, value: bool) -> None:
        _RAW.set(value)


RECORDING = _Recording()


_f64 = np.float64
_ndarray = np.ndarray


# ``F.cos(x)``: every op by name, so rule blocks never import each other (late-bound:
# ``defop`` adds each op as it is registered). A module object rather than a class with
# ``__getattr__``: rules read ``F.<op>`` on every call, and a module attribute is read
# at a third of the cost.
F = ModuleType("engine.ops.F", "Every registered op by name, as engine.ops.registry.defop adds it.")


def _as_f64(value: Any) -> Any:
    """A forward's output as a Tensor value: float64, and 0-d as a numpy scalar."""
    if type(value) is _ndarray and value.dtype == _f64 and value.ndim:
        return value
    return as_value(value)  # 0-d arrays become scalars, other dtypes float64


def _wrap(value: Any) -> Tensor:
    """A Tensor around a forward's output, skipping conversion when it is already float64."""
    t = EagerTensor()
    t.value = value if type(value) is _f64 else _as_f64(value)
    return t


# Constant Tensors of Python floats, shared, as TensorFlow's eager scalar cache shares
# them: ``y * 0.9`` in a loop then neither builds a Tensor for 0.9 on each op nor frees
# one with the tape. Zeros are left out (0.0 == -0.0 would give both one sign) and so is
# NaN (never equal to itself); the cache stops growing at SCALAR_CACHE_SIZE floats.
SCALAR_CACHE_SIZE = 1024
_scalars: dict[float, Tensor] = {}


def _as_tensor(x: Any) -> Tensor:
    """An op's input as a Tensor; Python floats (``x * 0.9``) take the short way."""
    if isinstance(x, Tensor):
        return x
    if type(x) is float:
        t = _scalars.get(x)
        if t is None:
            t = EagerTensor()
            t.value = _f64(x)
            if x and x == x and len(_scalars) < SCALAR_CACHE_SIZE:
                _scalars[x] = t
        return t
    t = EagerTensor()
    t.value = as_value(x)
    return t


# The attrs an entry of an op without attrs records: one shared, read-only mapping.
NO_ATTRS: Mapping[str, Any] = MappingProxyType({})


def defop(op: OpDef) -> Callable[..., Tensor]:
    """Register ``op`` and return its callable: ``fn(*inputs, **attrs) -> Tensor``.

    The callable is the hot path of every recording, so one- and two-input ops
    get a specialised body that builds the output Tensor inline (a call less per
    op), calls ``forward`` without ``**`` when there are no attrs (a plain call is
    cheaper), and with no tape recording runs nothing but the forward. The common
    case of ``GradientTape.record`` (an input is watched, none is a Variable that
    may need watching) is inlined too: the entry is appended and the output
    watched with no call. An op without attrs takes no ``**attrs`` at all (each
    call would build a dict, and each entry keep one): its body gets ``NO_ATTRS``
    by default through the keyword ``_attrs``, which the callable of an op with
    attrs passes on. Inside a raw reverse sweep (``RECORDING.raw``), a call with no
    Tensor input is a rule working on raw values: it returns the forward's raw
    value, no Tensor.
    """
    assert op.name not in OPS, f"duplicate op {op.name}"
    OPS[op.name] = op
    forward = op.forward
    tapes_now = _TAPES.get
    raw_sweep = _RAW.get
    tensor = Tensor
    eager = EagerTensor
    no_attrs = NO_ATTRS
    variable = Variable

    def fn1(x: Any, *, _attrs: Mapping[str, Any] = NO_ATTRS) -> Tensor:
        if not isinstance(x, tensor):
            if raw_sweep():
                value = forward(x) if _attrs is no_attrs else forward(x, **_attrs)
                return value if type(value) is _f64 else _as_f64(value)
            x = _as_tensor(x)
        value = forward(x.value) if _attrs is no_attrs else forward(x.value, **_attrs)
        ans = eager()
        ans.value = value if type(value) is _f64 else _as_f64(value)
        for tape in tapes_now():
            watched = tape._watched
            if x in watched:  # record's common case, inline (see the docstring)
                tape._entries.append((op, ans, _attrs, x))  # engine.tape.entries' layout
                watched.add(ans)
            else:
                tape.record(op, (x,), ans, _attrs)
        return ans

    def fn2(a: Any, b: Any, *, _attrs: Mapping[str, Any] = NO_ATTRS) -> Tensor:
        if not isinstance(a, tensor):
            if not isinstance(b, tensor) and raw_sweep():
                value = forward(a, b) if _attrs is no_attrs else forward(a, b, **_attrs)
                return value if type(value) is _f64 else _as_f64(value)
            a = _as_tensor(a)
        if not isinstance(b, tensor):
            # ``y * 0.9``: the cached constant without a call to _as_tensor, when it has one
            # (a number equal to a cached float is that float: 2 == 2.0, as as_value makes)
            try:
                c = _scalars.get(b)
            except TypeError:  # unhashable: an array, a list
                c = None
            b = c if c is not None else _as_tensor(b)
        value = (forward(a.value, b.value) if _attrs is no_attrs
                 else forward(a.value, b.value, **_attrs))
        ans = eager()
        ans.value = value if type(value) is _f64 else _as_f64(value)
        for tape in tapes_now():
            watched = tape._watched
            # record's common case, inline: an input is watched, and the other is too or
            # is no Variable (which record may have to watch)
            if (a in watched and (type(b) is not variable or b in watched)) or (
                b in watched and type(a) is not variable
            ):
                tape._entries.append((op, ans, _attrs, a, b))
                watched.add(ans)
            else:
                tape.record(op, (a, b), ans, _attrs)
        return ans

    def fn1_attrs(x: Any, **attrs: Any) -> Tensor:
        return fn1(x, _attrs=attrs)

    def fn2_attrs(a: Any, b: Any, **attrs: Any) -> Tensor:
        return fn2(a, b, _attrs=attrs)

    def fn(*inputs: Any, **attrs: Any) -> Tensor:
        if raw_sweep() and not any(isinstance(x, tensor) for x in inputs):
            return _as_f64(forward(*inputs, **attrs))
        xs = tuple([_as_tensor(x) for x in inputs])
        ans = _wrap(forward(*[x.value for x in xs], **attrs))
        tapes = tapes_now()
        if tapes:
            for tape in tapes:
                tape.record(op, xs, ans, attrs)
        return ans

    chosen = (
        {1: fn1_attrs, 2: fn2_attrs} if op.attrs else {1: fn1, 2: fn2}
    ).get(op.arity, fn)  # type: ignore[arg-type]
    chosen.__name__ = op.name
    chosen.__qualname__ = op.name
    chosen.__doc__ = f"{op.formula}\n\nAt kinks: {op.convention}"
    chosen.op = op  # type: ignore[attr-defined]
    OPS_FN[op.name] = chosen
    setattr(F, op.name, chosen)
    return chosen


# ------------------------------------------------------ rule helpers (JAX-style)


def value_of(x: Any) -> Any:
    """The numpy value of a rule's argument: a Tensor's ``.value``, or ``x`` itself.

    A rule gets Tensors when a tape records the backward pass, and raw numpy values
    when none does (the raw sweep, see engine.tape.backprop.sweep); a rule that reads a
    value directly (a constant mask) reads it through here, so it serves both.
    """
    return x.value if isinstance(x, Tensor) else x


def constant_like(g: Any, value: Any) -> Any:
    """``value`` as a constant cotangent in ``g``'s form: a Tensor when ``g`` is one,
    else the raw value (the raw sweep, see ``value_of``)."""
    return Tensor(value) if isinstance(g, Tensor) else as_value(value)


def elementwise_shape(*shapes: Shape) -> Shape:
    """Output shape of an elementwise op: numpy broadcasting of all inputs."""
    first = shapes[0]
    if type(first) is tuple and all(s == first for s in shapes):
        return first  # the common case, without numpy's general (and slow) path
    from engine.errors import ShapeError

    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(
            f"shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast"
        ) from None


def vectorize_sympy(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Lift a scalar SymPy function to object arrays, elementwise with broadcasting."""
    vec = np.vectorize(fn, otypes=[object])

    def apply(*arrays: Any, **_: Any) -> Any:
        return vec(*arrays)

    return apply


def uncurried(rule: Callable[..., tuple]) -> VJP:
    """The vjp of ``rule(g, needs, ans, *inputs, **attrs) -> cotangents``, a rule with
    nothing to prepare before ``g`` arrives (``needs`` as ``back(g, needs)`` gets it).

    The curried form built here is the contract every caller may use; the reverse
    sweep instead finds ``rule`` as ``OpDef.rule`` and calls it at once, without the
    closure ``vjp(ans, *inputs)`` builds, and calls, for every entry (on a scalar
    chain, a sixth of the sweep's time). One rule, called either way.
    """

    def vjp(ans: Tensor, *inputs: Tensor, **attrs: Any) -> Callable[..., tuple]:
        def back(g: Tensor, needs: tuple[bool, ...] | None = None) -> tuple:
            return rule(g, needs or (True,) * len(inputs), ans, *inputs, **attrs)

        return back

    vjp.rule = rule  # type: ignore[attr-defined]  # see sweep_rule
    return vjp


def sweep_rule(vjp: VJP | None) -> Callable[..., tuple] | None:
    """``vjp`` in the one form the reverse sweep calls, ``rule(g, needs, ans, *inputs,
    **attrs)``: an ``uncurried`` vjp's own rule, or a curried vjp called through it."""
    if vjp is None:
        return None
    rule = getattr(vjp, "rule", None)
    if rule is not None:
        return rule

    def call_curried(g: Any, needs: tuple[bool, ...], ans: Any, *inputs: Any,
                     **attrs: Any) -> tuple:
        back = vjp(ans, *inputs, **attrs)
        return back(g) if len(inputs) == 1 else back(g, needs)  # one input: always needed

    return call_curried


def linear_vjp(rule: Callable[..., Any]) -> VJP:
    """A vjp for an op linear in its inputs: ``rule(g, **attrs)`` needs neither ans nor inputs."""
    return uncurried(lambda g, _needs, _ans, *_xs, **attrs: rule(g, **attrs))


UNARY_CASES = (Case(((),)), Case(((3, 4),)))
BINARY_CASES = (
    Case(((), ())),
    Case(((3, 4), (3, 4))),
    Case(((3, 1), (1, 4))),
    Case(((3, 4), ())),
    Case(((4,), (3, 4))),
)
