"""One-input elementwise ops: each block is forward, VJP, SymPy form, convention, domain.

VJPs are written in engine ops (``F.cos(x)``, operators on tensors), so an outer
tape records the backward pass and nested tapes give higher derivatives. Rules
that reuse ``ans`` (exp, tan, tanh, sigmoid, ...) save ops in the reverse sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from engine.ops import dependence as rules
from engine.ops.broadcasting import UNARY_CASES, elementwise_shape, vectorize_sympy
from engine.ops.costs import CHEAP_ELEMENTWISE, ELEMENTWISE, CostRule
from engine.ops.registry import OPS, Domain, F, OpDef, Sparsity, defop
from engine.ops.vjp import VJP, constant_like, times_into, uncurried, value_of
from engine.tensor import Tensor

SMOOTH = "smooth on its domain"
ANYWHERE = Domain()
NO_GRADIENT = "gradient is None (no gradient flows), as TensorFlow"


def unary(
    name: str,
    forward: Callable[[Any], Any],
    vjp: VJP | None,
    sympy: Callable[[Any], Any],
    formula: str,
    *,
    convention: str = SMOOTH,
    domain: Domain = ANYWHERE,
    kink: Callable[[Any], Any] | None = None,
    nonfinite: str = "overflow",
    sparsity: Sparsity = rules.SMOOTH,
    cost: CostRule = ELEMENTWISE,
    rule_into: Callable[..., tuple] | None = None,
) -> Callable[..., Tensor]:
    """Register a one-input elementwise op (``sparsity``: nonlinear unless said otherwise;
    ``cost``: a libm call per element unless said otherwise)."""
    return defop(
        OpDef(
            name=name,
            arity=1,
            forward=forward,
            vjp=vjp,
            sympy=vectorize_sympy(sympy),
            infer_shape=elementwise_shape,
            formula=formula,
            convention=convention,
            domains=(domain,),
            cases=UNARY_CASES,
            kink=kink,
            nonfinite=nonfinite,
            family="elementwise",
            sparsity=sparsity,
            cost=cost,
            rule_into=rule_into,
        )
    )


def using_x(rule: Callable[[Tensor, Tensor], Tensor]) -> VJP:
    """A vjp ``g -> rule(g, x)`` that needs only the input (JAX's ``defjvp``)."""
    return uncurried(lambda g, _needs, _ans, x: (rule(g, x),))


def using_ans(rule: Callable[[Tensor, Tensor], Tensor]) -> VJP:
    """A vjp ``g -> rule(g, ans)`` that reuses the forward output (JAX's ``defjvp2``)."""
    return uncurried(lambda g, _needs, ans, _x: (rule(g, ans),))


def borrowed_vjp(op_name: str, bind: Callable[[Tensor], tuple]) -> VJP:
    """The vjp of another op with bound inputs (``square(x) = mul(x, x)``): no new math.

    The cotangents of every input slot that holds ``x`` are summed. Cheaper than
    re-recording the composition in the sweep (3x slower backward, measured).
    """

    def vjp(ans: Tensor, x: Tensor) -> Callable[[Tensor], tuple]:
        inputs = bind(x)
        rule = OPS[op_name].vjp(ans, *inputs)  # type: ignore[misc]

        def back(g: Tensor) -> tuple:
            total = None
            for t, gt in zip(inputs, rule(g), strict=True):
                if t is x and gt is not None:
                    total = gt if total is None else total + gt
            return (total,)

        return back

    return vjp


ONE = np.float64(1.0)  # a raw constant: serves rules on Tensors and on raw values alike


def _at_integers(x: Any) -> Any:
    return np.floor(x) == x


INTEGERS = tuple(float(k) for k in range(-2, 3))

# ------------------------------------------------------------ sign, abs, linear

neg = unary(
    "neg", np.negative, using_x(lambda g, _x: -g), lambda x: -x,
    "neg(x) = -x; d/dx = -1", sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
    rule_into=lambda g, _needs, _ans, _x: (np.negative(g, out=g),),
)
identity = unary(
    "identity", lambda x: x, using_x(lambda g, _x: g), lambda x: x,
    "identity(x) = x; d/dx = 1 (the cotangent passes through)", sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
)
stop_gradient = unary(
    "stop_gradient", lambda x: x, None, lambda x: x,
    "stop_gradient(x) = x; blocks the gradient",
    convention="not differentiable: " + NO_GRADIENT + "'s tf.stop_gradient",
    sparsity=rules.ZERO,
    cost=CHEAP_ELEMENTWISE,
)
abs_ = unary(
    "abs", np.abs, using_x(lambda g, x: g * F.sign(x)), sp.Abs,
    "abs(x) = |x|; d/dx |x| = sign(x)",
    convention="abs'(0) = 0, as TensorFlow (the gradient is sign(x))",
    domain=Domain(kinks=(0.0,)), kink=lambda x: x == 0, sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
)
sign = unary(
    # zeros, not g * 0: an infinite g must not turn the gradient into NaN; of g's shape,
    # so a batched cotangent keeps its batch dims
    "sign", np.sign, using_x(lambda g, _x: constant_like(g, np.zeros(g.shape))), sp.sign,
    "sign(x) in {-1, 0, 1}; d/dx sign(x) = 0",
    convention="gradient is 0 everywhere, including at 0, as TensorFlow (zeros_like(x))",
    domain=Domain(kinks=(0.0,)), kink=lambda x: x == 0, sparsity=rules.ZERO,
    cost=CHEAP_ELEMENTWISE,
)
relu = unary(
    # a constant mask is fine here: its derivative is genuinely zero away from 0
    "relu", lambda x: np.maximum(x, 0.0), using_x(lambda g, x: g * (value_of(x) > 0)),
    lambda x: sp.Max(x, 0),
    "relu(x) = max(x, 0); d/dx = 1 where x > 0, else 0",
    convention="relu'(0) = 0, as TensorFlow (the gradient is 1 only where x > 0)",
    domain=Domain(kinks=(0.0,)), kink=lambda x: x == 0, sparsity=rules.LINEAR,
    cost=CHEAP_ELEMENTWISE,
)
floor = unary(
    "floor", np.floor, None, sp.floor,
    "floor(x): the largest integer <= x; not differentiable",
    convention="not differentiable: " + NO_GRADIENT + " (its Floor gradient returns None)",
    domain=Domain(kinks=INTEGERS), kink=_at_integers, sparsity=rules.ZERO,
    cost=CHEAP_ELEMENTWISE,
)
ceil = unary(
    "ceil", np.ceil, None, sp.ceiling,
    "ceil(x): the smallest integer >= x; not differentiable",
    convention="not differentiable: " + NO_GRADIENT + " (its Ceil gradient returns None)",
    domain=Domain(kinks=INTEGERS), kink=_at_integers, sparsity=rules.ZERO,
    cost=CHEAP_ELEMENTWISE,
)

# ---------------------------------------------------------- powers and logs

def _doubled(t: Any, g: Any) -> Any:
    """``t + t``, in ``t`` when it is ``g``'s memory (square's ``rule_into``): the sum of
    mul's two equal cotangents, ``g * x + g * x``, with one product instead of two."""
    return np.add(t, t, out=t) if t is g else t + t


# mul's numbers at (x, x), g * x + g * x, from one product and one sum: borrowing mul's
# rule would record three ops (two products), and a Hessian sweeps each once per seed.
# Derivatives of order 3 and up through it may round differently in the last bit.
square = unary(
    "square", lambda x: x * x, using_x(lambda g, x: _doubled(g * x, g)), lambda x: x**2,
    "square(x) = mul(x, x); d/dx = 2x",
    cost=CHEAP_ELEMENTWISE,
    rule_into=lambda g, _needs, _ans, x: (_doubled(times_into(g, x), g),),
)


reciprocal = unary(
    "reciprocal", lambda x: 1.0 / x, borrowed_vjp("div", lambda x: (ONE, x)), lambda x: 1 / x,
    "reciprocal(x) = div(1, x); d/dx = -1/x²",
    domain=Domain(kinks=(0.0,), gap=0.5), nonfinite="reciprocal of zero",
    cost=CHEAP_ELEMENTWISE,
)
sqrt = unary(
    "sqrt", np.sqrt, using_ans(lambda g, ans: 0.5 * g / ans), sp.sqrt,
    "sqrt(x); d/dx sqrt(x) = 1/(2·sqrt(x))", domain=Domain(0.2, 4.0),
    nonfinite="sqrt of a negative number",
    cost=CHEAP_ELEMENTWISE,
)
exp = unary(
    "exp", np.exp, using_ans(lambda g, ans: g * ans), sp.exp,
    "exp(x); d/dx exp(x) = exp(x)", domain=Domain(-3.0, 3.0),
)
expm1 = unary(
    # exact for small x, where exp(x) - 1 cancels
    "expm1", np.expm1, using_x(lambda g, x: g * F.exp(x)), lambda x: sp.exp(x) - 1,
    "expm1(x) = exp(x) - 1; d/dx = exp(x)", domain=Domain(-3.0, 3.0),
)
log = unary(
    "log", np.log, using_x(lambda g, x: g / x), sp.log,
    "log(x); d/dx log(x) = 1/x", domain=Domain(0.2, 4.0),
    nonfinite="log of a negative number or zero",
)
log1p = unary(
    # exact for small x, where log(1 + x) rounds 1 + x
    "log1p", np.log1p, using_x(lambda g, x: g / (1.0 + x)), lambda x: sp.log(1 + x),
    "log1p(x) = log(1 + x); d/dx = 1/(1 + x)", domain=Domain(-0.8, 3.0),
    nonfinite="log1p of a number <= -1",
)

# ---------------------------------------------------------------- trigonometry

sin = unary("sin", np.sin, using_x(lambda g, x: g * F.cos(x)), sp.sin,
            "sin(x); d/dx sin(x) = cos(x)")
cos = unary("cos", np.cos, using_x(lambda g, x: -g * F.sin(x)), sp.cos,
            "cos(x); d/dx cos(x) = -sin(x)")
tan = unary(
    "tan", np.tan, using_ans(lambda g, ans: g * (1.0 + ans * ans)), sp.tan,
    "tan(x); d/dx tan(x) = 1 + tan²(x)", domain=Domain(-1.2, 1.2),
    nonfinite="tan near an odd multiple of pi/2",
)
asin = unary(
    "asin", np.arcsin, using_x(lambda g, x: g / F.sqrt(1.0 - x * x)), sp.asin,
    "asin(x); d/dx asin(x) = 1/sqrt(1 - x²)", domain=Domain(-0.9, 0.9),
    nonfinite="asin outside [-1, 1]",
)
acos = unary(
    "acos", np.arccos, using_x(lambda g, x: -g / F.sqrt(1.0 - x * x)), sp.acos,
    "acos(x); d/dx acos(x) = -1/sqrt(1 - x²)", domain=Domain(-0.9, 0.9),
    nonfinite="acos outside [-1, 1]",
)
atan = unary(
    "atan", np.arctan, using_x(lambda g, x: g / (1.0 + x * x)), sp.atan,
    "atan(x); d/dx atan(x) = 1/(1 + x²)",
)

# -------------------------------------------------------------- hyperbolic

sinh = unary("sinh", np.sinh, using_x(lambda g, x: g * F.cosh(x)), sp.sinh,
             "sinh(x); d/dx sinh(x) = cosh(x)", domain=Domain(-3.0, 3.0))
cosh = unary("cosh", np.cosh, using_x(lambda g, x: g * F.sinh(x)), sp.cosh,
             "cosh(x); d/dx cosh(x) = sinh(x)", domain=Domain(-3.0, 3.0))
tanh = unary(
    "tanh", np.tanh, using_ans(lambda g, ans: g * (1.0 - ans * ans)), sp.tanh,
    "tanh(x); d/dx tanh(x) = 1 - tanh²(x)", domain=Domain(-3.0, 3.0),
)
asinh = unary(
    # cosh(asinh(x)) = sqrt(1 + x²), without x² overflowing for huge x (as TF)
    "asinh", np.arcsinh, using_ans(lambda g, ans: g / F.cosh(ans)), sp.asinh,
    "asinh(x); d/dx asinh(x) = 1/sqrt(x² + 1)", domain=Domain(-3.0, 3.0),
)
acosh = unary(
    # sinh(acosh(x)) = sqrt(x² - 1), without x² - 1 cancelling near 1 (as TF)
    "acosh", np.arccosh, using_ans(lambda g, ans: g / F.sinh(ans)), sp.acosh,
    "acosh(x); d/dx acosh(x) = 1/sqrt(x² - 1)", domain=Domain(1.2, 3.0),
    nonfinite="acosh of a number below 1",
)
atanh = unary(
    "atanh", np.arctanh, using_x(lambda g, x: g / (1.0 - x * x)), sp.atanh,
    "atanh(x); d/dx atanh(x) = 1/(1 - x²)", domain=Domain(-0.9, 0.9),
    nonfinite="atanh outside (-1, 1)",
)

# ------------------------------------------------------------- activations

sigmoid = unary(
    # dedicated rule for speed: reuses ans instead of differentiating 1/(1 + exp(-x)),
    # and exp(-x) = inf for x << 0 gives the exact limit 0, never NaN
    "sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)),
    using_ans(lambda g, ans: g * ans * (1.0 - ans)), lambda x: 1 / (1 + sp.exp(-x)),
    "sigmoid(x) = 1/(1 + exp(-x)); d/dx = sigmoid(x)·(1 - sigmoid(x))",
    domain=Domain(-4.0, 4.0),
)
softplus = unary(
    # dedicated stable forward: log(1 + exp(x)) overflows for x > 709
    "softplus", lambda x: np.logaddexp(0.0, x), using_x(lambda g, x: g * F.sigmoid(x)),
    lambda x: sp.log(1 + sp.exp(x)),
    "softplus(x) = log(1 + exp(x)); d/dx = sigmoid(x)", domain=Domain(-4.0, 4.0),
)
