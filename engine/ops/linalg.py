"""The LAPACK ops: inv, det, solve.

Every op works on stacks of matrices (leading batch dims, broadcast as numpy;
engine.ops.matrices). Rules may return cotangents of the broadcast batch shape; the
reverse sweep sums them down to each input's shape. A singular matrix gives NaN,
never an error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from engine import budget
from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.costs import LAPACK_CALL, LAPACK_COPY, LAPACK_FLOP, scaled, size
from engine.ops.dependence import Pairs
from engine.ops.matrices import mT, over_points, stack_batch, stack_ids
from engine.ops.registry import Case, Domain, F, OpDef, Shape, Sparsity, defop
from engine.tensor import Tensor


def _square(shape: Shape, name: str) -> int:
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(f"{name} needs square matrices (..., n, n), got shape {list(shape)}")
    return shape[-1]


def well_conditioned(rng: np.random.Generator, shapes: tuple[Shape, ...]) -> tuple[Any, ...]:
    """Test inputs: the first is uniform + n·I (diagonally dominant), the rest uniform."""
    first, *rest = shapes
    a = rng.uniform(-1.0, 1.0, first) + first[-1] * np.eye(first[-1])
    return (a, *(rng.uniform(-1.0, 1.0, s) for s in rest))


def _each_matrix(fn: Callable[..., Any], out: np.ndarray, *stacks: np.ndarray) -> np.ndarray:
    """Fill ``out`` per batch element (stacks share its batch dims); singular ones stay NaN.
    A Python step per matrix: it honours the time budget."""
    for k, idx in enumerate(np.ndindex(out.shape[: stacks[0].ndim - 2])):
        if k % 1024 == 1023:
            budget.check("a stack of matrices")
        with contextlib.suppress(np.linalg.LinAlgError):
            out[idx] = fn(*(s[idx] for s in stacks))
    return out


def _singular_as_nan(fn: Callable[..., np.ndarray], shape: Shape, a: np.ndarray,
                     *rest: np.ndarray) -> np.ndarray:
    """``fn(a, *rest)``, of ``shape``, over a stack in which LAPACK found a singular matrix:
    those (an exact zero pivot: slogdet's sign 0, from the same LU) are swapped for the
    identity for one vectorised call, and their answers are NaN. Matrix by matrix in
    Python, a million-matrix stack of 1 x 1 zeros took 4.5 s against an estimate of
    0.12 s."""
    singular = np.linalg.slogdet(a)[0] == 0
    safe = np.where(singular[..., None, None], np.eye(a.shape[-1]), a)
    try:
        out = fn(safe, *rest)
    except np.linalg.LinAlgError:  # a pivot slogdet did not see: matrix by matrix
        return _each_matrix(fn, np.full(shape, np.nan), a, *rest)
    out[singular] = np.nan
    return out


def _smat(a: np.ndarray) -> sp.Matrix:
    return sp.Matrix(a.tolist())


def _matrices(a: Shape) -> int:
    """Matrices in a stack (..., n, n)."""
    return size(a[:-2])


def _calls(matrices: int, copied: int) -> float:
    """The work around the LAPACK calls of ``matrices`` matrices, each copying ``copied``
    elements in and out (engine.ops.costs.LAPACK_CALL)."""
    return matrices * (LAPACK_CALL + LAPACK_COPY * copied)


# ----------------------------------------------------------------------- inv


def _inv_shape(a: Shape) -> Shape:
    _square(a, "inv")
    return a


def _inv_forward(a: Any) -> Any:
    a = np.asarray(a, dtype=np.float64)
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:  # some matrix of the stack is singular
        return _singular_as_nan(np.linalg.inv, a.shape, a)


def _stacked(fn: Callable[[Tensor], Tensor]) -> Callable[..., Tensor]:
    """The batch rule of an op on stacks of matrices: the points are one more stack dim."""
    return lambda xs, _batched: fn(xs[0])


def _matrix_of(shape: Shape) -> np.ndarray:
    """The index of the matrix each element of a stack (..., n, n) belongs to."""
    return rules.spread((*shape[:-2], 1, 1), shape)


def _inv_deps(_op: OpDef, in_shapes: Any, _out: Any, _attrs: Any) -> rules.Maps:
    """Every element of inv(A) depends on every element of its matrix A."""
    return (rules.grouped(_matrix_of(in_shapes[0]), _matrix_of(in_shapes[0])),)


def _det_deps(_op: OpDef, in_shapes: Any, _out: Any, _attrs: Any) -> rules.Maps:
    """det(A) of each matrix depends on every element of it."""
    of = _matrix_of(in_shapes[0])
    return (Pairs(of, np.arange(of.size)),)


def _inv_sympy(a: Any) -> Any:
    a = np.asarray(a, dtype=object)
    return _each_matrix(lambda m: np.array(_smat(m).inv().tolist(), dtype=object),
                        np.empty(a.shape, dtype=object), a)


inv = defop(
    OpDef(
        name="inv",
        arity=1,
        batch=_stacked(lambda a: F.inv(a)),
        forward=_inv_forward,
        vjp=lambda ans, _a: lambda g: (-F.matmul(F.matmul(mT(ans), g), mT(ans)),),
        sympy=_inv_sympy,
        infer_shape=_inv_shape,
        formula="inv(A) = A⁻¹ per matrix; d/dA = -A⁻ᵀ g A⁻ᵀ",
        convention="smooth where A is invertible; a singular matrix gives NaN",
        domains=(Domain(-1.0, 1.0),),
        cases=(Case(((3, 3),)), Case(((2, 3, 3),)), Case(((1, 1),))),
        nonfinite="singular matrix",
        family="linalg",
        sparsity=Sparsity(_inv_deps),
        cost=scaled(lambda a, _out: 2.0 * _matrices(a) * a[-1] ** 3, LAPACK_FLOP,
                    calls=lambda a, _out: _calls(_matrices(a), 3 * a[-1] ** 2)),
        sample=well_conditioned,
    )
)


# ----------------------------------------------------------------------- det


def _det_shape(a: Shape) -> Shape:
    _square(a, "det")
    return a[:-2]


def _det_vjp(ans: Tensor, a: Tensor):
    """d/dA det(A) = det(A) · A⁻ᵀ (NaN where A is singular, as TensorFlow's inverse)."""
    return lambda g: (F.reshape(g * ans, shape=[*g.shape, 1, 1]) * mT(F.inv(a)),)


def _det_sympy(a: Any) -> Any:
    a = np.asarray(a, dtype=object)
    return _each_matrix(lambda m: _smat(m).det(), np.empty(a.shape[:-2], dtype=object), a)


det = defop(
    OpDef(
        name="det",
        arity=1,
        batch=_stacked(lambda a: F.det(a)),
        forward=lambda a: np.linalg.det(np.asarray(a, dtype=np.float64)),
        vjp=_det_vjp,
        sympy=_det_sympy,
        infer_shape=_det_shape,
        formula="det(A) per matrix; d/dA = g · det(A) · A⁻ᵀ",
        convention="polynomial; the gradient uses A⁻¹, so it is NaN where A is singular",
        domains=(Domain(-1.0, 1.0),),
        cases=(Case(((3, 3),)), Case(((2, 2, 2),)), Case(((1, 1),))),
        family="linalg",
        sparsity=Sparsity(_det_deps),
        cost=scaled(lambda a, _out: 2 / 3 * _matrices(a) * a[-1] ** 3, LAPACK_FLOP,
                    calls=lambda a, _out: _calls(_matrices(a), a[-1] ** 2)),
        sample=well_conditioned,
    )
)


# --------------------------------------------------------------------- solve
# b is a vector only when 1-D, as numpy >= 2's linalg.solve; else a stack (..., n, k).


def _solve_shape(a: Shape, b: Shape) -> Shape:
    n = _square(a, "solve")
    if len(b) == 1:
        if b[0] != n:
            raise ShapeError(f"solve of {list(a)} with a vector of length {b[0]}, not {n}")
        return (*a[:-2], n)
    if len(b) < 2 or b[-2] != n:
        raise ShapeError(f"solve of {list(a)} needs b of shape (n,) or (..., {n}, k), "
                         f"got {list(b)}")
    return (*stack_batch(a[:-2], b[:-2]), n, b[-1])


def _as_stacks(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A vector b as a one-column matrix; both broadcast to the common batch."""
    b = b[:, None] if b.ndim == 1 else b
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])


def _solve_forward(a: Any, b: Any) -> Any:
    a2, b2 = _as_stacks(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    try:
        x = np.linalg.solve(a2, b2)
    except np.linalg.LinAlgError:  # some matrix of the stack is singular
        x = _singular_as_nan(np.linalg.solve, b2.shape, a2, b2)
    return x[..., 0] if np.ndim(b) == 1 else x


def _solve_sympy(a: Any, b: Any) -> Any:
    a2, b2 = _as_stacks(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    x = _each_matrix(lambda m, r: np.array(_smat(m).LUsolve(_smat(r)).tolist(), dtype=object),
                     np.empty(b2.shape, dtype=object), a2, b2)
    return x[..., 0] if np.ndim(b) == 1 else x


def _solve_vjp(ans: Tensor, a: Tensor, b: Tensor):
    """x = A⁻¹b: d/db = A⁻ᵀ g = solve(Aᵀ, g), d/dA = -(d/db) xᵀ."""
    vector = b.ndim == 1

    def column(t: Tensor) -> Tensor:
        return F.reshape(t, shape=[*t.shape, 1]) if vector else t

    def vjp(g: Tensor, needs: tuple[bool, bool] = (True, True)) -> tuple[Tensor | None, ...]:
        gb = F.solve(mT(a), column(g))
        ga = -F.matmul(gb, mT(column(ans))) if needs[0] else None
        return ga, (F.reshape(gb, shape=list(g.shape)) if vector else gb)

    return vjp


def _solve_deps(_op: OpDef, in_shapes: Any, _out: Any, _attrs: Any) -> rules.Maps:
    """Column c of x = A⁻¹b depends on all of its A and on column c of its b."""
    a_ids, b_ids = stack_ids(*in_shapes)
    *batch, n, k = b_ids.shape
    mats = np.arange(math.prod(batch)).reshape(*batch, 1, 1)
    cols = np.arange(math.prod(batch) * k).reshape(*batch, 1, k)
    out = (*batch, n, k)
    return (
        rules.Groups(np.broadcast_to(mats, out).ravel(),
                     Pairs(np.broadcast_to(mats, a_ids.shape).ravel(), a_ids.ravel())),
        rules.Groups(np.broadcast_to(cols, out).ravel(),
                     Pairs(np.broadcast_to(cols, b_ids.shape).ravel(), b_ids.ravel())),
    )


def _solve_stack(a: Shape, b: Shape, out: Shape) -> tuple[int, int, int]:
    """(matrices, n, k): the broadcast stack solves ``matrices`` systems of n x n with k
    right-hand sides each, so a broadcast A is factorised once per copy."""
    n = a[-1]
    k = b[-1] if len(b) > 1 else 1
    return size(out) // (n * k), n, k


def _solve_flops(a: Shape, b: Shape, out: Shape) -> float:
    """An LU per matrix, then a forward and a back substitution per right-hand side."""
    matrices, n, k = _solve_stack(a, b, out)
    return matrices * (2 / 3 * n**3 + 2.0 * n * n * k)


def _solve_calls(a: Shape, b: Shape, out: Shape) -> float:
    matrices, n, k = _solve_stack(a, b, out)
    return _calls(matrices, n * n + 2 * n * k)


def _solve_scratch(a: Shape, b: Shape, out: Shape) -> float:
    """LAPACK works on float64 copies of the broadcast A and b."""
    matrices, n, _k = _solve_stack(a, b, out)
    return 8.0 * (matrices * n * n + size(out))


solve = defop(
    OpDef(
        name="solve",
        arity=2,
        batch=over_points(lambda a, b: F.solve(a, b), _solve_shape),
        forward=_solve_forward,
        vjp=_solve_vjp,
        sympy=_solve_sympy,
        infer_shape=_solve_shape,
        formula="solve(A, b) = A⁻¹b, b of shape (n,) or (..., n, k) as numpy >= 2; "
        "d/db = solve(Aᵀ, g), d/dA = -(d/db) xᵀ",
        convention="smooth where A is invertible; a singular matrix gives NaN",
        domains=(Domain(-1.0, 1.0), Domain(-1.0, 1.0)),
        cases=(
            Case(((3, 3), (3,))),
            Case(((3, 3), (3, 2))),
            Case(((2, 3, 3), (3,))),
            Case(((2, 3, 3), (2, 3, 2))),
            Case(((2, 1, 3, 3), (4, 3, 1))),
        ),
        nonfinite="singular matrix",
        family="linalg",
        sparsity=Sparsity(_solve_deps),
        cost=scaled(_solve_flops, LAPACK_FLOP, scratch=_solve_scratch, calls=_solve_calls),
        sample=well_conditioned,
    )
)
