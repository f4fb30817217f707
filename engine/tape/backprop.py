"""The reverse sweep over a tape's entries (Autodidax's ``eqns[::-1]``).

Recording order is a topological order, so the sweep needs no sort and no
recursion. Cotangents accumulate with add-if-present, only along entries that
lie on a path from a source; "no path" stays ``None``, distinct from zero.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Container, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import budget
from engine.ops.registry import F
from engine.tape.entries import INPUTS, NO_ATTRS
from engine.tape.entries import entries as entries_of
from engine.tape.recording import TAPE_STACK
from engine.tape.unbroadcast import unbroadcast
from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.tape.entries import RawEntry as Entry

CHECK_EVERY = 1024  # entries between deadline checks


# Sets and dicts of tensors here are keyed by the tensors themselves (identity hash,
# as the tape's): ``x in reach`` is a third of the cost of ``id(x) in reach``.


def reachable(
    entries: Sequence[Entry], sources: Collection[Tensor]
) -> tuple[list[Entry], set[Tensor]]:
    """Entries whose output depends on a source, and every such tensor."""
    reach = set(sources)
    relevant = []
    for e in entries:
        for x in e[INPUTS:]:
            if x in reach:
                reach.add(e[1])
                relevant.append(e)
                break
    return relevant, reach


def plan_sweep(
    entries: Sequence[Entry],
    sources: Collection[Tensor],
    watched: Container[Tensor],
    leaves: Collection[Tensor] | None,
) -> tuple[list[Entry], Container[Tensor]]:
    """``reachable``, without its pass over the tape when every watched leaf is a source.

    A tape records an entry only when it reads a watched tensor, and every watched
    tensor descends from a watched leaf (``leaves``: the tape's watched leaves);
    so when all of them are sources, every entry is on a path from one and every
    watched tensor is reached. The usual case: ``gradient(loss, every variable)``.
    """
    if leaves is not None and all(t in sources for t in leaves):
        return list(entries), watched
    return reachable(entries, sources)


def paths_from(
    entries: Sequence[Entry], sources: Sequence[Tensor], targets: Sequence[Tensor]
) -> list[int]:
    """Per target, a bit mask of the sources it has a differentiable path from (bit j:
    ``sources[j]``): which blocks of a stacked Jacobian are "no path" rather than zero.
    One pass; entries of non-differentiable ops (no vjp) carry no path, as in ``sweep``."""
    mask: dict[int, int] = {}
    for j, s in enumerate(sources):  # a source listed twice (as TF allows) has both bits
        mask[id(s)] = mask.get(id(s), 0) | 1 << j
    for op, inputs, output, _attrs in entries_of(entries):
        if op.vjp is None:
            continue
        bits = 0
        for x in inputs:
            bits |= mask.get(id(x), 0)
        if bits:
            mask[id(output)] = mask.get(id(output), 0) | bits
    return [mask.get(id(t), 0) for t in targets]


_f64 = np.float64
ONE_INPUT_NEEDED = (True,)  # ``needs`` of a one-input entry: its input is on a path
# ``needs`` of a two-input entry, shared rather than built for each
BOTH_NEEDED, FIRST_NEEDED, SECOND_NEEDED, NONE_NEEDED = (
    (True, True), (True, False), (False, True), (False, False))
ONE_INPUT, TWO_INPUTS = INPUTS + 1, INPUTS + 2  # lengths of such entries


def sweep(
    entries: Sequence[Entry],
    targets: Sequence[Tensor],
    seeds: Sequence[Tensor],
    sources: Sequence[Tensor],
    watched: Container[Tensor],
    grads_seen: dict[int, Tensor] | None = None,
    plan: tuple[Sequence[Entry], Container[Tensor]] | None = None,
    leaves: Collection[Tensor] | None = None,
    batch: tuple[int, ...] = (),
) -> list[Tensor | None]:
    """Cotangent of every source for the seeded targets; None where no path exists.

    ``plan`` is ``plan_sweep``'s answer when the caller already has it; ``leaves``,
    the tape's watched leaves, lets ``plan_sweep`` skip its pass.
    ``grads_seen``, when given, receives the cotangent reaching each entry's output,
    keyed by the output's ``id`` (the trace shows it). ``batch``: leading dims every
    seed carries in front of its target's shape (many cotangents in one sweep); every
    cotangent then has shape ``batch + tensor.shape`` and each source's answer is
    ``batch + source.shape``.

    When no tape records in this thread (the usual first-order gradient), nothing
    can record the backward pass, so the rules run on raw numpy values: the sweep
    hands them ``.value``s and ``TAPE_STACK.raw`` makes the ops they call return raw
    values (engine.tape.recording.op_function), so no Tensor is built per op. The same
    rules get Tensors when a tape records, so that tape records the backward pass
    (higher orders). Either way the answers are Tensors.
    """
    wanted = {s for s in sources if s in watched}
    if not wanted:
        return [None] * len(sources)
    relevant, reach = plan or plan_sweep(entries, wanted, watched, leaves)
    raw = not TAPE_STACK.logs
    cts: dict[Tensor, Any] = {}  # tensor -> its cotangent so far (raw values when raw)
    for t, seed in zip(targets, seeds, strict=True):
        if t in reach:
            s = seed.value if raw else seed
            cts[t] = s if t not in cts else cts[t] + s
    keep = wanted if grads_seen is None else reach
    was_raw = TAPE_STACK.raw
    TAPE_STACK.raw = raw
    try:
        _accumulate(relevant, reach, cts, keep, grads_seen, raw, batch)
    finally:
        TAPE_STACK.raw = was_raw
    out = {s: (Tensor(cts[s]) if raw else cts[s]) for s in wanted if s in cts}
    if grads_seen is not None:
        grads_seen.update((id(s), g) for s, g in out.items())
    return [out.get(s) for s in sources]


def _accumulate(
    relevant: Sequence[Entry],
    reach: Container[Tensor],
    cts: dict[Tensor, Any],
    keep: Container[Tensor],
    grads_seen: dict[int, Tensor] | None,
    raw: bool,
    batch: tuple[int, ...],
) -> None:
    """The sweep proper: each entry's rule, in reverse order, adds its inputs' cotangents
    to ``cts``. ``raw``: the rules get the tensors' values (see ``sweep``)."""
    check = budget.check
    # A vectorised raw sweep's cotangents are large: a rule may then write into a ``g`` that
    # nothing else holds (OpDef.rule_into), and sums go into the cotangent they add to.
    donate = raw and bool(batch)
    grads: Any = None
    gx = gy = cur = None
    steps = reversed(relevant)
    for _block in range(0, len(relevant), CHECK_EVERY):
        check("reverse sweep")
        # once per block of entries: islice costs nothing per entry, unlike a counter
        for e in islice(steps, CHECK_EVERY):
            if donate:  # the last entry's cotangents, held here, would count as holders
                grads = gx = gy = cur = None
            output = e[1]
            g = cts.get(output) if output in keep else cts.pop(output, None)
            if g is None:
                continue
            if batch:  # a batched entry is costly: the budget is checked before each (not
                check("reverse sweep")  # before each skipped one: a Jacobian per target)
            rule = e[0].rule  # the vjp, in one calling convention (OpDef.rule)
            if rule is None:
                continue  # not differentiable: no gradient flows through
            if grads_seen is not None:
                grads_seen[id(output)] = Tensor(g) if raw else g
            if (donate and type(g) is _ndarray and g.size >= IN_PLACE_MIN
                    and _refs(g) == ONLY_HERE and g.base is None and g.flags.writeable):
                # g is this entry's alone: its memory may be reused (OpDef.rule_into; what
                # else a tape records, a custom gradient, has none)
                rule = getattr(e[0], "rule_into", None) or rule
            # Spelled out for one and two inputs: a call with ``*args``, a list of values
            # or a loop over the cotangents cost more than the rest of the loop body.
            ans = output.value if raw else output
            attrs = e[2]
            size = len(e)
            if size == ONE_INPUT:
                # Most entries: the only input is on a path from a source (that is why the
                # entry is relevant), so its cotangent is needed and no mask is built.
                x = e[3]
                xa = x.value if raw else x
                grads = (rule(g, ONE_INPUT_NEEDED, ans, xa) if attrs is NO_ATTRS
                         else rule(g, ONE_INPUT_NEEDED, ans, xa, **attrs))
                try:
                    (gx,) = grads
                except ValueError:
                    raise AssertionError(f"{e[0].name}: one cotangent per input") from None
            elif size == TWO_INPUTS:
                # Tell the rule which inputs are on no path from a source, so it can skip
                # their cotangents (d/dX of X @ W for a constant X, d/db of a ** 2).
                _op, _out, _attrs, x, y = e
                need_x = x in reach
                need_y = y in reach
                if need_x:
                    needs = BOTH_NEEDED if need_y else FIRST_NEEDED
                else:
                    needs = SECOND_NEEDED if need_y else NONE_NEEDED
                if raw:
                    xa = x.value
                    ya = y.value
                else:
                    xa = x
                    ya = y
                grads = (rule(g, needs, ans, xa, ya) if attrs is NO_ATTRS
                         else rule(g, needs, ans, xa, ya, **attrs))
                try:
                    gx, gy = grads
                except ValueError:
                    raise AssertionError(f"{e[0].name}: one cotangent per input") from None
                # Below, the cotangent of x (x * 0.9) or of y alone (0.9 * y) is added
                # inline; when both are needed (x * y), y's here first.
                if need_y:
                    if not need_x:
                        x, gx = y, gy
                    elif gy is not None:
                        _add(cts, y, gy, batch)
                elif not need_x:
                    continue
            else:
                inputs = e[INPUTS:]
                needs = tuple([x in reach for x in inputs])
                grads = rule(g, needs, ans, *([x.value for x in inputs] if raw else inputs),
                             **attrs)
                if len(grads) != len(inputs):
                    raise AssertionError(f"{e[0].name}: one cotangent per input")
                for i, gx in enumerate(grads):
                    if gx is not None and needs[i]:
                        _add(cts, inputs[i], gx, batch)
                continue
            if gx is None:
                continue
            # _add, inline: the one cotangent of most entries
            if type(gx) is not _f64:  # see _add
                gx = fit_cotangent(gx, x.value, batch)
            if x in cts:
                cur = cts[x]
                if type(cur) is _ndarray and cur.size >= IN_PLACE_MIN and _refs(cur) == ALONE:
                    cts[x] = plus_into(cur, gx)
                else:
                    cts[x] = cur + gx
            else:
                cts[x] = gx


def _add(cts: dict[Tensor, Any], x: Tensor, gx: Any, batch: tuple[int, ...]) -> None:
    """Add ``gx`` to the cotangent of ``x``, summed down to ``batch + x.shape`` first."""
    # A numpy-scalar cotangent fits as it is: it belongs to a 0-d input (a rule never
    # returns a cotangent smaller than its input, and a batched one is never 0-d).
    if type(gx) is not _f64:
        gx = fit_cotangent(gx, x.value, batch)
    if x not in cts:
        cts[x] = gx
        return
    cur = cts[x]
    if type(cur) is _ndarray and cur.size >= IN_PLACE_MIN and _refs(cur) == ALONE:
        cts[x] = plus_into(cur, gx)
    else:
        cts[x] = cur + gx


# Large cotangents are summed into the memory of the one they add to when nothing else can
# see it: a fresh array of a vectorised sweep (n rows of a Hessian) is megabytes, and a
# server that returns large blocks to the system when freed (app.memory) pays a page fault
# per 4 KiB of each new one, several times the addition itself.
IN_PLACE_MIN = 1 << 14  # elements; below, a new array costs less than the checks
_ndarray = np.ndarray
_refs = sys.getrefcount


def _alone() -> tuple[int, int]:
    """What ``sys.getrefcount`` says of a cotangent held only by ``cts`` and one local
    (``cur``), and of one popped from ``cts`` into one local (``g``), measured the way the
    sweep asks, so that no interpreter's way of counting the call's own reference is
    assumed."""
    cts = {0: np.zeros(1)}
    cur = cts[0]
    held = _refs(cur)
    del cur
    g = cts.pop(0)
    return held, _refs(g)


ALONE, ONLY_HERE = _alone()


def plus_into(cur: np.ndarray, gx: Any) -> Any:
    """``cur + gx``, written into ``cur`` (the caller has seen that only ``cts`` holds it)
    when it owns its memory (no view of another array's) and the sum has its shape and
    dtype: the same numbers as ``cur + gx``, without a new array."""
    if (type(gx) is _ndarray and gx.shape == cur.shape and gx.dtype == cur.dtype
            and cur.base is None and cur.flags.writeable):
        return np.add(cur, gx, out=cur)
    return cur + gx


def fit_cotangent(gx: Any, xv: Any, batch: tuple[int, ...] = ()) -> Any:
    """``gx`` summed down to ``batch + xv.shape`` where broadcasting made it larger."""
    if gx.shape == xv.shape or (batch and gx.shape == batch + xv.shape):
        return gx
    return unbroadcast(gx, xv.shape, batch)


# Elements of one batched cotangent tensor a vectorised sweep may hold at once (8 bytes
# each): rows of the seed are swept in chunks so that chunk x largest tensor stays below.
CHUNK_ELEMENTS = 1 << 23


def jacobian_rows(
    entries: Sequence[Entry],
    target: Tensor,
    sources: Sequence[Tensor],
    watched: Container[Tensor],
    leaves: Collection[Tensor] | None = None,
    chunk_elements: int | None = None,
    seeds: np.ndarray | None = None,
    rows_per_sweep: int | None = None,
) -> list[Tensor | None]:
    """Full Jacobian of ``target`` per source, of shape ``target.shape + source.shape``.

    One vectorised reverse sweep: the seed is the identity over ``target``'s elements,
    carried as a leading batch axis of every cotangent (so all rules run once, not once
    per element). ``seeds``, of shape ``(k,) + target.shape``, replaces the identity by
    ``k`` chosen rows (a compressed Jacobian, or one row per point of a batch); each
    result is then ``(k,) + source.shape``. Rows go in chunks of at most
    ``rows_per_sweep`` (TF's ``parallel_iterations``) when given, and when a batch of the
    largest tensor would exceed ``chunk_elements`` (default ``CHUNK_ELEMENTS``). The
    result is made of engine ops, so outer tapes record it (Hessians, third order).
    When ``target`` has many more elements than all sources together,
    ``engine.tape.transposed.jacobian_columns`` gives the same with one seed per source element.
    """
    wanted = {s for s in sources if s in watched}
    if not wanted:
        return [None] * len(sources)
    steps = plan_sweep(entries, wanted, watched, leaves)
    if seeds is None:
        seeds = np.eye(target.size).reshape((target.size,) + target.shape)
        prefix = target.shape
    else:
        prefix = seeds.shape[:1]
    n = seeds.shape[0]
    widest = max([e[1].size for e in steps[0]] + [target.size, 1])
    chunk = max(1, min(n, (chunk_elements or CHUNK_ELEMENTS) // widest, rows_per_sweep or n))
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
