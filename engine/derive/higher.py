"""Every derivative of a scalar up to order k, from k nested tapes built in a loop.

TensorFlow's recipe for a second derivative is two nested ``GradientTape``s: the
inner tape's reverse sweep runs engine ops, which the outer tape records, so the
gradient can be differentiated again. Order k needs k tapes. They are opened in a
loop around one forward run, then closed innermost first: each closed tape
differentiates the previous order's derivatives while the tapes still open record
that sweep. No recursion, so the order is bounded by the caller's limit only.

Mixed partials commute for the functions the op table differentiates, so each
order is swept once per *multiset* of source indices (i1 <= i2 <= ... <= ij), that
is C(n + j - 1, j) entries instead of n**j, and the full symmetric tensor is filled
from them. A derivative with no path to the sources (None on the tape) is 0 here:
a dense tensor has no room for None; the first order's notes say why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

import numpy as np

from engine import budget
from engine.notes import Note
from engine.tape.gradient_tape import GradientTape
from engine.tape.structure import summed
from engine.tensor import Tensor

Index = tuple[int, ...]  # a nondecreasing tuple of source positions


@dataclass
class HigherResult:
    """``derivatives[j - 1]`` is the j-th derivative tensor, of shape ``(n,) * j``."""

    value: Tensor  # the (summed) target
    derivatives: list[np.ndarray]
    gradients: list[Tensor | None]  # the first order as the tape gave it: None for no path
    notes: list[Note]
    sweeps: int  # reverse sweeps run, over every order


def derivatives_up_to(
    fn: Callable[[], Any],
    sources: Sequence[Tensor],
    order: int,
    *,
    watch: Sequence[Tensor] = (),
    watch_accessed_variables: bool = True,
    output_gradients: Any = None,
) -> HigherResult:
    """All derivatives of the scalar ``fn()`` with respect to scalar ``sources``, orders 1..k.

    ``fn`` runs once, under ``order`` nested persistent tapes; a list it returns is
    summed (weighted by ``output_gradients``), as ``tape.gradient`` does.
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, got {order}")
    sources = list(sources)
    for s in sources:
        if s.ndim != 0:
            raise ValueError(f"sources must be scalars, got shape {list(s.shape)}")
    n = len(sources)
    opened: list[GradientTape] = []  # outermost first; the innermost is closed first
    try:
        for _ in range(order):
            tape = GradientTape(persistent=True, watch_accessed_variables=watch_accessed_variables)
            tape.__enter__()
            opened.append(tape)
            tape.watch(list(watch))
        target = fn()
        targets = list(target) if isinstance(target, list | tuple) else [target]
        for t in targets:
            if t.ndim != 0:
                raise ValueError(f"the target must be a scalar, got shape {list(t.shape)}")
        first = _close(opened)
        gradients = list(first.gradient(targets, sources, output_gradients))
        notes = list(first.notes)
        frontier: dict[Index, Tensor] = {
            (i,): g for i, g in enumerate(gradients) if g is not None
        }
        found: list[dict[Index, Any]] = [{k: g.value for k, g in frontier.items()}]
        sweeps = 1
        for level in range(2, order + 1):
            tape = _close(opened)
            frontier, sweeps = _next_order(tape, frontier, sources, level, sweeps)
            found.append({k: g.value for k, g in frontier.items()})
    finally:
        while opened:
            _close(opened)
    derivatives = [_symmetric(entries, n, j) for j, entries in enumerate(found, start=1)]
    return HigherResult(summed(targets), derivatives, gradients, notes, sweeps)


def sweeps_needed(n: int, order: int) -> int:
    """Reverse sweeps ``derivatives_up_to`` runs: one per multiset of order - 1 indices."""
    return sum(comb(n + j - 2, j - 1) for j in range(1, order + 1)) if n else 1


def entries(n: int, order: int) -> int:
    """Numbers in the answer: n + n**2 + ... + n**order (1 per order for one source)."""
    return sum(max(n, 1) ** j for j in range(1, order + 1))


def _close(opened: list[GradientTape]) -> GradientTape:
    """Stop the innermost open tape, so its own sweep is recorded only by the outer ones."""
    tape = opened.pop()
    tape.__exit__(None, None, None)
    return tape


def _next_order(
    tape: GradientTape,
    frontier: dict[Index, Tensor],
    sources: list[Tensor],
    level: int,
    sweeps: int,
) -> tuple[dict[Index, Tensor], int]:
    """Differentiate each (level - 1)-th derivative by the sources from its last index on."""
    out: dict[Index, Tensor] = {}
    for idx, d in frontier.items():
        budget.check(f"the order-{level} derivatives")
        last = idx[-1]
        grads = tape.gradient(d, sources[last:])
        sweeps += 1
        for j, g in enumerate(grads, start=last):
            if g is not None:
                out[(*idx, j)] = g
    return out, sweeps


def _symmetric(found: dict[Index, Any], n: int, order: int) -> np.ndarray:
    """The full tensor of shape ``(n,) * order`` from its nondecreasing-index entries."""
    compact = np.zeros((n,) * order)
    for idx, v in found.items():
        compact[idx] = v
    if order == 1 or n <= 1:
        return compact
    grid = np.indices((n,) * order, dtype=np.intp).reshape(order, -1)
    grid.sort(axis=0)  # every entry reads the value at its sorted (nondecreasing) index
    return compact[tuple(grid)].reshape((n,) * order)
