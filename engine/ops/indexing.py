"""Python's basic indexing as ops: ``strided_slice`` (``x[1:, None, ..., 0]``, what
``Tensor.__getitem__`` records) and its transpose ``strided_slice_grad``.

The ``index`` attr is a list of items: an int (drops its axis; negative from the end;
out of range is an error, as TensorFlow), null (a new axis), "..." (every axis not
named) or a slice "begin:end:step" (bounds clamp, as Python's). Basic indexing never
repeats an element, so the transpose writes the cotangent into zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from engine.errors import ShapeError
from engine.ops import dependence as rules
from engine.ops.attrs import Attr
from engine.ops.batching import batch_of, batched_shape
from engine.ops.costs import CHEAP_ELEMENTWISE
from engine.ops.index_attrs import coerce_index, python_index
from engine.ops.registry import Case, Domain, F, OpDef, Shape, defop
from engine.tensor import GETITEM, Tensor


def _np_index(shape: Shape, index: Any) -> tuple:
    """The numpy index, checked against ``shape``: a ShapeError for an int out of range or
    more indices than axes."""
    py = python_index(index)
    try:
        np.broadcast_to(np.empty((), dtype=np.bool_), shape)[py]  # zero strides: no memory
    except IndexError as e:
        raise ShapeError(f"index {list(index)} does not fit shape {list(shape)}: {e}") from None
    return py


def _with_batch(index: Any, nb: int) -> tuple:
    """The index with every one of ``nb`` leading batch axes taken whole."""
    return (":",) * nb + tuple(index)


def _strided_shape(in_shape: Shape, index: Any = None) -> Shape:
    py = _np_index(in_shape, index)
    return np.broadcast_to(np.empty((), dtype=np.bool_), in_shape)[py].shape


def _strided_forward(x: Any, index: Any = None) -> Any:
    arr = np.asarray(x)
    return np.array(arr[_np_index(arr.shape, index)])  # a copy: values stay immutable


def _strided_vjp(_ans: Tensor, x: Tensor, index: Any = None):
    """d/dx x[index] = zeros of x's shape with the cotangent written at index."""

    def vjp(g: Tensor) -> tuple[Tensor]:
        batch = batch_of(g, _ans.ndim)
        return (
            F.strided_slice_grad(
                g, shape=batched_shape(batch, x.shape), index=_with_batch(index, len(batch))
            ),
        )

    return vjp


def _strided_batch(xs: Any, _batched: Any, index: Any = None) -> Tensor:
    return F.strided_slice(xs[0], index=_with_batch(index, 1))


INDEX_DOC = (
    'index items: an int (drops the axis), null (new axis), "..." (the axes not '
    'named), "begin:end:step" (a slice, parts optional)'
)

strided_slice = defop(
    OpDef(
        name="strided_slice",
        arity=1,
        batch=_strided_batch,
        forward=_strided_forward,
        vjp=_strided_vjp,
        sympy=lambda x, index=None: np.asarray(
            np.asarray(x, dtype=object)[_np_index(np.shape(x), index)], dtype=object
        ),
        infer_shape=_strided_shape,
        formula="strided_slice(x, index) = x[index], Python's basic indexing (what x[...] "
        "records); the cotangent is written back (strided_slice_grad)",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(
            Case(((5,),), {"index": [-2]}),
            Case(((3, 4),), {"index": ["1:", "::-2"]}),
            Case(((2, 3, 4),), {"index": ["...", None, 1]}),
            Case(((3, 4),), {"index": [None, 0, "3:0:-1", None]}),
            Case(((),), {"index": [None]}),
        ),
        attrs={"index": Attr("index", required=True, doc=INDEX_DOC)},
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


def _grad_shape(in_shape: Shape, shape: Any = None, index: Any = None) -> Shape:
    target = tuple(shape)
    if any(n < 0 for n in target):
        raise ShapeError(f"invalid shape {list(target)}")
    hole = _strided_shape(target, index)
    if hole != in_shape:
        raise ShapeError(
            f"a tensor of shape {list(in_shape)} does not fit {list(target)} "
            f"at index {list(index)}, which has shape {list(hole)}"
        )
    return target


def _write(out: np.ndarray, x: Any, index: Any) -> np.ndarray:
    out[_np_index(out.shape, index)] = x
    return out


strided_slice_grad = defop(
    OpDef(
        name="strided_slice_grad",
        arity=1,
        batch=lambda xs, _b, shape=None, index=None: F.strided_slice_grad(
            xs[0], shape=[xs[0].shape[0], *shape], index=_with_batch(index, 1)
        ),
        forward=lambda x, shape=None, index=None: _write(np.zeros(tuple(shape)), x, index),
        vjp=lambda _ans, _x, shape=None, index=None: (
            lambda g: (F.strided_slice(g, index=_with_batch(index, g.ndim - len(shape))),)
        ),
        sympy=lambda x, shape=None, index=None: _write(
            np.full(tuple(shape), sp.Integer(0), dtype=object), x, index
        ),
        infer_shape=_grad_shape,
        formula="strided_slice_grad(x, shape, index) = zeros(shape) with x at [index], the "
        "transpose of strided_slice; the cotangent is indexed",
        convention="linear, no kinks",
        domains=(Domain(),),
        cases=(
            Case(((2, 2),), {"shape": [3, 4], "index": ["1:", "::-2"]}),
            Case(((2, 3, 1),), {"shape": [2, 3, 4], "index": ["...", None, 1]}),
        ),
        attrs={
            "shape": Attr("shape", required=True, doc="output shape"),
            "index": Attr("index", required=True, doc="as strided_slice's, on the output"),
        },
        family="shape",
        cost=CHEAP_ELEMENTWISE,
        sparsity=rules.MOVES,  # moves elements: labels run through the forward
    )
)


def _scalar_index(item: Any) -> Any:
    """A 0-d tensor holding an integer indexes as that integer, as in TF."""
    if isinstance(item, Tensor) and item.ndim == 0 and float(item.value).is_integer():
        return int(item.value)
    return item


def getitem(x: Tensor, key: Any) -> Tensor:
    """``x[key]`` recorded as a strided_slice (Tensor.__getitem__)."""
    items = [_scalar_index(k) for k in (key if isinstance(key, tuple) else (key,))]
    try:
        index = coerce_index(list(items))
    except ValueError:
        raise TypeError(
            f"only integers, slices, ..., None and tuples of them index a tensor, got {key!r}"
        ) from None
    try:
        _np_index(x.shape, index)
    except ShapeError as e:  # IndexError, as numpy: ``for row in x`` stops on it
        raise IndexError(e.detail) from None
    return F.strided_slice(x, index=index)


GETITEM.append(getitem)
