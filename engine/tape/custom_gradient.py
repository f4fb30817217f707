"""``custom_gradient``: a user's forward with the user's own gradient, as ``tf.custom_gradient``.

The decorated function returns ``(y, grad_fn)``. Its ops are not recorded on the tapes
in the stack (a private log only notes which trainable variables it reads); instead one
entry per output is recorded from the inputs (and those variables) to ``y``, whose rule
calls ``grad_fn``. When a tape records the reverse sweep (nested tapes), ``grad_fn``
gets Tensors, so a ``grad_fn`` written in engine ops is differentiated in turn (second
order), as TF's; when none does, it gets Tensors too and its answers are unwrapped.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import budget
from engine.ops.registry import F
from engine.tape.entries import NO_ATTRS
from engine.tape.recording import _TAPES, TAPE_STACK, TapeLog
from engine.tape.structure import flatten, unflatten
from engine.tensor import EagerTensor, Tensor, Variable, as_value


@dataclass(frozen=True, eq=False)
class CustomOp:
    """What an entry of a custom gradient records as its op: enough of an ``OpDef`` for
    the reverse sweep, traces and sparsity patterns (dense: nothing is known)."""

    name: str
    rule: Callable[..., tuple]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    sparsity: None = None
    kink: None = None

    @property
    def vjp(self) -> Callable[..., tuple]:
        return self.rule


@contextlib.contextmanager
def _only(log: TapeLog) -> Iterator[None]:
    """Record on ``log`` alone: the stack's tapes do not see the user's forward."""
    token = _TAPES.set((log,))
    try:
        yield
    finally:
        _TAPES.reset(token)


def custom_gradient(f: Callable[..., Any] | None = None) -> Any:
    """Decorator: ``f(*args, **kwargs)`` returns ``(y, grad_fn)``; ``grad_fn(*upstream)``
    returns one gradient per positional argument (``(input_grads, variable_grads)`` with
    ``variables=`` when ``f`` reads trainable variables that are not arguments), as
    ``tf.custom_gradient`` under eager execution."""
    if f is None:
        return custom_gradient

    @functools.wraps(f)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        watcher = TapeLog(watch_accessed_variables=True)
        with _only(watcher):
            result, grad_fn = f(*args, **kwargs)
        flat_args = flatten(list(args))  # differentiated; keyword arguments are not, as TF's
        given = flat_args + flatten(list(kwargs.values()))
        inputs = [x if isinstance(x, Tensor) else Tensor(x) for x in flat_args]
        variables = [
            v for v in watcher.leaves if isinstance(v, Variable) and all(v is not x for x in given)
        ]
        if variables and not _takes_variables(grad_fn):
            raise TypeError(
                "@tf.custom_gradient grad_fn must accept keyword argument "
                f"'variables', since function uses variables: {variables}"
            )
        outputs = [EagerTensor() for _ in flatten(result)]
        for out, y in zip(outputs, flatten(result), strict=True):
            out.value = as_value(y.value if isinstance(y, Tensor) else y)
        call = _GradCall(grad_fn, outputs, len(flat_args), variables)
        recorded = [*inputs, *variables]
        for i, out in enumerate(outputs):
            op = CustomOp(
                getattr(f, "__name__", "custom_gradient"), functools.partial(call.rule, i)
            )
            for log in TAPE_STACK.logs:
                if True in [log.reads(x) for x in recorded]:  # each may be a Variable
                    log.entries.append((op, out, NO_ATTRS, *recorded))
                    log.watched.add(out)
        return unflatten(result, outputs) if isinstance(result, list | tuple | dict) else outputs[0]

    return decorated


def _takes_variables(grad_fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(grad_fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "variables" or p.kind is p.VAR_KEYWORD for p in params)


@dataclass
class _GradCall:
    """The user's ``grad_fn`` as the rule of each output's entry."""

    grad_fn: Callable[..., Any]
    outputs: list[Tensor]
    arg_count: int
    variables: list[Variable]

    def rule(self, index: int, g: Any, _needs: tuple[bool, ...], _ans: Any, *inputs: Any) -> tuple:
        """Cotangents of every recorded input from output ``index``'s cotangent ``g`` (the
        others' are zero: a gradient is linear in its upstream). A cotangent with
        leading batch dims (a vectorised Jacobian) calls ``grad_fn`` once per row."""
        raw = TAPE_STACK.raw
        TAPE_STACK.raw = False
        try:
            g = g if isinstance(g, Tensor) else Tensor(g)
            out = self.outputs[index]
            lead = g.ndim - out.ndim
            if lead == 0:
                grads = [_shaped(d, x) for d, x in zip(self._call(index, g), inputs, strict=True)]
            else:
                rows = F.reshape(g, shape=[-1, *out.shape])
                per_row = []
                for k in range(rows.shape[0]):  # the user's code, once per row: check the time
                    budget.check("a custom gradient")
                    row = F.reshape(F.slice(rows, begin=[k], end=[k + 1]), shape=list(out.shape))
                    per_row.append(self._call(index, row))
                grads = [
                    _stacked([r[j] for r in per_row], g.shape[:lead], x)
                    for j, x in enumerate(inputs)
                ]
        finally:
            TAPE_STACK.raw = raw
        return tuple(None if d is None else d.value if raw else d for d in grads)

    def _call(self, index: int, g: Tensor) -> list[Tensor | None]:
        # one upstream per output, flattened as TF passes them
        upstream = [
            g if j == index else Tensor(np.zeros(o.shape)) for j, o in enumerate(self.outputs)
        ]
        if self.variables:
            input_grads, variable_grads = self.grad_fn(*upstream, variables=self.variables)
            variable_grads = list(flatten(variable_grads))
            if len(variable_grads) != len(self.variables):
                raise ValueError(
                    "Must return gradient for each variable from @custom_gradient grad_fn."
                )
        else:
            input_grads, variable_grads = self.grad_fn(*upstream), []
        flat = flatten(input_grads)
        if len(flat) != self.arg_count:
            raise ValueError(
                f"custom_gradient function expected to return {self.arg_count} "
                f"gradients, but returned {len(flat)} instead."
            )
        return list(flat) + variable_grads


def _shaped(d: Any, x: Any) -> Tensor | None:
    """A user's gradient as a Tensor of its input's shape (a number is broadcast)."""
    if d is None:
        return None
    d = d if isinstance(d, Tensor) else Tensor(d)
    shape = np.shape(x.value if isinstance(x, Tensor) else x)
    if d.shape == shape:
        return d
    try:
        np.broadcast_shapes(d.shape, shape)
    except ValueError:
        raise ValueError(
            f"custom_gradient: a gradient of shape {list(d.shape)} for an "
            f"input of shape {list(shape)}"
        ) from None
    return F.broadcast_to(d, shape=list(shape)) if d.size <= int(np.prod(shape)) else d


def _stacked(rows: list[Any], batch: tuple[int, ...], x: Any) -> Tensor | None:
    """Per-row gradients of one input as one cotangent of shape ``batch + x.shape``."""
    if all(r is None for r in rows):
        return None
    shape = np.shape(x.value if isinstance(x, Tensor) else x)
    filled = [Tensor(np.zeros(shape)) if r is None else _shaped(r, x) for r in rows]
    return F.reshape(F.stack(*filled, axis=0), shape=[*batch, *shape])
