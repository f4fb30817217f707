"""Every op against its own SymPy form: forward values and tape gradients at a random point.

SymPy is the independent oracle: one real Symbol per input element, the op's
``sympy`` form on object arrays, and the symbolic Jacobian of ``out`` contracted
with a random weighting ``w`` (the tape's ``output_gradients``).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from engine import GradientTape, Variable
from engine.ops.binary import _sympy_pow
from engine.ops.registry import Case, OpDef
from engine.tensor import OPS_FN
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs

MAX_COLUMNS = 12


def _symbols(i: int, shape: tuple[int, ...]) -> np.ndarray:
    size = int(np.prod(shape, dtype=int))
    flat = [sp.Symbol(f"x{i}_{j}", real=True) for j in range(size)]
    return np.array(flat, dtype=object).reshape(shape)


def _evaluate(exprs: np.ndarray, at: dict) -> np.ndarray:
    values = [float(sp.N(e.xreplace(at))) for e in exprs.flat]
    return np.array(values, dtype=np.float64).reshape(exprs.shape)


@pytest.mark.parametrize(("op", "case"), op_cases())
def test_forward_and_gradient_match_sympy(op: OpDef, case: Case) -> None:
    rng = rng_for(op, case, "sympy")
    args = sample_inputs(op, case, rng)
    attrs = op.normalize_attrs(case.attrs)
    syms = [_symbols(i, np.shape(a)) for i, a in enumerate(args)]
    at = {
        s: sp.Float(float(v))
        for sym, a in zip(syms, args, strict=True)
        for s, v in zip(sym.flat, np.ravel(a), strict=True)
    }

    out = np.asarray(op.sympy(*syms, **attrs), dtype=object)
    ans = op.forward(*args, **attrs)
    assert out.shape == np.shape(ans)
    np.testing.assert_allclose(_evaluate(out, at), ans, rtol=1e-10, atol=1e-12)

    if op.vjp is None:  # not differentiable: test_ops_numeric asserts its None gradient
        return
    w = rng.standard_normal(out.shape)
    xs = [Variable(a) for a in args]
    with GradientTape() as tape:
        y = OPS_FN[op.name](*xs, **attrs)
    grads = tape.gradient(y, xs, output_gradients=w, unconnected_gradients="zero")
    flat_syms = [s for sym in syms for s in sym.flat]
    flat_grads = np.concatenate([np.ravel(g.numpy()) for g in grads])
    # at most MAX_COLUMNS inputs per case (seeded): big linear-algebra forms are slow
    # to differentiate, and test_ops_numeric checks every element anyway
    cols = np.sort(rng.permutation(len(flat_syms))[:MAX_COLUMNS])
    jac = _jacobian(out, [flat_syms[j] for j in cols], at)
    np.testing.assert_allclose(flat_grads[cols], w.ravel() @ jac, rtol=1e-8, atol=1e-10)


def _jacobian(out: np.ndarray, syms: list[sp.Symbol], at: dict) -> np.ndarray:
    """d out_k / d s_j at the point. Every other input is substituted first, so SymPy
    differentiates a one-variable expression (Max of many symbols is slow otherwise)."""
    jac = np.zeros((out.size, len(syms)))
    for k, o in enumerate(out.flat):
        free = o.free_symbols
        for j, s in enumerate(syms):
            if s in free:
                others = {q: at[q] for q in free if q is not s}
                jac[k, j] = float(sp.N(o.xreplace(others).diff(s).xreplace({s: at[s]})))
    return jac


@pytest.mark.parametrize(
    ("base", "exponent", "expected"),
    [
        (-(sp.Integer(2) ** 1000), sp.Integer(2**44 + 1), -sp.oo),  # odd: the sign survives
        (-(sp.Integer(2) ** 1000), sp.Integer(2**44), sp.oo),
        (sp.Integer(2) ** 1000, sp.Integer(-(2**44)), sp.Float(0)),
    ],
)
def test_a_power_too_long_to_write_out_is_taken_in_float64(base, exponent, expected):
    # 2^(1000 * 2^44) has more bits than even a float's exponent can count: SymPy must
    # not try, and gets what float64 gives the tape (a signed infinity, or zero)
    assert _sympy_pow(base, exponent) == expected
