"""Every op, table-driven, on inputs the derivative tests never sample.

Non-finite and out-of-domain values must give values and notes, never an
exception or a warning (the wire contract: a response never fails because a
result is not finite). Each vjp must hand the sweep one cotangent per input that
sums back to it, and a shape rule must work on shapes too big to allocate.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from engine import GradientTape, Tensor, Variable
from engine.ops.registry import Case, OpDef
from engine.tensor import OPS_FN
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs

HOSTILE = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1.0, 1e308, -1e308, 5e-324])


def _hostile_draws(op: OpDef, case: Case) -> list[list]:
    """Every combination of hostile scalars for an all-scalar case, else seeded fills."""
    if all(s == () for s in case.shapes):
        return [list(v) for v in itertools.product(HOSTILE, repeat=len(case.shapes))]
    rng = rng_for(op, case, "hostile")
    return [[rng.choice(HOSTILE, size=s) for s in case.shapes] for _ in range(8)]


@pytest.mark.parametrize(("op", "case"), op_cases())
def test_no_op_raises_or_warns_on_non_finite_or_out_of_domain_values(op: OpDef, case: Case) -> None:
    attrs = op.normalize_attrs(case.attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for values in _hostile_draws(op, case):
            xs = [Variable(v) for v in values]
            with GradientTape() as tape:
                y = OPS_FN[op.name](*xs, **attrs)
            assert y.value.dtype == np.float64
            assert y.shape == tuple(op.infer_shape(*case.shapes, **attrs))
            grads = tape.gradient(y, xs)
            for x, g in zip(xs, grads, strict=True):
                assert g is None or g.shape == x.shape


@pytest.mark.parametrize(("op", "case"), op_cases(differentiable=True))
def test_vjp_gives_one_cotangent_per_input_that_sums_back_to_it(op: OpDef, case: Case) -> None:
    args = sample_inputs(op, case, rng_for(op, case, "vjp"))
    attrs = op.normalize_attrs(case.attrs)
    xs = [Tensor(a) for a in args]
    ans = OPS_FN[op.name](*xs, **attrs)
    cts = op.vjp(ans, *xs, **attrs)(Tensor(np.ones(ans.shape)))
    assert isinstance(cts, tuple) and len(cts) == len(xs)
    for x, ct in zip(xs, cts, strict=True):
        if ct is None:
            continue
        assert isinstance(ct, Tensor)
        # the sweep un-broadcasts, so x must broadcast to the cotangent's shape
        assert np.broadcast_shapes(ct.shape, x.shape) == ct.shape, (ct.shape, x.shape)


def _scale(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n * 100_000 if n > 1 else n for n in shape)


@pytest.mark.parametrize(
    ("op", "case"),
    [p for p in op_cases() if p.values[0].family in ("elementwise", "binary", "reductions")],
)
def test_infer_shape_never_allocates_the_output(op: OpDef, case: Case) -> None:
    # up to ~10^11 elements: allocating them would raise MemoryError or take seconds
    attrs = op.normalize_attrs(case.attrs)
    small = tuple(op.infer_shape(*case.shapes, **attrs))
    assert tuple(op.infer_shape(*map(_scale, case.shapes), **attrs)) == _scale(small)
