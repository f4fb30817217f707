"""Hessians from nested tapes: the inner tape's gradient is recorded by the outer one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.derive.structural_zeros import keep_structural_zeros
from engine.notes import Note
from engine.ops.registry import F
from engine.tape import backprop
from engine.tape.gradient_tape import GradientTape, jacobian_rows
from engine.tape.structure import flatten, summed
from engine.tensor import Tensor


@dataclass
class HessianResult:
    """``blocks[i][j]`` has shape ``si.shape + sj.shape``; ``matrix`` is all of them flattened."""

    value: Tensor
    gradients: list[Tensor | None]
    blocks: list[list[np.ndarray | None]]
    matrix: np.ndarray
    notes: list[Note]


def hessian(
    fn: Callable[[], Any],
    sources: Sequence[Tensor],
    *,
    watch: Sequence[Tensor] = (),
    watch_accessed_variables: bool = True,
    output_gradients: Any = None,
    unconnected_gradients: str = "none",
    points: int | None = None,
    columns: Columns | None = None,
) -> HessianResult:
    """Second derivatives of the scalar ``fn()`` with respect to ``sources``.

    ``fn`` is re-run under two nested tapes; the outer one records the inner
    tape's reverse sweep, and its Jacobian of the gradient is the Hessian. Every
    gradient block is flattened into one vector on the outer tape, so the whole
    Hessian is one vectorised reverse sweep (``backprop.jacobian_rows``), however
    many sources there are. A block with no path gives zeros in ``matrix`` and None
    in ``blocks`` (zeros with ``unconnected_gradients="zero"``), as a block-by-block
    ``outer.jacobian`` would. With ``points`` (engine.derive.points), every value
    carries a leading axis of that many points and so does every block: each point's
    own Hessian. ``columns`` computes the Jacobian of the flattened gradient at one point
    instead of ``hessian_columns`` (engine.derive.coloured_hessian: from a few seeds).
    """
    sources = list(sources)
    rec = record_gradient(fn, sources, watch=watch,
                          watch_accessed_variables=watch_accessed_variables,
                          output_gradients=output_gradients,
                          unconnected_gradients=unconnected_gradients, points=points)
    batch = () if points is None else (points,)
    shapes = [s.shape[len(batch):] for s in sources]
    cols = (hessian_columns(rec, sources, batch) if batch or columns is None
            else columns(rec, sources))
    blocks, matrix = assemble(rec, sources, shapes, cols, unconnected_gradients, batch)
    return HessianResult(summed(rec.targets), rec.grads, blocks, matrix, list(rec.inner.notes))


def hessian_columns(rec: RecordedGradient, sources: list[Tensor], batch: tuple[int, ...] = ()
                    ) -> list[np.ndarray | None]:
    """The Jacobian of ``rec.flat`` by each source, in one vectorised sweep: ``batch + (rows
    of flat, elements of the source at one point)``, or None where there is no path.

    With a ``batch`` of B points, seed row i picks entry i of every point's gradient;
    points are independent, so the sum over them is each point's own row. Where a number
    is not finite, the entries the Hessian's pattern says are 0 are kept 0
    (engine.derive.structural_zeros).
    """
    if rec.flat is None:
        return [None] * len(sources)
    if not batch:
        k = rec.flat.size
        # the sweep's own arrays, not copies (``Tensor.numpy``): the tapes end here, and
        # a dense Hessian's column is megabytes
        cols = [None if c is None else np.asarray(c.value, dtype=np.float64).reshape(k, s.size)
                for c, s in zip(rec.outer.jacobian(rec.flat, sources), sources, strict=True)]
    else:
        (size,) = batch
        k = rec.flat.shape[1]
        picks = np.broadcast_to(np.eye(k)[:, None, :], (k, size, k))
        rows = jacobian_rows(rec.outer, rec.flat, sources, picks)  # rows[j]: (k, B) + sj.shape
        cols = [None if r is None else np.moveaxis(r.numpy().reshape(k, size, -1), 0, 1)
                for r in rows]
    keep_structural_zeros(rec, sources, cols, batch)
    return cols


def assemble(
    rec: RecordedGradient,
    sources: list[Tensor],
    shapes: list[tuple[int, ...]],
    cols: list[np.ndarray | None],
    unconnected_gradients: str,
    batch: tuple[int, ...] = (),
) -> tuple[list[list[np.ndarray | None]], np.ndarray]:
    """Hessian blocks and the whole matrix from the Jacobian of ``rec.flat``.

    ``cols[j]``: ``batch + (rows of flat, size of source j)``, or None (no path);
    ``shapes``: each source's shape (at one point, with a ``batch`` of points). A block
    is ``batch + si.shape + sj.shape``; one with no path is None and zeros in the matrix
    (zeros both ways with ``unconnected_gradients="zero"``), as ``outer.jacobian``
    block by block would give. A lone source's block, when it has a path, is a view of
    the matrix itself, not a copy (app.rendering then writes those numbers once).
    """
    sizes = [math.prod(shape) for shape in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    paths: dict[int, int] = {}  # gradient block -> bit mask of the sources it has a path from
    if rec.flat is not None and len(sources) == 1:
        # ``flat`` is the one gradient: its column is None exactly where it has no path
        paths = {0: 1} if cols[0] is not None else {}
    elif rec.flat is not None:
        masks = backprop.paths_from(rec.outer.raw_entries, sources,
                                    [rec.grads[i] for i in rec.live])
        paths = dict(zip(rec.live, masks, strict=True))
    only = cols[0] if len(sources) == 1 else None
    if only is not None and paths.get(0, 0) & 1 and only.dtype == np.float64:
        # One source with a path from itself: its block is the whole matrix (``flat`` is
        # its gradient alone), so the matrix is the block's own numbers, not a copy of
        # them into zeros (a dense n = 1000 Hessian: 8 MB less to allocate and write).
        return [[only.reshape(batch + shapes[0] + shapes[0])]], only
    matrix = np.zeros(batch + (offsets[-1], offsets[-1]))
    rows = rec.starts(sizes)
    # a source named again is the same tensor: its blocks are its first naming's, and its
    # rows and columns of the matrix copies of them (1000 namings of one scalar: 4 blocks
    # made, not a million)
    first: dict[int, int] = {}
    firsts = [first.setdefault(id(t), k) for k, t in enumerate(sources)]
    unique = sorted(first.values())
    made: dict[tuple[int, int], np.ndarray | None] = {}
    for i in unique:
        for j in unique:
            block = None
            col = cols[j]
            if col is not None and paths.get(i, 0) >> j & 1:
                block = col[..., rows[i] : rows[i] + sizes[i], :]
            if block is None and unconnected_gradients == "zero":
                block = np.zeros(batch + (sizes[i], sizes[j]))
            if block is not None:
                matrix[..., offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = block
                block = block.reshape(batch + shapes[i] + shapes[j])
            made[i, j] = block
    blocks = [[made[fi, fj] for fj in firsts] for fi in firsts]
    if len(unique) < len(sources):
        at = np.concatenate([np.arange(offsets[f], offsets[f] + sizes[f]) for f in firsts])
        matrix = matrix[..., at[:, None], at]
    return blocks, matrix


@dataclass
class RecordedGradient:
    """``fn`` recorded under nested tapes: the outer tape holds the inner gradient,
    flattened into one vector (``flat``) of the blocks that depend on a source (``live``)."""

    outer: GradientTape
    inner: GradientTape
    targets: list[Tensor]  # fn()'s targets, flattened (the Hessian is of their sum)
    grads: list[Tensor | None]
    live: list[int]
    flat: Tensor | None

    def starts(self, sizes: Sequence[int]) -> dict[int, int]:
        """Where each live source's gradient block starts in ``flat`` (``sizes``: each
        source's elements, at one point)."""
        ends = np.cumsum([0] + [sizes[i] for i in self.live])
        return {i: int(start) for i, start in zip(self.live, ends, strict=False)}


# The Jacobian of ``RecordedGradient.flat`` by each source at one point, as
# ``hessian_columns`` gives it: (rows of flat, elements of the source), or None.
Columns = Callable[[RecordedGradient, list[Tensor]], list[np.ndarray | None]]


def record_gradient(
    fn: Callable[[], Any],
    sources: list[Tensor],
    *,
    watch: Sequence[Tensor] = (),
    watch_accessed_variables: bool = True,
    output_gradients: Any = None,
    unconnected_gradients: str = "none",
    points: int | None = None,
) -> RecordedGradient:
    """The recording every Hessian starts from: the inner gradient of the scalar ``fn()``
    (a list of scalars is summed) as a computation of the outer, persistent tape.

    With ``points`` (engine.derive.points), values carry a leading axis of that many points:
    a target is a scalar per point, and ``flat`` keeps the axis, (points, n)."""
    with GradientTape(persistent=True, watch_accessed_variables=watch_accessed_variables) as outer:
        outer.watch(list(watch))
        with GradientTape(watch_accessed_variables=watch_accessed_variables) as inner:
            inner.watch(list(watch))
            target = fn()
        targets = flatten(target)
        scalar = {()} if points is None else {(), (points,)}
        for t in targets:
            if not isinstance(t, Tensor) or t.shape not in scalar:
                raise ValueError(
                    f"the Hessian needs a scalar target, got shape {list(np.shape(t))}"
                )
        grads = list(inner.gradient(target, sources, output_gradients, unconnected_gradients))
        live = [i for i, g in enumerate(grads) if g is not None and outer.is_watched(g)]
        flat = _flat([grads[i] for i in live], points)
    return RecordedGradient(outer, inner, targets, grads, live, flat)


def _flat(grads: list[Tensor], points: int | None) -> Tensor | None:
    """Every gradient block as one vector (per point), in engine ops (the outer tape
    records it)."""
    shape, axis = ([-1], 0) if points is None else ([points, -1], 1)
    flat_rank = len(shape)  # a gradient of that rank is flat already: no reshape recorded
    parts = [g if g.ndim == flat_rank else F.reshape(g, shape=shape) for g in grads]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else F.concat(*parts, axis=axis)
