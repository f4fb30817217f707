"""Hessians from nested tapes: the inner tape's gradient is recorded by the outer one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.notes import Note
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
    tape's reverse sweep, and its Jacobian of the gradient is the Hessian.
    A source with no path gives a zero block in ``matrix`` and None in ``blocks``
    (zeros with ``unconnected_gradients="zero"``).
    """
    sources = list(sources)
    with GradientTape(persistent=True, watch_accessed_variables=watch_accessed_variables) as outer:
        outer.watch(list(watch))
        with GradientTape(watch_accessed_variables=watch_accessed_variables) as inner:
            inner.watch(list(watch))
            target = fn()
        for t in target if isinstance(target, list | tuple) else [target]:
            if t.ndim != 0:
                raise ValueError(f"the Hessian needs a scalar target, got shape {list(t.shape)}")
        grads = inner.gradient(target, sources, output_gradients, unconnected_gradients)
    notes = list(inner.notes)
    sizes = [s.size for s in sources]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    matrix = np.zeros((offsets[-1], offsets[-1]))
    blocks: list[list[np.ndarray | None]] = []
    for i, g in enumerate(grads):
        row: list[np.ndarray | None] = []
        cols = outer.jacobian(g, sources, unconnected_gradients) if g is not None else None
        for j, s in enumerate(sources):
            block = None if cols is None or cols[j] is None else cols[j].numpy()
            if block is None and unconnected_gradients == "zero":
                block = np.zeros(sources[i].shape + s.shape)
            if block is not None:
                matrix[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]] = block.reshape(
                    sizes[i], sizes[j]
                )
            row.append(block)
        blocks.append(row)
    value = target if isinstance(target, Tensor) else sum(target[1:], target[0])
    return HessianResult(value, list(grads), blocks, matrix, notes)
