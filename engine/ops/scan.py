"""Scans along an axis: ``cumsum``, ``cumprod`` and the linear recurrence ``linrec`` behind
cumprod's gradient.

``prod``'s gradient is a product of exclusive cumulative products, as
TensorFlow's ProdGrad, so it is right where elements are zero. TensorFlow's
own Cumprod gradient divides by x (wrong at zeros); here it is a division-free
linear recurrence instead, and ``linrec``'s VJP is again a ``linrec``, so the
family is closed under differentiation: every order is exact at zeros, in O(n).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from engine import budget
from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.batching import aligned, point_rank, shift_axis
from engine.ops.broadcasting import elementwise_shape
from engine.ops.costs import CHEAP, PYTHON_STEP, Cost, size
from engine.ops.registry import Bilinear, Case, Domain, F, OpDef, Sparsity, defop
from engine.tensor import Tensor

Shape = tuple[int, ...]


def _check_axis(shape: Shape, axis: int, name: str) -> int:
    ndim = len(shape)
    if ndim == 0:
        raise ShapeError(f"{name} needs a tensor of rank >= 1, got a scalar")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for shape {list(shape)}")
    return axis % ndim


def shift(t: Tensor, axis: int, by: int) -> Tensor:
    """Move ``t`` by ``by`` = +1 or -1 along ``axis``, filling with zero: t[k - by] at k.

    In engine ops (slice, then pad_slice), so it is recorded like any op; the rules
    of both scans shift their operand by one to pair each element with its neighbour.
    """
    ax = axis % t.ndim
    n = t.shape[ax]

    def cut(start: int, stop: int) -> tuple[list[int], list[int]]:
        # fresh lists: a tape keeps the attrs it recorded by reference
        begin, end = [0] * t.ndim, list(t.shape)
        begin[ax], end[ax] = start, stop
        return begin, end

    src, dst = ((0, n - 1), (1, n)) if by > 0 else ((1, n), (0, n - 1))
    begin, end = cut(*src)
    piece = F.slice(t, begin=begin, end=end, step=None)
    begin, end = cut(*dst)
    return F.pad_slice(piece, shape=list(t.shape), begin=begin, end=end, step=None)


def _scanned(scan: Callable[..., Any], empty: float) -> Callable[..., Any]:
    """``scan`` (np.cumsum, np.cumprod) along ``axis``, ``exclusive`` starting from the
    ``empty`` sum or product, ``reverse`` from the end; on float and on SymPy object
    arrays alike (the op's forward and its SymPy form)."""

    def forward(x: Any, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Any:
        x = np.moveaxis(np.asarray(x), axis, -1)
        if reverse:
            x = x[..., ::-1]
        y = scan(x, axis=-1)
        if exclusive:
            first = sp.Integer(int(empty)) if y.dtype == object else empty
            head = np.full(y.shape[:-1] + (min(1, y.shape[-1]),), first, dtype=y.dtype)
            y = np.concatenate([head, y[..., :-1]], axis=-1)
        if reverse:
            y = y[..., ::-1]
        return np.moveaxis(y, -1, axis)

    return forward


_cumprod = _scanned(np.cumprod, 1.0)


def _scan_shape(name: str) -> Callable[..., Shape]:
    def infer_shape(in_shape: Shape, axis: int = 0, **_: Any) -> Shape:
        _check_axis(in_shape, axis, name)
        return in_shape

    return infer_shape


def _cumprod_vjp(
    ans: Tensor, x: Tensor, axis: int = 0, exclusive: bool = False, reverse: bool = False
):
    """d/dx_i of y_k = prod_{j<=k} x_j is prod_{j<=k, j!=i} x_j: (prefix before i) x (a scan)."""
    toward = 1 if reverse else -1  # shift that brings the next element (in scan order) to i

    def vjp(g: Tensor) -> tuple[Tensor]:
        gax = shift_axis(axis, x.ndim, g.ndim - x.ndim)  # the axis in g's batched frame
        if exclusive:  # gx_i = y_i · sum_{k>i} g_k prod_{i<j<k} x_j
            scan = F.linrec(x, g, axis=gax, reverse=not reverse)
            return (ans * shift(scan, gax, toward),)
        # gx_i = (prod_{j<i} x_j) · sum_{k>=i} g_k prod_{i<j<=k} x_j
        before = F.cumprod(x, axis=axis, exclusive=True, reverse=reverse)
        return (before * F.linrec(shift(x, axis, toward), g, axis=gax, reverse=not reverse),)

    return vjp


def _scan_batch(name: str) -> Callable[..., Tensor]:
    def batch(xs: Any, _batched: Any, axis: int = 0, **flags: bool) -> Tensor:
        """Over points: the same scan along each point's axis, past the batch axis."""
        return getattr(F, name)(xs[0], axis=shift_axis(axis, xs[0].ndim - 1, 1), **flags)

    return batch


# what both scans take, and the shapes and flags every derivative test runs them on
_SCAN_ATTRS = {
    "axis": Attr("int", 0, doc="axis to scan along"),
    "exclusive": Attr("bool", False, doc="leave out the current element"),
    "reverse": Attr("bool", False, doc="scan from the end"),
}
_SCAN_CASES = (
    Case(((5,),)),
    Case(((3, 4),), {"axis": 1, "exclusive": True}),
    Case(((3, 4),), {"axis": 0, "reverse": True}),
    Case(((2, 4),), {"axis": -1, "exclusive": True, "reverse": True}),
)


def _scan_deps(_op: OpDef, in_shapes: Any, _out: Any, attrs: Any) -> rules.Maps:
    """Output k depends on the elements scanned up to k (before k if exclusive)."""
    return (rules.along(in_shapes[0], attrs["axis"], exclusive=attrs["exclusive"],
                        reverse=attrs["reverse"]),)


def _cumprod_cost(_ins: Any, out: Shape, attrs: Any) -> Cost:
    """numpy's scan forward; the VJP runs linrec, a Python step per position on the axis."""
    steps = out[attrs["axis"]] if out else 1
    return Cost(6 * CHEAP * size(out), 2 * (steps * PYTHON_STEP + 2 * CHEAP * size(out)))


def _scan_op(name: str, forward: Callable[..., Any], vjp: Any, formula: str, convention: str,
             domain: Domain, sparsity: Sparsity, cost: Callable[..., Cost]) -> OpDef:
    """A scan's row of the op table: what both scans share, and what is each one's own."""
    return defop(OpDef(
        name=name, arity=1, batch=_scan_batch(name), forward=forward, vjp=vjp, sympy=forward,
        infer_shape=_scan_shape(name), formula=formula, convention=convention,
        domains=(domain,), cases=_SCAN_CASES, attrs=_SCAN_ATTRS, family="scan",
        sparsity=sparsity, cost=cost,
    ))


cumprod = _scan_op(
    "cumprod", _cumprod, _cumprod_vjp,
    formula="cumprod(x)_k = prod_{j<=k} x_j along axis (j<k if exclusive; from the end if "
    "reverse); d/dx_i = product of the others, by a linear recurrence (no division)",
    convention="polynomial, no kinks; exact where elements are zero",
    domain=Domain(-1.5, 1.5), sparsity=Sparsity(_scan_deps), cost=_cumprod_cost,
)


# -------------------------------------------------------------------- cumsum


def _cumsum_vjp(
    _ans: Tensor, x: Tensor, axis: int = 0, exclusive: bool = False, reverse: bool = False
):
    """Linear: its transpose is the same scan run the other way, as TF's CumsumGrad."""

    def vjp(g: Tensor) -> tuple[Tensor]:
        gax = shift_axis(axis, x.ndim, g.ndim - x.ndim)  # the axis in g's batched frame
        return (F.cumsum(g, axis=gax, exclusive=exclusive, reverse=not reverse),)

    return vjp


def _cumsum_cost(_ins: Any, out: Shape, _attrs: Any) -> Cost:
    """cumprod's scan forward (numpy's, moved to the last axis and back), and the same
    scan back for the VJP."""
    return Cost(6 * CHEAP * size(out), 6 * CHEAP * size(out))


_cumsum = _scanned(np.cumsum, 0.0)


cumsum = _scan_op(
    "cumsum", _cumsum, _cumsum_vjp,
    formula="cumsum(x)_k = sum_{j<=k} x_j along axis (j<k if exclusive; from the end if "
    "reverse); its VJP is the same scan from the other end",
    convention="linear, no kinks",
    domain=Domain(-3.0, 3.0), sparsity=Sparsity(_scan_deps, second="linear"),
    cost=_cumsum_cost,
)


# -------------------------------------------------------------------- linrec


def _linrec(a: Any, b: Any, axis: int = 0, reverse: bool = False) -> Any:
    """s_k = a_k·s_{k-1} + b_k (s_{-1} = 0); reverse: s_k = a_k·s_{k+1} + b_k (s_n = 0)."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    dtype = object if object in (a.dtype, b.dtype) else np.float64
    a, b = np.moveaxis(a, axis, 0), np.moveaxis(b, axis, 0)
    s = np.empty(b.shape, dtype=dtype)
    n = b.shape[0]
    for i, k in enumerate(range(n - 1, -1, -1) if reverse else range(n)):
        if i % 1024 == 1023:  # a long scan is a Python loop: honour the time budget
            budget.check("linrec")
        s[k] = b[k] if i == 0 else a[k] * s[k + 1 if reverse else k - 1] + b[k]
    return np.moveaxis(s, 0, axis)


def _linrec_shape(a_shape: Shape, b_shape: Shape, axis: int = 0, **_: Any) -> Shape:
    shape = elementwise_shape(a_shape, b_shape)
    _check_axis(shape, axis, "linrec")
    return shape


def _linrec_vjp(ans: Tensor, a: Tensor, _b: Tensor, axis: int = 0, reverse: bool = False):
    """The adjoint runs the same recurrence the other way: lam = linrec(a shifted, g);
    d/db = lam, d/da = lam · s shifted."""
    back = -1 if reverse else 1  # s_{k-1} (or s_{k+1}) moved to position k
    if a.shape != ans.shape:  # shift a along the scanned axis at full size
        a = F.broadcast_to(a, shape=list(ans.shape))

    def vjp(g: Tensor, needs: tuple[bool, bool] = (True, True)) -> tuple[Tensor | None, ...]:
        gax = shift_axis(axis, ans.ndim, g.ndim - ans.ndim)  # the axis in g's batched frame
        lam = F.linrec(shift(a, axis, -back), g, axis=gax, reverse=not reverse)
        return lam * shift(ans, axis, back) if needs[0] else None, lam

    return vjp


def _linrec_batch(xs: Any, batched: Any, axis: int = 0, reverse: bool = False) -> Tensor:
    """Over points: a and b broadcast as one point's would (size-1 axes after the batch
    axis), and the axis of the broadcast point moved past the batch axis."""
    rank = max(point_rank(x, b) for x, b in zip(xs, batched, strict=True))
    a, b = aligned(xs, batched)
    return F.linrec(a, b, axis=shift_axis(axis, rank, 1), reverse=reverse)


def _linrec_deps(_op: OpDef, in_shapes: Any, out_shape: Any, attrs: Any) -> rules.Maps:
    """s_k depends on a and b up to k in scan order, read back through broadcasting."""
    scan = rules.along(out_shape, attrs["axis"], reverse=attrs["reverse"])
    return tuple(rules.compose(scan, rules.spread(s, out_shape)) for s in in_shapes)


def _linrec_cost(_ins: Any, out: Shape, attrs: Any) -> Cost:
    """A Python step per position along the axis (the adjoint scans the same way)."""
    steps = out[attrs["axis"]] if out else 1
    work = steps * PYTHON_STEP + 2 * CHEAP * size(out)
    return Cost(work, 2 * work)


linrec = defop(
    OpDef(
        name="linrec",
        arity=2,
        batch=_linrec_batch,
        forward=_linrec,
        vjp=_linrec_vjp,
        sympy=_linrec,
        infer_shape=_linrec_shape,
        formula="linrec(a, b): s_k = a_k·s_{k-1} + b_k along axis (reverse: a_k·s_{k+1} + b_k); "
        "d/db = the adjoint recurrence lam, d/da = lam · s_{k-1}",
        convention="polynomial, no kinks",
        domains=(Domain(-1.5, 1.5), Domain()),
        cases=(
            Case(((5,), (5,))),
            Case(((3, 4), (3, 4)), {"axis": 1, "reverse": True}),
            Case(((3, 1), (3, 4)), {"axis": 0}),
        ),
        attrs={
            "axis": Attr("int", 0, doc="axis to scan along"),
            "reverse": Attr("bool", False, doc="run from the end"),
        },
        family="scan",
        sparsity=Sparsity(_linrec_deps, Bilinear(((0, 0), (0, 1)))),  # linear in b
        cost=_linrec_cost,
    )
)
