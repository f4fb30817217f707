"""Index maps: which output elements of an op depend on which input elements.

An op's ``Sparsity`` rule (``OpDef.sparsity``) answers with one map per input, over
flat (C-order) element indices, computed from shapes and attrs alone, never values.
``engine.derive.pattern`` pushes index-set patterns through these maps. Two forms:

- ``Pairs(slot, elem)``: slot ``slot[t]`` depends on input element ``elem[t]``. A slot
  is an output element, or a term of a bilinear op (``Bilinear``).
- ``Groups(of_slot, members)``: slot ``o`` depends on every input element of group
  ``of_slot[o]`` (-1: of none); ``members`` pairs groups with their elements. Saves
  the slots x group-size pairs of ops where many outputs share one dense dependence
  (softmax, inv, matmul's rows and columns).

Everything here is numpy on index arrays, vectorised: no loop per element.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from engine.ops.axes import reduced_shape
from engine.ops.registry import Bilinear, OpDef, Sparsity

Shape = tuple[int, ...]


class Pairs(NamedTuple):
    """``slot[t]`` depends on input element ``elem[t]``."""

    slot: np.ndarray
    elem: np.ndarray


class Groups(NamedTuple):
    """Slot ``o`` depends on every member of group ``of_slot[o]`` (-1: none)."""

    of_slot: np.ndarray
    members: Pairs


IndexMap = Pairs | Groups
Maps = tuple[IndexMap | None, ...]


def flat_ids(shape: Shape) -> np.ndarray:
    """Each element's flat index, laid out in ``shape``."""
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def spread(shape: Shape, out_shape: Shape) -> np.ndarray:
    """For each element of ``out_shape``, the flat index of the element of ``shape`` numpy
    broadcasting reads there."""
    return np.broadcast_to(flat_ids(shape), out_shape).ravel()


def lines(shape: Shape, axis: int) -> np.ndarray:
    """Per element of ``shape``, the id of its line along ``axis`` (elements that differ
    only in that coordinate share a line)."""
    ax = axis % len(shape)
    rest = shape[:ax] + (1,) + shape[ax + 1 :]
    return spread(rest, shape)


def grouped(of_slot: np.ndarray, of_elem: np.ndarray) -> Groups:
    """Groups where input element ``e`` belongs to group ``of_elem[e]``."""
    return Groups(of_slot, Pairs(of_elem, np.arange(of_elem.size, dtype=np.int64)))


# ------------------------------------------------------------ generic rules
# Signature of every rule: (op, input shapes, output shape, attrs with defaults filled)
# -> one IndexMap (or None: no dependence) per input.


def elementwise(_op: OpDef, in_shapes: tuple[Shape, ...], out_shape: Shape,
                _attrs: Mapping[str, Any]) -> Maps:
    """Output element o reads the broadcast element of each input. The maps of all
    inputs are aligned (slot = output element), as a ``Bilinear`` rule needs."""
    out = np.arange(math.prod(out_shape), dtype=np.int64)
    return tuple(
        Pairs(out, out if s == out_shape else spread(s, out_shape)) for s in in_shapes
    )


def nothing(_op: OpDef, in_shapes: tuple[Shape, ...], _out_shape: Shape,
            _attrs: Mapping[str, Any]) -> Maps:
    """A zero derivative (sign, floor, stop_gradient): no output depends on any input."""
    return (None,) * len(in_shapes)


def dense(_op: OpDef, in_shapes: tuple[Shape, ...], out_shape: Shape,
          _attrs: Mapping[str, Any]) -> Maps:
    """Every output element on every input element: the fallback, always correct."""
    of_slot = np.zeros(math.prod(out_shape), dtype=np.int64)
    return tuple(grouped(of_slot, np.zeros(math.prod(s), dtype=np.int64)) for s in in_shapes)


def by_forward(op: OpDef, in_shapes: tuple[Shape, ...], _out_shape: Shape,
               attrs: Mapping[str, Any]) -> Maps:
    """Ops that only move elements (reshape, transpose, slice, concat, pad_slice...): run
    the op's own forward on element labels and read where each label lands. Labels are
    1-based and distinct across inputs, so a 0 (pad_slice's fill) means no input."""
    sizes = [math.prod(s) for s in in_shapes]
    starts = np.cumsum([1, *sizes[:-1]])
    labels = [
        np.arange(start, start + n, dtype=np.float64).reshape(s)
        for start, n, s in zip(starts, sizes, in_shapes, strict=True)
    ]
    moved = np.asarray(op.forward(*labels, **attrs)).ravel().astype(np.int64)
    maps: list[IndexMap | None] = []
    for start, n in zip(starts, sizes, strict=True):
        slot = np.flatnonzero((moved >= start) & (moved < start + n))
        maps.append(Pairs(slot, moved[slot] - start) if slot.size else None)
    return tuple(maps)


def reduce(_op: OpDef, in_shapes: tuple[Shape, ...], _out_shape: Shape,
           attrs: Mapping[str, Any]) -> Maps:
    """A reduction over ``axis``: each output element on every element it reduces."""
    shape = in_shapes[0]
    kept = reduced_shape(shape, attrs.get("axis"), True)
    return (Pairs(spread(kept, shape), np.arange(math.prod(shape), dtype=np.int64)),)


def along(shape: Shape, axis: int, *, exclusive: bool = False, reverse: bool = False,
          prefix: bool = True, max_pairs: int = 1 << 22) -> Pairs | Groups:
    """Slots = elements of ``shape``; each depends on the elements of its line along
    ``axis`` that come before it (a scan: ``prefix``), or on the whole line. A prefix
    map of more than ``max_pairs`` pairs is widened to the whole line (a superset)."""
    ax = axis % len(shape)
    n = shape[ax]
    ids = np.moveaxis(flat_ids(shape), ax, -1).reshape(-1, n)
    if not prefix or ids.shape[0] * n * (n + 1) // 2 > max_pairs:
        return grouped(lines(shape, ax), lines(shape, ax))
    k = 1 if exclusive else 0
    # (position, position it reads): below the diagonal for a forward scan, above it reversed
    at, reads = np.triu_indices(n, k) if reverse else np.tril_indices(n, -k)
    return Pairs(ids[:, at].ravel(), ids[:, reads].ravel())


def compose(m: IndexMap, elem_of: np.ndarray) -> IndexMap:
    """``m`` with its element indices relabelled through ``elem_of`` (e.g. a map over a
    broadcast shape, read back to the input that was broadcast)."""
    if isinstance(m, Pairs):
        return Pairs(m.slot, elem_of[m.elem])
    return Groups(m.of_slot, Pairs(m.members.slot, elem_of[m.members.elem]))


# ------------------------------------------------------- ready-made rules
SMOOTH = Sparsity(elementwise)  # sin, exp, pow...: each output element nonlinear in its inputs
LINEAR = Sparsity(elementwise, "linear")  # neg, add, and piecewise-linear abs, relu, maximum
ZERO = Sparsity(nothing, "linear")  # sign, floor, ceil, stop_gradient: a zero derivative
PRODUCT = Sparsity(elementwise, Bilinear(((0, 1),)))  # a * b: d²/da² = d²/db² = 0
QUOTIENT = Sparsity(elementwise, Bilinear(((0, 1), (1, 1))))  # a / b: d²/da² = 0
MOVES = Sparsity(by_forward, "linear")  # reshape, transpose, slice, concat...
LINEAR_REDUCTION = Sparsity(reduce, "linear")  # sum, mean, and max, min (piecewise linear)
REDUCTION = Sparsity(reduce)  # prod, logsumexp
DENSE = Sparsity(dense)  # the fallback for an op with no rule: always correct
