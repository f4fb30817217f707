"""``GradientTape.batch_jacobian``: per-example Jacobians, as TF's.

``target[i]`` must depend on ``source[i]`` only, so the gradient of column ``k`` of the
flattened target, summed over the batch, is row ``k`` of every example's Jacobian at
once: one seed per element of a target *row*, not of the whole target. Those seeds go
through the vectorised reverse sweep (``backprop.jacobian_rows``) in chunks, so the
seeds held at once stay below ``backprop.CHUNK_ELEMENTS`` elements however large the
batch; the answer is made of engine ops, so an outer tape records it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.ops.registry import F
from engine.tape import backprop
from engine.tape.arguments import rows_per_sweep
from engine.tape.collector import collector_paused
from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.tape.gradient_tape import GradientTape


def _check_shapes(target: Tensor, source: Tensor) -> None:
    """TF's checks, in TF's order and words: ranks first, then the batch dimension."""
    for t in (target, source):
        if not isinstance(t, Tensor):
            raise ValueError(f"batch_jacobian takes tensors, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"Shape {t.shape} must have rank at least 2")
    if target.shape[0] != source.shape[0]:
        raise ValueError(
            f"Need first dimension of target shape ({target.shape}) and source shape "
            f"({source.shape}) to match."
        )


def batch_jacobian(
    tape: GradientTape,
    target: Tensor,
    source: Tensor,
    parallel_iterations: int | None,
    experimental_use_pfor: bool,
) -> Tensor:
    """Shape ``target.shape + source.shape[1:]``; zeros where ``target`` does not depend on
    ``source`` (TF returns zeros then, whatever ``unconnected_gradients`` says)."""
    per_sweep = rows_per_sweep(parallel_iterations, experimental_use_pfor)
    _check_shapes(target, source)
    if not experimental_use_pfor and not tape._persistent and tape._log is not None:
        raise RuntimeError(
            "GradientTape must be created with persistent=True to compute the batch_jacobian "
            "with eager execution enabled and with experimental_use_pfor set to False."
        )
    log = tape._begin_use()
    batch = target.shape[0]
    row = target.size // batch if batch else int(np.prod(target.shape[1:]))
    out_shape = [*target.shape, *source.shape[1:]]
    step = max(1, backprop.CHUNK_ELEMENTS // max(1, target.size))
    step = min(step, per_sweep or step)
    parts: list[Tensor] = []
    connected = False
    with collector_paused:
        for start in range(0, row if batch else 0, step):
            k = min(step, row - start)
            seeds = np.zeros((k, batch, row))
            seeds[np.arange(k), :, start + np.arange(k)] = 1.0
            seeds = seeds.reshape((k, *target.shape))
            (grads,) = backprop.jacobian_rows(
                log.entries,
                target,
                [source],
                log.watched,
                log.leaves,
                seeds=seeds,
                rows_per_sweep=per_sweep,
            )
            if grads is not None:
                connected = True
                parts.append(grads)
            else:
                parts.append(Tensor(np.zeros((k, *source.shape))))
    tape._end_use()
    if not connected:
        return Tensor(np.zeros(out_shape))
    whole = parts[0] if len(parts) == 1 else F.concat(*parts, axis=0)  # (row, batch, x...)
    per_example = F.reshape(whole, shape=[row, batch, int(np.prod(source.shape[1:]))])
    stacked = F.transpose(per_example, perm=[1, 0, 2])  # (batch, row, x...)
    return F.reshape(stacked, shape=out_shape)
