"""Tall Jacobians with one seed per source element: the reverse sweep, transposed.

A Jacobian by reverse mode carries one seed per *target* element. When the target
has more elements than the sources together, JAX switches to forward mode (``jacfwd``).
The op table holds vector-Jacobian products only, but a VJP is linear in its
cotangent ``u``: ``u -> J^T u`` has the Jacobian ``J^T``. So one reverse sweep seeded
with a watched ``u`` is recorded on a fresh tape, and the vectorised Jacobian of its
result with respect to ``u`` carries one seed per *source* element (forward mode
from two reverse passes, the transpose trick). Every step is an engine op, so tapes
further out record it (higher orders work as for the direct sweep).
"""

from __future__ import annotations

from collections.abc import Collection, Container, Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.ops.registry import F
from engine.tape import backprop
from engine.tape.gradient_tape import GradientTape, jacobian_rows
from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.tape.entries import RawEntry

# The transposed route sweeps the recorded backward pass, about twice the forward's
# work, so it pays once the target has this many times more elements than the sources.
TALL_RATIO = 2


def is_tall(target: Tensor, sources: Sequence[Tensor]) -> bool:
    """Whether ``jacobian_columns`` is the cheaper route for this Jacobian."""
    return target.size > TALL_RATIO * max(1, sum(s.size for s in sources))


def jacobian_columns(
    entries: Sequence[RawEntry],
    target: Tensor,
    sources: Sequence[Tensor],
    watched: Container[Tensor],
    leaves: Collection[Tensor] | None = None,
) -> list[Tensor | None]:
    """``backprop.jacobian_rows``'s answer (``target.shape + source.shape`` per source,
    None where no path), computed with one seed per source element."""
    u = Tensor(np.zeros(target.shape), name="cotangent")
    with GradientTape(persistent=True, watch_accessed_variables=False) as transpose:
        transpose.watch(u)
        grads = backprop.sweep(entries, [target], [u], sources, watched, leaves=leaves)
        linear = [g for g in grads if g is not None and transpose.is_watched(g)]
        parts = [F.reshape(g, shape=[-1]) for g in linear]
        flat = None if not parts else parts[0] if len(parts) == 1 else F.concat(*parts, axis=0)
    if flat is None:  # no source depends on u: every block is "no path" or zero
        return [None if g is None else _zeros(target, s) for g, s in zip(grads, sources,
                                                                          strict=True)]
    (jt,) = jacobian_rows(transpose, flat, [u])
    out: list[Tensor | None] = []
    start = 0
    for g, s in zip(grads, sources, strict=True):
        if g is None:
            out.append(None)
            continue
        if not transpose.is_watched(g):  # a cotangent that ignores u: the block is zero
            out.append(_zeros(target, s))
            continue
        rows = F.slice(jt, begin=[start], end=[start + s.size])  # (s.size,) + target.shape
        start += s.size
        block = F.reshape(rows, shape=[*s.shape, *target.shape])
        perm = [*range(s.ndim, s.ndim + target.ndim), *range(s.ndim)]
        out.append(F.transpose(block, perm=perm) if s.ndim and target.ndim else
                   F.reshape(block, shape=[*target.shape, *s.shape]))
    return out


def _zeros(target: Tensor, source: Tensor) -> Tensor:
    return Tensor(np.zeros(target.shape + source.shape))
