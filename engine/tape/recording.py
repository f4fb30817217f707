"""Recording: the tapes that record in this thread or task, and the call of an op that
runs its forward and records it on each of them (the hot path of every op).

A tape's record is a ``TapeLog``: its entries (engine.tape.entries' layout), the
tensors it watches and its watched leaves. An op is recorded on every recording
tape that watches one of its inputs, and its output is then watched too; a
trainable Variable an op reads is watched on the way (TF's
``watch_accessed_variables``). The rule is ``TapeLog.reads``; an op's callable
(``op_function``) tests its first case inline.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.tape.entries import INPUTS, NO_ATTRS, RawEntry
from engine.tensor import BEFORE_ASSIGN, OPS_FN, EagerTensor, Tensor, Variable, as_value

if TYPE_CHECKING:
    from engine.ops.registry import OpDef


class TapeLog:
    """What one tape has recorded and watches; written by the ops' callables here and by
    the tape's own ``watch`` and ``reset``."""

    __slots__ = ("__weakref__", "entries", "leaves", "watch_accessed_variables", "watched")

    def __init__(self, watch_accessed_variables: bool) -> None:
        LIVE_LOGS.add(self)
        self.entries: list[RawEntry] = []
        # Watched tensors, keyed by the tensors themselves (identity hash): on the hot
        # path ``x in watched`` costs a third of ``id(x) in watched`` (no call to id).
        self.watched: set[Tensor] = set()
        self.leaves: dict[Tensor, None] = {}  # watched leaves, in the order first watched
        self.watch_accessed_variables = watch_accessed_variables

    def watch(self, t: Tensor) -> None:
        self.watched.add(t)
        self.leaves[t] = None

    def reads(self, x: Tensor) -> bool:
        """Whether an op that reads ``x`` is recorded here: ``x`` is watched, or it is a
        trainable Variable and this tape watches what ops access, which watches it now."""
        if x in self.watched:
            return True
        if type(x) is Variable and x.trainable and self.watch_accessed_variables:
            self.watch(x)
            return True
        return False

    def clear(self) -> None:
        self.entries.clear()
        self.watched.clear()
        self.leaves.clear()


# Records a gradient may still be taken from (a non-persistent tape's leaves this set once
# it gave its gradients): ``Variable.assign`` must not change a value one of them read.
LIVE_LOGS: weakref.WeakSet[TapeLog] = weakref.WeakSet()


def _refuse_stale_reads(v: Variable) -> None:
    """Before ``v`` takes a new value: no live record read it, or its sweep would use the
    new value where the recorded op read the old one (TF's reads are snapshots)."""
    if not _stale_reads(v):
        return
    gc.collect()  # a record only a reference cycle keeps alive is not a holder: free it
    if _stale_reads(v):
        raise RuntimeError(
            "Cannot assign to a variable that a GradientTape still holding its record "
            "has read: its gradients would use the new value. Compute the gradients "
            "first (a non-persistent tape then lets go), or `del` a persistent tape."
        )


def _stale_reads(v: Variable) -> bool:
    """Whether a live record holds an entry that read ``v``."""
    return any(
        v in log.watched and any(x is v for e in log.entries for x in e[INPUTS:])
        for log in list(LIVE_LOGS)
    )


BEFORE_ASSIGN.append(_refuse_stale_reads)


# The tapes recording here, innermost last, as TF's tape stack; and whether a raw
# reverse sweep runs (see TapeStack). Context variables rather than a thread-local:
# each thread (and each asyncio task) has its own, and reading one costs a third of a
# thread-local attribute, on every op. The stack is an immutable tuple, so a copied
# context (a task, a threadpool call) never shares pushes and pops with its parent.
_TAPES: ContextVar[tuple[TapeLog, ...]] = ContextVar("engine_tapes", default=())
_RAW: ContextVar[bool] = ContextVar("engine_raw_sweep", default=False)


class TapeStack:
    """The tapes recording in this thread or task, innermost last, as TF's tape stack.

    Per context, so that concurrent requests never record (nor auto-watch the
    variables of) each other's ops. Maintained by engine.tape.gradient_tape; read on
    every op, so that no tape means no recording cost at all.

    ``raw`` is True while a reverse sweep runs its rules on raw numpy values
    (engine.tape.backprop.sweep, when no tape records): an op called then with no
    Tensor among its inputs returns a raw value too, so the first-order backward
    pass builds no Tensor at all. Outside such a sweep, ``sin(0.5)`` is a Tensor.
    """

    @property
    def logs(self) -> tuple[TapeLog, ...]:
        return _TAPES.get()

    def push(self, log: TapeLog) -> None:
        _TAPES.set((*_TAPES.get(), log))

    def remove(self, log: TapeLog) -> None:
        _TAPES.set(tuple([t for t in _TAPES.get() if t is not log]))

    @property
    def raw(self) -> bool:
        return _RAW.get()

    @raw.setter
    def raw(self, value: bool) -> None:
        _RAW.set(value)


TAPE_STACK = TapeStack()


_f64 = np.float64
_ndarray = np.ndarray


def as_output(value: Any) -> Any:
    """A forward's output as a Tensor value: float64, and 0-d as a numpy scalar."""
    if type(value) is _ndarray and value.dtype == _f64 and value.ndim:
        return value
    return as_value(value)  # 0-d arrays become scalars, other dtypes float64


def _wrap(value: Any) -> Tensor:
    """A Tensor around a forward's output, skipping conversion when it is already float64."""
    t = EagerTensor()
    t.value = value if type(value) is _f64 else as_output(value)
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
    if isinstance(x, list | tuple) and _holds_tensor(x):
        return _packed(x)
    t = EagerTensor()
    t.value = as_value(x)
    return t


def _holds_tensor(items: list | tuple) -> bool:
    return any(isinstance(v, Tensor) or (isinstance(v, list | tuple) and _holds_tensor(v))
               for v in items)


def _packed(items: list | tuple) -> Tensor:
    """A list holding tensors, as TensorFlow packs one (its autopacking conversion): a
    recorded ``stack`` of its items, so gradients reach them; never a constant copy."""
    return OPS_FN["stack"](*[_as_tensor(v) for v in items], axis=0)


def _list_call(op: OpDef, inputs: tuple, attrs: dict[str, Any]) -> tuple[tuple, dict]:
    """TF's spelling of a variadic op, ``concat(values, axis, name=None)``: the inputs as
    one list (or ``values=``), then the attrs by position; ``name`` is accepted, as TF's."""
    attrs = dict(attrs)
    attrs.pop("name", None)
    if "values" in attrs:
        values, rest = attrs.pop("values"), inputs
    else:
        values, rest = inputs[0], inputs[1:]
    if len(rest) > len(op.attrs):
        raise TypeError(f"{op.name}() takes a list and at most {len(op.attrs)} more "
                        f"argument(s) ({', '.join(op.attrs)}), got {len(rest)}")
    for name, value in zip(op.attrs, rest, strict=False):
        if name in attrs:
            raise TypeError(f"{op.name}() got multiple values for argument {name!r}")
        attrs[name] = value
    values = tuple(values) if isinstance(values, list | tuple) else (values,)
    op.check_arity(len(values))
    return values, attrs


def op_function(op: OpDef) -> Callable[..., Tensor]:
    """The callable of ``op``: ``fn(*inputs, **attrs) -> Tensor``, recorded on every tape
    in the stack that reads an input (``TapeLog.reads``).

    The callable is the hot path of every recording, so one- and two-input ops
    get a specialised body that builds the output Tensor inline (a call less per
    op), calls ``forward`` without ``**`` when there are no attrs (a plain call is
    cheaper), and with no tape recording runs nothing but the forward. Their
    recording tests ``reads``'s first case (an input is watched) inline, and calls
    it only for a Variable, which it may have to watch. An op without attrs takes
    no ``**attrs`` at all (each call would build a dict, and each entry keep one):
    its body gets ``NO_ATTRS`` by default through the keyword ``_attrs``, which the
    callable of an op with attrs passes on. Inside a raw reverse sweep
    (``TAPE_STACK.raw``), a call with no Tensor input is a rule working on raw
    values: it returns the forward's raw value, no Tensor.
    """
    forward = op.forward
    tapes_now = _TAPES.get
    raw_sweep = _RAW.get
    tensor = Tensor
    eager = EagerTensor
    no_attrs = NO_ATTRS
    variable = Variable
    variadic = op.arity is None  # concat, stack, add_n: TF passes them a list

    def fn1(x: Any, *, _attrs: Mapping[str, Any] = NO_ATTRS) -> Tensor:
        if not isinstance(x, tensor):
            if raw_sweep():
                value = forward(x) if _attrs is no_attrs else forward(x, **_attrs)
                return value if type(value) is _f64 else as_output(value)
            x = _as_tensor(x)
        value = forward(x.value) if _attrs is no_attrs else forward(x.value, **_attrs)
        ans = eager()
        ans.value = value if type(value) is _f64 else as_output(value)
        for log in tapes_now():
            watched = log.watched
            if x in watched or (type(x) is variable and log.reads(x)):
                log.entries.append((op, ans, _attrs, x))  # engine.tape.entries' layout
                watched.add(ans)
        return ans

    def fn2(a: Any, b: Any, *, _attrs: Mapping[str, Any] = NO_ATTRS) -> Tensor:
        if not isinstance(a, tensor):
            if not isinstance(b, tensor) and raw_sweep():
                value = forward(a, b) if _attrs is no_attrs else forward(a, b, **_attrs)
                return value if type(value) is _f64 else as_output(value)
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
        ans.value = value if type(value) is _f64 else as_output(value)
        for log in tapes_now():
            watched = log.watched
            # ``reads`` of both inputs, both always asked (either may be a Variable to
            # watch), with a watched input's answer known inline
            if a in watched:
                if type(b) is variable and b not in watched:
                    log.reads(b)
            elif b in watched:
                if type(a) is variable:
                    log.reads(a)
            else:
                read_a = type(a) is variable and log.reads(a)
                if not ((type(b) is variable and log.reads(b)) or read_a):
                    continue
            log.entries.append((op, ans, _attrs, a, b))
            watched.add(ans)
        return ans

    def fn1_attrs(x: Any, **attrs: Any) -> Tensor:
        return fn1(x, _attrs=attrs)

    def fn2_attrs(a: Any, b: Any, **attrs: Any) -> Tensor:
        return fn2(a, b, _attrs=attrs)

    def fn(*inputs: Any, **attrs: Any) -> Tensor:
        if variadic and ((inputs and isinstance(inputs[0], list | tuple)) or "values" in attrs):
            inputs, attrs = _list_call(op, inputs, attrs)
        if raw_sweep() and not any(isinstance(x, tensor) for x in inputs):
            return as_output(forward(*inputs, **attrs))
        xs = tuple([_as_tensor(x) for x in inputs])
        ans = _wrap(forward(*[x.value for x in xs], **attrs))
        for log in tapes_now():
            if True in [log.reads(x) for x in xs]:  # every input asked: each may be watched
                log.entries.append((op, ans, attrs, *xs))
                log.watched.add(ans)
        return ans

    chosen = (
        {1: fn1_attrs, 2: fn2_attrs} if op.attrs else {1: fn1, 2: fn2}
    ).get(op.arity, fn)  # type: ignore[arg-type]
    chosen.__name__ = op.name
    chosen.__qualname__ = op.name
    chosen.__doc__ = f"{op.formula}\n\nAt kinks: {op.convention}"
    chosen.op = op  # type: ignore[attr-defined]
    return chosen
