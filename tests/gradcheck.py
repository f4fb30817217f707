"""``check_grads``: autograd's and JAX's dot-product test of a gradient, in float64.

For a function ``f`` of tensors, a random output weighting ``w`` turns it into
the scalar ``s(x) = sum(w * f(x))``; along a random direction ``v`` the tape's
``<grad s, v>`` must equal the central difference ``(s(x + hv) - s(x - hv)) / 2h``.
Order 2 checks the gradient function itself the same way: ``x -> <grad s(x), u>``
is computed with a nested tape and differentiated by the outer one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from engine import GradientTape, Tensor, Variable
from engine.ops.registry import Case, F, OpDef

Array = np.ndarray | np.float64


def check_grads(
    fn: Callable[..., Tensor],
    args: Sequence[Array],
    order: int = 1,
    *,
    rng: np.random.Generator | None = None,
    eps: float = 1e-5,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Assert the tape's derivatives of ``fn`` at ``args`` match central differences.

    ``order=2`` also checks second derivatives (nested tapes). Directions and
    weights come from ``rng`` (seeded by the caller), so a failure reproduces.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    args = [_f64(a) for a in args]
    w = _f64(rng.standard_normal(np.shape(fn(*[Tensor(a) for a in args]).value)))
    _check_first_order(fn, args, w, rng, eps, rtol, atol)
    if order >= 2:
        u = [_f64(rng.standard_normal(np.shape(a))) for a in args]

        def grad_dot(*xs: Tensor) -> Tensor:
            """<grad s(x), u>, differentiable by an outer tape."""
            with GradientTape() as inner:
                inner.watch(list(xs))
                y = fn(*xs)
            grads = inner.gradient(
                y, list(xs), output_gradients=Tensor(w), unconnected_gradients="zero"
            )
            total = None
            for g, ui in zip(grads, u, strict=True):
                term = F.sum(g * ui)
                total = term if total is None else total + term
            return total

        check_grads(grad_dot, args, order - 1, rng=rng, eps=eps, rtol=rtol, atol=atol)


def _check_first_order(
    fn: Callable[..., Tensor],
    args: list[Array],
    w: Array,
    rng: np.random.Generator,
    eps: float,
    rtol: float,
    atol: float,
) -> None:
    xs = [Variable(a) for a in args]
    with GradientTape() as tape:
        y = fn(*xs)
    assert y.shape == np.shape(w), f"output shape {y.shape} changed between calls"
    grads = tape.gradient(y, xs, output_gradients=Tensor(w), unconnected_gradients="zero")
    for g, a in zip(grads, args, strict=True):
        assert g.shape == np.shape(a), f"gradient shape {g.shape} != input shape {np.shape(a)}"

    v = [_f64(rng.standard_normal(np.shape(a))) for a in args]

    def s(step: float) -> float:
        moved = [Tensor(a + step * vi) for a, vi in zip(args, v, strict=True)]
        return float(np.sum(w * fn(*moved).value))

    numeric = (s(eps) - s(-eps)) / (2 * eps)
    tape_dir = float(sum(np.sum(g.value * vi) for g, vi in zip(grads, v, strict=True)))
    tol = atol + rtol * max(abs(numeric), abs(tape_dir))
    assert abs(numeric - tape_dir) <= tol, (
        f"directional derivative: tape {tape_dir!r}, central differences {numeric!r} "
        f"(difference {abs(numeric - tape_dir):.3g} > tolerance {tol:.3g})"
    )


def _f64(a: Any) -> Array:
    arr = np.asarray(a, dtype=np.float64)
    return arr[()] if arr.ndim == 0 else arr


# ------------------------------------------------------------ sampling inputs


def sample_inputs(op: OpDef, case: Case, rng: np.random.Generator) -> tuple[Array, ...]:
    """One input per shape of ``case``: ``op.sample`` when set, else uniform inside
    ``op.domain(i)`` and at least ``gap`` away from each of its kinks."""
    if op.sample is not None:
        return tuple(_f64(a) for a in op.sample(rng, case.shapes))
    return tuple(_uniform_away(rng, op, i, shape) for i, shape in enumerate(case.shapes))


def _uniform_away(rng: np.random.Generator, op: OpDef, i: int, shape: tuple) -> Array:
    d = op.domain(i)
    x = rng.uniform(d.low, d.high, shape)
    for _ in range(100):
        near = np.zeros(np.shape(x), dtype=bool)
        for k in d.kinks:
            near |= np.abs(x - k) < d.gap
        if not near.any():
            return _f64(x)
        x = np.where(near, rng.uniform(d.low, d.high, shape), x)
    raise AssertionError(f"{op.name}: domain {d} leaves no room away from its kinks")


def call_with_attrs(fn: Callable[..., Any], inputs: Sequence[Any], attrs: Mapping) -> Any:
    """Call ``fn(*inputs, **attrs)``, passing only the attrs its signature names."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a numpy ufunc: no attrs
        return fn(*inputs)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(*inputs, **attrs)
    return fn(*inputs, **{k: v for k, v in attrs.items() if k in params})
