"""Vector-Jacobian products: the contract of an op's ``vjp``, the helpers rules are
written with, and the one form the reverse sweep calls them in.

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

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.tensor import Tensor, as_value

VJP = Callable[..., Callable[[Tensor], tuple[Tensor | None, ...]]]


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


def times_into(g: Any, b: Any) -> Any:
    """``g * b``, written into ``g`` when the product keeps ``g``'s shape and dtype: the
    same numbers, without a new array. Only for a ``rule_into`` (``g`` is the sweep's to
    give: see ``OpDef.rule_into``); a large batched cotangent is megabytes, and a new one
    costs a page fault per 4 KiB where large blocks go back to the system when freed."""
    if np.result_type(g, b) == g.dtype and np.broadcast_shapes(g.shape, np.shape(b)) == g.shape:
        return np.multiply(g, b, out=g)
    return g * b
