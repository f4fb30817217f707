"""matmul, with numpy's semantics: batched over leading dims (broadcast as numpy), a
1-D operand promoted to a one-row (a) or one-column (b) matrix and its unit axis
dropped after. Rules may return cotangents of the broadcast batch shape; the reverse
sweep sums them down to each input's shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.costs import BLAS_CALL, BLAS_FLOP, scaled, size
from engine.ops.dependence import Pairs
from engine.ops.matrices import mT, over_points, stack_batch, stack_ids
from engine.ops.registry import Bilinear, Case, Domain, F, OpDef, Shape, Sparsity, defop
from engine.tensor import Tensor


def _matmul_shape(a: Shape, b: Shape) -> Shape:
    if not a or not b:
        raise ShapeError(f"matmul needs tensors of rank >= 1, got {list(a)} and {list(b)}")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ShapeError(f"matmul of {list(a)} and {list(b)}: inner dims {a2[-1]} != {b2[-2]}")
    rows = (a2[-2],) if len(a) > 1 else ()
    cols = (b2[-1],) if len(b) > 1 else ()
    return stack_batch(a2[:-2], b2[:-2]) + rows + cols


def _matmul_vjp(ans: Tensor, a: Tensor, b: Tensor):
    """d/da (a @ b) = g @ bᵀ, d/db = aᵀ @ g; a vector is a 1-row (a) or 1-column (b) matrix."""
    a2 = a if a.ndim > 1 else F.reshape(a, shape=[1, a.shape[0]])
    b2 = b if b.ndim > 1 else F.reshape(b, shape=[b.shape[0], 1])
    out2 = [*stack_batch(a2.shape[:-2], b2.shape[:-2]), a2.shape[-2], b2.shape[-1]]

    def vjp(g: Tensor, needs: tuple[bool, bool] = (True, True)) -> tuple[Tensor | None, ...]:
        nb = g.ndim - ans.ndim  # a batched cotangent's leading dims stay in front
        g2 = g if list(g.shape[nb:]) == out2 else F.reshape(g, shape=[*g.shape[:nb], *out2])
        ga = gb = None
        if needs[0]:
            ga = F.matmul(g2, mT(b2))
            if a.ndim == 1:  # (..., 1, n): sum the matrix batch away, drop the row axis
                ga = F.sum(ga, axis=list(range(nb, ga.ndim - 1)))
        if needs[1]:
            gb = F.matmul(mT(a2), g2)
            if b.ndim == 1:  # (..., n, 1): likewise
                gb = F.sum(gb, axis=[*range(nb, gb.ndim - 2), gb.ndim - 1])
        return ga, gb

    return vjp


def _matmul_deps(_op: OpDef, in_shapes: Any, _out: Any, _attrs: Any) -> rules.Maps:
    """Output (i, j) depends on row i of a and column j of b (dropping a vector's unit
    axis leaves the flat order of (..., m, p) unchanged)."""
    a, b = stack_ids(*in_shapes)
    *batch, m, _k = a.shape
    p = b.shape[-1]
    out = (*batch, m, p)
    rows = np.arange(math.prod(batch) * m).reshape(*batch, m, 1)
    cols = np.arange(math.prod(batch) * p).reshape(*batch, 1, p)
    return (
        rules.Groups(np.broadcast_to(rows, out).ravel(),
                     Pairs(np.broadcast_to(rows, a.shape).ravel(), a.ravel())),
        rules.Groups(np.broadcast_to(cols, out).ravel(),
                     Pairs(np.broadcast_to(cols, b.shape).ravel(), b.ravel())),
    )


def _matmul_terms(_op: OpDef, in_shapes: Any, _out: Any, _attrs: Any) -> tuple[int, Any]:
    """Terms a[..., i, k] b[..., k, j]: all the i and j of one (batch, k) interact, so
    that pair is one term, of column k of a and row k of b."""
    a, b = stack_ids(*in_shapes)
    *batch, _m, k = a.shape
    terms = np.arange(math.prod(batch) * k).reshape(*batch, k)
    return terms.size, (
        Pairs(np.broadcast_to(terms[..., None, :], a.shape).ravel(), a.ravel()),
        Pairs(np.broadcast_to(terms[..., :, None], b.shape).ravel(), b.ravel()),
    )


def _matmul_flops(a: Shape, _b: Shape, out: Shape) -> float:
    """A multiply and an add per output element and per term of the contraction."""
    return 2.0 * size(out) * a[-1]


def _matmul_calls(a: Shape, b: Shape, out: Shape) -> float:
    """A BLAS call per product of the stack (its rows times columns in ``out`` each)."""
    rows = a[-2] if len(a) >= 2 else 1
    cols = b[-1] if len(b) >= 2 else 1
    return BLAS_CALL * (size(out) // max(1, rows * cols))


matmul = defop(
    OpDef(
        name="matmul",
        arity=2,
        batch=over_points(lambda a, b: F.matmul(a, b), _matmul_shape),
        forward=np.matmul,
        vjp=_matmul_vjp,
        sympy=lambda a, b: np.asarray(np.matmul(a, b), dtype=object),
        infer_shape=_matmul_shape,
        formula="a @ b, numpy semantics (batched, 1-D promoted); d/da = g @ bᵀ, d/db = aᵀ @ g",
        convention="bilinear, no kinks",
        domains=(Domain(), Domain()),
        cases=(
            Case(((3,), (3,))),
            Case(((2, 3), (3, 4))),
            Case(((3,), (3, 4))),
            Case(((2, 3), (3,))),
            Case(((2, 1, 2, 3), (4, 3, 2))),
            Case(((5, 2, 3), (3,))),
            Case(((3,), (2, 3, 4))),
        ),
        family="linalg",
        sparsity=Sparsity(_matmul_deps, Bilinear(((0, 1),), _matmul_terms)),
        cost=scaled(_matmul_flops, BLAS_FLOP, calls=_matmul_calls),
    )
)
