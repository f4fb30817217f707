"""Linear algebra: matmul (numpy semantics, batched), inv, det, solve.

Every op works on stacks of matrices (leading batch dims, broadcast as numpy).
Rules may return cotangents of the broadcast batch shape; the reverse sweep sums
them down to each input's shape. A singular matrix gives NaN, never an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from engine.errors import ShapeError
from engine.ops.registry import Case, Domain, F, OpDef, defop
from engine.tensor import Tensor

Shape = tuple[int, ...]
LINEAR = "bilinear, no kinks"


def mT(x: Tensor) -> Tensor:
    """Swap the last two axes: the transpose of every matrix in a stack."""
    perm = list(range(x.ndim))
    perm[-2:] = perm[-1], perm[-2]
    return F.transpose(x, perm=perm)


def _batch(*shapes: Shape) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(
            f"batch dims {' and '.join(str(list(s)) for s in shapes)} do not broadcast"
        ) from None


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
    """Fill ``out`` per batch element (stacks share its batch dims); singular ones stay NaN."""
    for idx in np.ndindex(out.shape[: stacks[0].ndim - 2]):
        with contextlib.suppress(np.linalg.LinAlgError):
            out[idx] = fn(*(s[idx] for s in stacks))
    return out


def _smat(a: np.ndarray) -> sp.Matrix:
    return sp.Matrix(a.tolist())


# -------------------------------------------------------------------- matmul


def _matmul_shape(a: Shape, b: Shape) -> Shape:
    if not a or not b:
        raise ShapeError(f"matmul needs tensors of rank >= 1, got {list(a)} and {list(b)}")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ShapeError(f"matmul of {list(a)} and {list(b)}: inner dims {a2[-1]} != {b2[-2]}")
    rows = (a2[-2],) if len(a) > 1 else ()
    cols = (b2[-1],) if len(b) > 1 else ()
    return _batch(a2[:-2], b2[:-2]) + rows + cols


def _matmul_vjp(ans: Tensor, a: Tensor, b: Tensor):
    """d/da (a @ b) = g @ bᵀ, d/db = aᵀ @ g; a vector is a 1-row (a) or 1-column (b) matrix."""
    a2 = a if a.ndim > 1 else F.reshape(a, shape=[1, a.shape[0]])
    b2 = b if b.ndim > 1 else F.reshape(b, shape=[b.shape[0], 1])
    out2 = [*_batch(a2.shape[:-2], b2.shape[:-2]), a2.shape[-2], b2.shape[-1]]

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


matmul = defop(
    OpDef(
        name="matmul",
        arity=2,
        forward=np.matmul,
        vjp=_matmul_vjp,
        sympy=lambda a, b: np.asarray(np.matmul(a, b), dtype=object),
        infer_shape=_matmul_shape,
        formula="a @ b, numpy semantics (batched, 1-D promoted); d/da = g @ bᵀ, d/db = aᵀ @ g",
        convention=LINEAR,
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
    )
)


# ----------------------------------------------------------------------- inv


def _inv_shape(a: Shape) -> Shape:
    _square(a, "inv")
    return a


def _inv_forward(a: Any) -> Any:
    a = np.asarray(a, dtype=np.float64)
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:  # some matrix of the stack is singular
        return _each_matrix(np.linalg.inv, np.full(a.shape, np.nan), a)


def _inv_sympy(a: Any) -> Any:
    a = np.asarray(a, dtype=object)
    return _each_matrix(lambda m: np.array(_smat(m).inv().tolist(), dtype=object),
                        np.empty(a.shape, dtype=object), a)


inv = defop(
    OpDef(
        name="inv",
        arity=1,
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
        forward=lambda a: np.linalg.det(np.asarray(a, dtype=np.float64)),
        vjp=_det_vjp,
        sympy=_det_sympy,
        infer_shape=_det_shape,
        formula="det(A) per matrix; d/dA = g · det(A) · A⁻ᵀ",
        convention="polynomial; the gradient uses A⁻¹, so it is NaN where A is singular",
        domains=(Domain(-1.0, 1.0),),
        cases=(Case(((3, 3),)), Case(((2, 2, 2),)), Case(((1, 1),))),
        family="linalg",
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
    return (*_batch(a[:-2], b[:-2]), n, b[-1])


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
        x = _each_matrix(np.linalg.solve, np.full(b2.shape, np.nan), a2, b2)
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


solve = defop(
    OpDef(
        name="solve",
        arity=2,
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
        sample=well_conditioned,
    )
)
