"""Every rule accepts a leading batch axis on its cotangent: the property behind
vectorised Jacobians and Hessians. Applied to a stack of B cotangents, a rule (plus
the sweep's central unbroadcast) gives the stack of its B single applications."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Tensor
from engine.ops.registry import Case, OpDef
from engine.tape.unbroadcast import unbroadcast
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs

B = 3


def _apply(
    op: OpDef, xs: list[Tensor], attrs: dict, ans: Tensor, g: np.ndarray, batch: tuple
) -> list:
    """The rule's cotangent per input, unbroadcast to ``batch + x.shape`` as the sweep does."""
    back = op.vjp(ans, *xs, **attrs)  # type: ignore[misc]
    out = []
    for x, gx in zip(xs, back(Tensor(g)), strict=True):
        if gx is None:
            out.append(None)
            continue
        gx = unbroadcast(gx, x.shape, batch)
        assert gx.shape == batch + x.shape, f"{op.name}: cotangent {gx.shape} for {x.shape}"
        out.append(gx.numpy())
    return out


@pytest.mark.parametrize(("op", "case"), op_cases(differentiable=True))
def test_rule_on_a_stack_of_cotangents_equals_the_stack_of_single_rules(
    op: OpDef, case: Case
) -> None:
    rng = rng_for(op, case, "batched")
    attrs = op.normalize_attrs(case.attrs)
    xs = [Tensor(a) for a in sample_inputs(op, case, rng)]
    ans = Tensor(op.forward(*[x.value for x in xs], **attrs))
    gs = rng.standard_normal((B, *ans.shape))
    batched = _apply(op, xs, attrs, ans, gs, (B,))
    singles = [_apply(op, xs, attrs, ans, gs[k], ()) for k in range(B)]
    for i, got in enumerate(batched):
        col = [s[i] for s in singles]
        if got is None:
            assert all(c is None for c in col), f"{op.name} input {i}: None only when batched"
            continue
        np.testing.assert_allclose(got, np.stack(col), rtol=1e-12, atol=1e-12,
                                   err_msg=f"{op.name} input {i}")


@pytest.mark.parametrize("batch", [(2,), (2, 3)])
@pytest.mark.parametrize(
    ("g_shape", "shape"), [((4, 3), (3,)), ((4, 3), (1, 3)), ((5, 4, 1), (4, 1)), ((3,), ())]
)
def test_unbroadcast_keeps_the_batch_prefix(batch: tuple, g_shape: tuple, shape: tuple) -> None:
    g = np.random.default_rng(0).standard_normal(batch + g_shape)
    got = unbroadcast(Tensor(g), shape, batch).numpy()
    want = np.stack([unbroadcast(Tensor(gk), shape).numpy()
                     for gk in g.reshape((-1, *g_shape))])
    np.testing.assert_allclose(got, want.reshape(batch + shape))
