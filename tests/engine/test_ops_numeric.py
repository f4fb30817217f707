"""Every op's VJP against central finite differences, orders 1 and 2, over its cases."""

from __future__ import annotations

import numpy as np
import pytest

from engine import GradientTape, Variable
from engine.ops.registry import Case, OpDef
from engine.tensor import OPS_FN
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import call_with_attrs, check_grads, sample_inputs


def _setup(op: OpDef, case: Case, salt: str) -> tuple[tuple, dict]:
    rng = rng_for(op, case, salt)
    args = sample_inputs(op, case, rng)
    attrs = op.normalize_attrs(case.attrs)
    if op.kink is not None:
        on_kink = call_with_attrs(op.kink, args, attrs)
        assert not np.any(on_kink), f"{op.name}: a test input sits on a kink: {args}"
    return args, attrs


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize(("op", "case"), op_cases(differentiable=True))
def test_gradient_matches_finite_differences(op: OpDef, case: Case, order: int) -> None:
    args, attrs = _setup(op, case, "numeric")
    fn = OPS_FN[op.name]
    check_grads(lambda *xs: fn(*xs, **attrs), args, order, rng=rng_for(op, case, str(order)))


@pytest.mark.parametrize(("op", "case"), op_cases(differentiable=False))
def test_non_differentiable_op_gives_a_none_gradient(op: OpDef, case: Case) -> None:
    args, attrs = _setup(op, case, "none")
    xs = [Variable(a) for a in args]
    with GradientTape() as tape:
        y = OPS_FN[op.name](*xs, **attrs)
    assert tape.gradient(y, xs) == [None] * len(xs)
    assert {n.reason for n in tape.notes} == {"unconnected"}


# ------------------------------------------- at kinks, where differences can't judge

# (op, inputs, TF's gradient per input): the conventions each op's catalogue entry states
AT_KINKS = [
    ("abs", (0.0,), (0.0,)),
    ("relu", (0.0,), (0.0,)),
    ("sign", (0.0,), (0.0,)),
    ("maximum", (1.5, 1.5), (1.0, 0.0)),
    ("minimum", (1.5, 1.5), (1.0, 0.0)),
    ("pow", (0.0, 2.0), (0.0, 0.0)),
    ("pow", (-2.0, 3.0), (12.0, 0.0)),
    ("atan2", (0.0, 0.0), (np.nan, np.nan)),
]


@pytest.mark.parametrize(("name", "inputs", "expected"), AT_KINKS)
def test_gradient_at_a_kink_follows_tensorflow(name: str, inputs: tuple, expected: tuple) -> None:
    op = OPS_FN[name].op
    if op.kink is not None:
        assert np.all(op.kink(*map(np.float64, inputs))), "the kink mask must flag this point"
    xs = [Variable(x) for x in inputs]
    with GradientTape() as tape:
        y = OPS_FN[name](*xs)
    grads = tape.gradient(y, xs)
    np.testing.assert_array_equal([float(g) for g in grads], expected)


@pytest.mark.parametrize("x", [-1000.0, -40.0, 0.0, 40.0, 1000.0])
@pytest.mark.parametrize("name", ["sigmoid", "softplus", "tanh", "exp"])
def test_activation_and_its_gradient_stay_finite_where_the_math_is(name: str, x: float) -> None:
    v = Variable(x)
    with GradientTape() as tape:
        y = OPS_FN[name](v)
    g = tape.gradient(y, v)
    if name == "exp" and x > 700:
        assert np.isinf(float(y))  # overflow is real here; a note, not an error
        return
    assert np.isfinite(float(y)) and np.isfinite(float(g))


@pytest.mark.parametrize("name", ["log1p", "expm1"])
def test_small_argument_ops_keep_full_precision(name: str) -> None:
    x = 1e-12  # log(1 + x) and exp(x) - 1 lose ~4 digits here; these must not
    v = Variable(x)
    with GradientTape() as tape:
        y = OPS_FN[name](v)
    assert abs(float(y) - x) <= 1e-12 * x  # both are x + O(x²) at x = 1e-12
    np.testing.assert_allclose(float(tape.gradient(y, v)), 1.0, rtol=1e-11)
