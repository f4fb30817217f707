"""Hessians from nested tapes: the inner tape's gradient is recorded by the outer one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import backprop
from engine.notes import Note
from engine.ops.registry import F
from engine.structure import flatten
from engine.tape import GradientTape
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
) -> HessianResult:
    """Second derivatives of the scalar ``fn()`` with respect to ``sources``.

    ``fn`` is re-run under two nested tapes; the outer one records the inner
    tape's reverse sweep, and its Jacobian of the gradient is the Hessian. Every
    gradient block is flattened into one vector on the outer tape, so the whole
    Hessian is one vectorised reverse sweep (``backprop.jacobian_rows``), however
    many sources there are. A block with no path gives zeros in ``matrix`` and None
    in ``blocks`` (zeros with ``unconnected_gradients="zero"``), as a block-by-block
    ``outer.jacobian`` would.
    """
    sources = list(sources)
    rec = record_gradient(fn, sources, watch=watch,
                          watch_accessed_variables=watch_accessed_variables,
                          output_gradients=output_gradients,
                          unconnected_gradients=unconnected_gradients)
    outer, inner, target, grads, live, flat = (
        rec.outer, rec.inner, rec.target, rec.grads, rec.live, rec.flat
    )
    notes = list(inner.notes)
    sizes = [s.size for s in sources]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    matrix = np.zeros((offsets[-1], offsets[-1]))
    cols: list[Any] = [None] * len(sources)
    paths: dict[int, int] = {}  # gradient block -> bit mask of the sources it has a path from
    if flat is not None:
        cols = [None if c is None else c.numpy() for c in outer.jacobian(flat, sources)]
        masks = backprop.paths_from(outer.entries, sources, [grads[i] for i in live])
        paths = dict(zip(live, masks, strict=True))
    starts = np.cumsum([0] + [sizes[i] for i in live])
    rows = {i: int(start) for i, start in zip(live, starts, strict=False)}  # offset in flat
    blocks: list[list[np.ndarray | None]] = []
    for i, si in enumerate(sources):
        row: list[np.ndarray | None] = []
        for j, sj in enumerate(sources):
            block = None
            if cols[j] is not None and paths.get(i, 0) >> j & 1:
                block = cols[j][rows[i] : rows[i] + sizes[i]].reshape(si.shape + sj.shape)
            if block is None and unconnected_gradients == "zero":
                block = np.zeros(si.shape + sj.shape)
            if block is not None:
                matrix[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = block.reshape(
                    sizes[i], sizes[j]
                )
            row.append(block)
        blocks.append(row)
    value = target if isinstance(target, Tensor) else sum(target[1:], target[0])
    return HessianResult(value, list(grads), blocks, matrix, notes)


@dataclass
class RecordedGradient:
    """``fn`` recorded under nested tapes: the outer tape holds the inner gradient,
    flattened into one vector (``flat``) of the blocks that depend on a source (``live``)."""

    outer: GradientTape
    inner: GradientTape
    target: Any
    targets: list[Tensor]
    grads: list[Tensor | None]
    live: list[int]
    flat: Tensor | None


def record_gradient(
    fn: Callable[[], Any],
    sources: list[Tensor],
    *,
    watch: Sequence[Tensor] = (),
    watch_accessed_variables: bool = True,
    output_gradients: Any = None,
    unconnected_gradients: str = "none",
) -> RecordedGradient:
    """The recording every Hessian starts from: the inner gradient of the scalar ``fn()``
    (a list of scalars is summed) as a computation of the outer, persistent tape."""
    with GradientTape(persistent=True, watch_accessed_variables=watch_accessed_variables) as outer:
        outer.watch(list(watch))
        with GradientTape(watch_accessed_variables=watch_accessed_variables) as inner:
            inner.watch(list(watch))
            target = fn()
        targets = flatten(target)
        for t in targets:
            if not isinstance(t, Tensor) or t.ndim != 0:
                raise ValueError(
                    f"the Hessian needs a scalar target, got shape {list(np.shape(t))}"
                )
        grads = list(inner.gradient(target, sources, output_gradients, unconnected_gradients))
        live = [i for i, g in enumerate(grads) if g is not None and outer.is_watched(g)]
        flat = _flat([g for g in grads if g is not None and outer.is_watched(g)])
    return RecordedGradient(outer, inner, target, targets, grads, live, flat)


def _flat(grads: list[Tensor]) -> Tensor | None:
    """Every gradient block as one vector, in engine ops (the outer tape records it)."""
    parts = [F.reshape(g, shape=[-1]) for g in grads]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else F.concat(*parts, axis=0)
