"""The reverse sweep over a tape's entries (Autodidax's ``eqns[::-1]``).

Recording order is a topological order, so the sweep needs no sort and no
recursion. Cotangents accumulate with add-if-present, only along entries that
lie on a path from a source; "no path" stays ``None``, distinct from zero.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine import budget
from engine.broadcast import unbroadcast
from engine.ops.registry import F
from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.tape import RawEntry as Entry

CHECK_EVERY = 1024  # entries between deadline checks


def reachable(entries: Sequence[Entry], source_ids: set[int]) -> tuple[list[Entry], set[int]]:
    """Entries whose output depends on a source, and the ids of every such tensor."""
    reach = set(source_ids)
    relevant = []
    for e in entries:
        _op, inputs, output, _attrs = e
        for x in inputs:
            if id(x) in reach:
                reach.add(id(output))
                relevant.append(e)
                break
    return relevant, reach


def plan_sweep(
    entries: Sequence[Entry],
    source_ids: set[int],
    watched: dict[int, Tensor],
    leaves: Collection[int] | None,
) -> tuple[list[Entry], Container[int]]:
    """``reachable``, without its pass over the tape when every watched leaf is a source.

    A tape records an entry only when it reads a watched tensor, and every watched
    tensor descends from a watched leaf (``leaves``: the tape's watched leaf ids);
    so when all of them are sources, every entry is on a path from one and every
    watched tensor is reached. The usual case: ``gradient(loss, every variable)``.
    """
    if leaves is not None and all(i in source_ids for i in leaves):
        return list(entries), watched
    return reachable(entries, source_ids)


def paths_from(
    entries: Sequence[Entry], sources: Sequence[Tensor], targets: Sequence[Tensor]
) -> list[int]:
    """Per target, a bit mask of the sources it has a differentiable path from (bit j:
    ``sources[j]``): which blocks of a stacked Jacobian are "no path" rather than zero.
    One pass; entries of non-differentiable ops (no vjp) carry no path, as in ``sweep``."""
    mask = {id(s): 1 << j for j, s in enumerate(sources)}
    for op, inputs, output, _attrs in entries:
        if op.vjp is None:
            continue
        bits = 0
        for x in inputs:
            bits |= mask.get(id(x), 0)
        if bits:
            mask[id(output)] = mask.get(id(output), 0) | bits
    return [mask.get(id(t), 0) for t in targets]


ONE_INPUT_NEEDED = (True,)


def sweep(
    entries: Sequence[Entry],
    targets: Sequence[Tensor],
    seeds: Sequence[Tensor],
    sources: Sequence[Tensor],
    watched: dict[int, Tensor],
    grads_seen: dict[int, Tensor] | None = None,
    plan: tuple[Sequence[Entry], Container[int]] | None = None,
    leaves: Collection[int] | None = None,
    batch: tuple[int, ...] = (),
) -> list[Tensor | None]:
    """Cotangent of every source for the seeded targets; None where no path exists.

    ``plan`` is ``plan_sweep``'s answer when the caller already has it; ``leaves``,
    the tape's watched leaf ids, lets ``plan_sweep`` skip its pass.
    ``grads_seen``, when given, receives the cotangent reaching each entry's output
    (the trace shows it). ``batch``: leading dims every seed carries in front of its
    target's shape (many cotangents in one sweep); every cotangent then has shape
    ``batch + tensor.shape`` and each source's answer is ``batch + source.shape``.
    """
    source_ids = {id(s) for s in sources if id(s) in watched}
    if not source_ids:
        return [None] * len(sources)
    relevant, reach = plan or plan_sweep(entries, source_ids, watched, leaves)
    cts: dict[int, Tensor] = {}
    for t, seed in zip(targets, seeds, strict=True):
        if id(t) in reach:
            cts[id(t)] = seed if id(t) not in cts else cts[id(t)] + seed
    keep = source_ids if grads_seen is None else reach
    check = budget.check
    every = 1 if batch else CHECK_EVERY  # a batched entry is costly: check the budget on each
    for n, (op, inputs, output, attrs) in enumerate(reversed(relevant)):
        if not n % every:
            check("reverse sweep")
        out_id = id(output)
        g = cts.get(out_id) if out_id in keep else cts.pop(out_id, None)
        if g is None or op.vjp is None:
            continue
        if grads_seen is not None:
            grads_seen[out_id] = g
        back = op.vjp(output, *inputs, **attrs) if attrs else op.vjp(output, *inputs)
        if len(inputs) == 1:
            # Most entries: the only input is on a path from a source (that is why the
            # entry is relevant), so its cotangent is needed and no mask is built.
            needs: tuple[bool, ...] = ONE_INPUT_NEEDED
            grads = back(g)
        else:
            # Tell the rule which inputs are on no path from a source, so it can skip
            # their cotangents (d/dX of X @ W for a constant X, d/db of a ** 2).
            needs = (
                (id(inputs[0]) in reach, id(inputs[1]) in reach)
                if len(inputs) == 2
                else tuple([id(x) in reach for x in inputs])
            )
            grads = back(g, needs)
        assert len(grads) == len(inputs), f"{op.name}: one cotangent per input"
        for x, gx, needed in zip(inputs, grads, needs):  # noqa: B905 - lengths asserted
            if gx is None or not needed:
                continue
            if gx.value.shape != x.value.shape and (
                not batch or gx.value.shape != batch + x.value.shape
            ):
                gx = unbroadcast(gx, x.shape, batch)
            key = id(x)
            prev = cts.get(key)
            cts[key] = gx if prev is None else prev + gx
    if grads_seen is not None:
        for s in sources:
            if id(s) in cts:
                grads_seen[id(s)] = cts[id(s)]
    return [cts.get(id(s)) if id(s) in source_ids else None for s in sources]


# Elements of one batched cotangent tensor a vectorised sweep may hold at once (8 bytes
# each): rows of the seed are swept in chunks so that chunk x largest tensor stays below.
CHUNK_ELEMENTS = 1 << 23


def jacobian_rows(
    entries: Sequence[Entry],
    target: Tensor,
    sources: Sequence[Tensor],
    watched: dict[int, Tensor],
    leaves: Collection[int] | None = None,
    chunk_elements: int | None = None,
    seeds: np.ndarray | None = None,
) -> list[Tensor | None]:
    """Full Jacobian of ``target`` per source, of shape ``target.shape + source.shape``.

    One vectorised reverse sweep: the seed is the identity over ``target``'s elements,
    carried as a leading batch axis of every cotangent (so all rules run once, not once
    per element). ``seeds``, of shape ``(k,) + target.shape``, replaces the identity by
    ``k`` chosen rows (a compressed Jacobian, or one row per point of a batch); each
    result is then ``(k,) + source.shape``. Rows go in chunks when a batch of the
    largest tensor would exceed ``chunk_elements`` (default ``CHUNK_ELEMENTS``). The
    result is made of engine ops, so outer tapes record it (Hessians, third order).
    When ``target`` has more elements than all sources together a forward (JVP) sweep
    would be cheaper; the op table has no JVP rules, so reverse mode serves both cases.
    """
    source_ids = {id(s) for s in sources if id(s) in watched}
    if not source_ids:
        return [None] * len(sources)
    steps = plan_sweep(entries, source_ids, watched, leaves)
    if seeds is None:
        seeds = np.eye(target.size).reshape((target.size,) + target.shape)
        prefix = target.shape
    else:
        prefix = seeds.shape[:1]
    n = seeds.shape[0]
    widest = max([e[2].size for e in steps[0]] + [target.size, 1])
    chunk = max(1, min(n, (chunk_elements or CHUNK_ELEMENTS) // widest))
    parts: list[list[Tensor | None]] = []
    for start in range(0, n, chunk):
        rows = seeds[start : start + chunk]
        parts.append(sweep(entries, [target], [Tensor(rows)], sources, watched, plan=steps,
                           batch=(rows.shape[0],)))
    out: list[Tensor | None] = []
    for j, s in enumerate(sources):
        col = [p[j] for p in parts]
        if all(g is None for g in col):
            out.append(None)
            continue
        filled = [
            Tensor(np.zeros((min(chunk, n - k * chunk),) + s.shape)) if g is None else g
            for k, g in enumerate(col)
        ]
        whole = filled[0] if len(filled) == 1 else F.concat(*filled, axis=0)
        out.append(F.reshape(whole, shape=list(prefix + s.shape)))
    return out
