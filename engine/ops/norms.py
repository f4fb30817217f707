"""``norm``: tf.norm's vector norms (and the Frobenius norm over two axes).

``ord`` is "euclidean" (the default; over two axes, Frobenius), "fro" (two axes or
all), "inf" (the largest magnitude) or a positive p, ``(sum |x|^p)^(1/p)``; ``axis`` is
null (the whole tensor as one vector), an int, or two ints. The gradient is what
TensorFlow's composition gives: at a zero vector the euclidean norm's is NaN (its
sqrt's 0.5/0 times 2x = 0), p = 1's is sign(x) (0 at 0) and "inf" splits between
tied largest magnitudes, as reduce_max.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from engine.errors import AttrError
from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.axes import keep_reduced, normalize_axes, reduced_shape
from engine.ops.costs import LIBM, per_element
from engine.ops.index_attrs import coerce_ord
from engine.ops.registry import Case, Domain, F, OpDef, Shape, defop
from engine.ops.vjp import constant_like, value_of
from engine.tensor import Tensor


def _axes(ord: Any, axis: Any, ndim: int) -> tuple[int, ...]:
    """The axes reduced, after tf.norm's rules on which ord goes with which axis."""
    axes = normalize_axes(axis, ndim)
    if isinstance(axis, list | tuple) and len(axis) not in (1, 2):
        raise AttrError(f"axis must be null, an int or two ints, got {list(axis)}", field="axis")
    p = _power(ord)
    if _is_matrix(axis) and ord not in ("euclidean", "fro") and p not in (1.0, np.inf):
        raise AttrError(
            f"ord {ord!r} over two axes (a matrix norm) is not supported; use 'euclidean', "
            "'fro', 1 or 'inf'",
            field="ord",
        )
    if ord == "fro" and not (_is_matrix(axis) or axis is None):
        raise AttrError("ord 'fro' needs axis null or two axes", field="ord")
    return axes


def _is_matrix(axis: Any) -> bool:
    return isinstance(axis, list | tuple) and len(axis) == 2


def _matrix_axes(ord: Any, axis: Any, ndim: int) -> tuple[int, int] | None:
    """For tf.norm's matrix ord 1 (the largest column sum) or inf (the largest row sum)
    over ``axis = [rows, columns]``: (the axis summed, the axis maximised); else None."""
    if not _is_matrix(axis) or ord in ("euclidean", "fro"):
        return None
    rows, cols = (a % ndim for a in axis)
    return (rows, cols) if _power(ord) == 1 else (cols, rows)


def _power(ord: Any) -> float:
    try:
        ord = coerce_ord(ord)  # noqa: A001  # the library path passes ord unvalidated
    except ValueError as e:
        raise AttrError(f"attr 'ord' must be {e}", field="ord") from None
    return 2.0 if ord in ("euclidean", "fro") else float("inf") if ord == "inf" else float(ord)


def _norm_shape(
    in_shape: Shape, ord: Any = "euclidean", axis: Any = None, keepdims: bool = False
) -> Shape:
    _axes(ord, axis, len(in_shape))
    return reduced_shape(in_shape, axis, keepdims)


def _norm_forward(x: Any, ord: Any = "euclidean", axis: Any = None, keepdims: bool = False) -> Any:
    axes = _axes(ord, axis, np.ndim(x))
    p = _power(ord)
    a = np.abs(x)
    matrix = _matrix_axes(ord, axis, np.ndim(x))
    if matrix is not None:
        sums = np.sum(a, axis=matrix[0], keepdims=True)
        out = np.max(sums, axis=matrix[1], keepdims=True, initial=0.0)
        return np.reshape(out, reduced_shape(np.shape(x), axis, keepdims))
    if p == np.inf:
        return np.max(a, axis=axes, keepdims=keepdims, initial=0.0)
    if p == 1:
        return np.sum(a, axis=axes, keepdims=keepdims)
    if p == 2:
        return np.sqrt(np.sum(a * a, axis=axes, keepdims=keepdims))
    return np.sum(a**p, axis=axes, keepdims=keepdims) ** (1.0 / p)


def _matrix_share(x: Any, summed: int, maximised: int) -> np.ndarray:
    """Which lines hold the largest sum, each with its share of the gradient (ties split
    evenly, as reduce_max's), laid out to broadcast against x."""
    sums = np.sum(np.abs(x), axis=summed, keepdims=True)
    top = sums == np.max(sums, axis=maximised, keepdims=True)
    return top / np.sum(top, axis=maximised, keepdims=True)


def _norm_vjp(
    ans: Tensor, x: Tensor, ord: Any = "euclidean", axis: Any = None, keepdims: bool = False
):
    """d/dx ||x||_p = sign(x) |x|^(p-1) / ||x||^(p-1): x/||x|| for p = 2, sign(x) for 1,
    sign(x) on the tied largest magnitudes over their count for inf; a matrix 1 or inf
    norm: sign(x) on the tied largest lines over their count."""
    p = _power(ord)
    matrix = _matrix_axes(ord, axis, x.ndim)

    def vjp(g: Tensor) -> tuple[Tensor]:
        gk = keep_reduced(g, x.shape, axis, keepdims)
        nk = keep_reduced(ans, x.shape, axis, keepdims)
        if matrix is not None:
            share = _matrix_share(value_of(x), *matrix)
            return (gk * F.sign(x) * constant_like(g, share),)
        if p == 2:
            return (gk * x / nk,)
        if p == 1:
            return (gk * F.sign(x),)
        if p == np.inf:
            axes = normalize_axes(axis, x.ndim)
            top = np.abs(value_of(x)) == value_of(nk)
            share = top / np.sum(top, axis=axes, keepdims=True)
            return (gk * F.sign(x) * constant_like(g, share),)
        return (gk * F.sign(x) * F.abs(x) ** (p - 1.0) / nk ** (p - 1.0),)

    return vjp


def _norm_batch(
    xs: Any, _batched: Any, ord: Any = "euclidean", axis: Any = None, keepdims: bool = False
) -> Tensor:
    """Over points: the same norm over one point's axes, past the batch axis; a whole
    point (axis null) is flattened to one axis first (linear: the gradient is unchanged)."""
    x = xs[0]
    rank = x.ndim - 1
    if axis is not None:
        normalize_axes(axis, rank)  # range checked on one point's axes
        shifted = [a % rank + 1 for a in axis] if isinstance(axis, list | tuple) else None
        return F.norm(
            x, ord=ord, axis=axis % rank + 1 if shifted is None else shifted, keepdims=keepdims
        )
    _axes(ord, axis, rank)
    flat = F.reshape(x, shape=[x.shape[0], -1])
    out = F.norm(flat, ord="euclidean" if ord == "fro" else ord, axis=1)
    return F.reshape(out, shape=[x.shape[0], *([1] * rank)]) if keepdims else out


def _norm_sympy(x: Any, ord: Any = "euclidean", axis: Any = None, keepdims: bool = False) -> Any:
    axes = _axes(ord, axis, np.ndim(x))
    p = _power(ord)
    arr = np.asarray(x, dtype=object)
    matrix = _matrix_axes(ord, axis, arr.ndim)
    if matrix is not None:  # max over one axis of the sums of |x| over the other
        moved = np.moveaxis(arr, list(matrix), [arr.ndim - 2, arr.ndim - 1])
        out = np.empty(moved.shape[:-2], dtype=object)
        for i in np.ndindex(out.shape):
            block = moved[i]
            sums = [
                sum((sp.Abs(e) for e in block[:, j]), sp.Integer(0)) for j in range(block.shape[1])
            ]
            out[i] = sp.Max(*sums) if sums else sp.Integer(0)
        return out.reshape(reduced_shape(arr.shape, axis, keepdims))
    moved = np.moveaxis(arr, axes, range(arr.ndim - len(axes), arr.ndim))
    lead = moved.shape[: arr.ndim - len(axes)]
    groups = moved.reshape((*lead, -1))

    def one(v: Any) -> Any:
        if p == np.inf:
            return sp.Max(*[sp.Abs(e) for e in v]) if len(v) else sp.Integer(0)
        if p == 2:
            return sp.sqrt(sum((e**2 for e in v), sp.Integer(0)))
        total = sum((sp.Abs(e) ** sp.nsimplify(p) for e in v), sp.Integer(0))
        return total if p == 1 else total ** (1 / sp.nsimplify(p))

    out = np.empty(lead, dtype=object)
    for i in np.ndindex(lead):
        out[i] = one(groups[i])
    return out.reshape(reduced_shape(arr.shape, axis, keepdims))


def _at_zero(x: Any, ord: Any = "euclidean", axis: Any = None, keepdims: bool = False) -> Any:
    """Where the gradient is not the smooth formula's: a zero element (sign's kink) for
    p != 2, the elements of a zero vector (the NaN) for p = 2."""
    del keepdims  # the mask is per input element
    if _power(ord) == 2:  # the forward's sum of squares, zero where its norm is: over the
        # axes as given, so that points' axes (engine.derive.points) read the same
        a = np.asarray(x)
        whole = np.sum(a * a, axis=normalize_axes(axis, a.ndim), keepdims=True)
        return np.broadcast_to(whole == 0, a.shape).copy()
    return np.asarray(x) == 0


norm = defop(
    OpDef(
        name="norm",
        arity=1,
        batch=_norm_batch,
        forward=_norm_forward,
        vjp=_norm_vjp,
        sympy=_norm_sympy,
        infer_shape=_norm_shape,
        formula="norm(x, ord, axis, keepdims) = (sum |x|^p)^(1/p) over axis, as tf.norm (over "
        "[rows, columns], ord 1 and 'inf' are the largest column and row sums of |x|); "
        "d/dx = sign(x)·|x|^(p-1)/norm^(p-1) (x/norm for p = 2)",
        convention="at a zero vector the euclidean (p = 2) gradient is NaN, as TensorFlow's "
        "sqrt(sum(x²)); p = 1 gives sign(x), 0 at 0; 'inf' splits the gradient evenly "
        "between tied largest magnitudes, as reduce_max (a matrix 1 or 'inf' norm between "
        "tied largest column or row sums)",
        domains=(Domain(kinks=(0.0,), gap=0.2),),
        cases=(
            Case(((),)),
            Case(((3, 4),)),
            Case(((3, 4),), {"axis": 1}),
            Case(((3, 4),), {"ord": 1, "axis": 0, "keepdims": True}),
            Case(((2, 3, 4),), {"ord": "fro", "axis": [0, 2]}),
            Case(((5,),), {"ord": "inf"}),
            Case(((3, 4),), {"ord": 3, "axis": -1}),
            Case(((3, 4),), {"ord": 1, "axis": [0, 1]}),
            Case(((2, 3, 4),), {"ord": "inf", "axis": [2, 1], "keepdims": True}),
        ),
        attrs={
            "ord": Attr(
                "ord",
                "euclidean",
                doc="'euclidean', 'fro', 'inf' or a positive p; over two axes 'euclidean', "
                "'fro', 1 (largest column sum) or 'inf' (largest row sum)",
            ),
            "axis": Attr("axes", None, doc="null (all), an int, or [rows, columns] (a matrix)"),
            "keepdims": Attr("bool", False, doc="keep reduced axes with size 1"),
        },
        kink=_at_zero,
        nonfinite="overflow, or the NaN gradient of the euclidean norm at zero",
        family="reductions",
        cost=per_element(LIBM),
        sparsity=rules.REDUCTION,
    )
)
