"""GradientTape: records ops on watched tensors, as ``tf.GradientTape`` does.

A tape is a Wengert list: entries in execution order. An op is recorded on
every recording tape that watches one of its inputs; its output is then
watched too. Trainable variables are watched when an op reads them (unless
``watch_accessed_variables=False``). Nested tapes give higher derivatives:
the reverse sweep runs engine ops, which outer tapes record like any other.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Collection, Iterator, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from engine.notes import Note
from engine.tape import backprop
from engine.tape.collector import collector_paused
from engine.tape.entries import Entry, RawEntry
from engine.tape.recording import TAPE_STACK, TapeLog
from engine.tape.structure import flatten, unflatten
from engine.tensor import Tensor, Variable

NON_PERSISTENT_REUSE = (
    "A non-persistent GradientTape can only be used to compute one set of gradients "
    "(or jacobians)"
)

NESTED_TAPES_HINT = (
    "To differentiate a gradient, compute the inner gradient while an outer tape is "
    "recording: `with GradientTape() as outer:` / `with GradientTape() as inner: y = f(x)` / "
    "`dy = inner.gradient(y, x)` (still inside `outer`), then `outer.gradient(dy, x)`. "
    "A persistent tape does not record gradients computed after its `with` block ends."
)

# Gradients computed while no tape recorded them: differentiating one of these
# again can only give None, and the tape says why (the seed article's mistake).
_unrecorded_gradients: weakref.WeakSet[Tensor] = weakref.WeakSet()


class GradientTape:
    """Records operations for automatic differentiation, as ``tf.GradientTape``."""

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self._persistent = persistent
        self._log = TapeLog(watch_accessed_variables)  # what ops record here (recording)
        self._recording = False
        self._entered = False
        self._used = False
        self.notes: list[Note] = []  # why each None gradient of the last call is None

    # -------------------------------------------------------------- context

    def __enter__(self) -> GradientTape:
        if self._recording:
            raise ValueError(
                "Tape is still recording, This can happen if you try to re-enter an "
                "already-active tape."
            )
        self._push()
        self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._recording:
            self._pop()

    def _push(self) -> None:
        collector_paused.hold()
        TAPE_STACK.push(self._log)
        self._recording = True

    def _pop(self) -> None:
        TAPE_STACK.remove(self._log)
        self._recording = False
        collector_paused.release()

    @contextlib.contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Temporarily stop recording operations on this tape."""
        if not self._recording:
            raise ValueError("Tape must be recording.")
        self._pop()
        try:
            yield
        finally:
            self._push()

    def reset(self) -> None:
        """Clear everything recorded and watched so far; recording goes on if active."""
        self._log.clear()
        self._used = False

    def close(self) -> None:
        """Not part of TensorFlow's API; says so, and what to do instead."""
        raise AttributeError(
            "'GradientTape' object has no attribute 'close': TensorFlow has no such method. "
            "A persistent tape's memory is released when the tape is deleted (`del tape`). "
            + NESTED_TAPES_HINT
        )

    # ------------------------------------------------------------- watching

    def watch(self, tensor: Any) -> None:
        """Ensure ``tensor`` (or each tensor of a structure) is traced by this tape."""
        for t in flatten(tensor):
            if not isinstance(t, Tensor):
                raise ValueError(
                    f"Passed in object of type {type(t).__name__}, not tf.Tensor or "
                    "tf.Variable; wrap numbers with constant() before watching them"
                )
            self._log.watch(t)

    def watched_variables(self) -> tuple[Variable, ...]:
        """Variables watched by this tape, in the order they were first watched."""
        return tuple(t for t in self._log.leaves if isinstance(t, Variable))

    # ---------------------------------------------- reading the record (not TF's API)

    def is_watched(self, tensor: Tensor) -> bool:
        return tensor in self._log.watched

    @property
    def watched(self) -> AbstractSet[Tensor]:
        """Every tensor this tape watches: watched leaves and the outputs it recorded."""
        return self._log.watched

    @property
    def watched_leaves(self) -> Collection[Tensor]:
        """The tensors watched as leaves (``watch``, accessed variables), in order."""
        return self._log.leaves.keys()

    @property
    def recording(self) -> bool:
        """Whether ops are recorded now: inside ``with``, outside ``stop_recording``."""
        return self._recording

    @property
    def raw_entries(self) -> Sequence[RawEntry]:
        """The entries as stored (engine.tape.entries), in recording order, not copied:
        for sweeps and patterns over long tapes. ``entries`` is the named view."""
        return self._log.entries

    @property
    def entries(self) -> list[Entry]:
        """The recorded entries, in recording order."""
        return [Entry.of(e) for e in self._log.entries]

    # ------------------------------------------------------------ gradients

    def _begin_use(self) -> bool:
        """Enforce single use; pause a non-persistent tape so its sweep isn't recorded."""
        if self._used and not self._persistent:
            raise RuntimeError(NON_PERSISTENT_REUSE)
        self._used = True
        if self._recording and not self._persistent:
            self._pop()
            return True
        return False

    def gradient(
        self,
        target: Any,
        sources: Any,
        output_gradients: Any = None,
        unconnected_gradients: str = "none",
        *,
        grads_seen: dict[int, Tensor] | None = None,
    ) -> Any:
        """d(sum of targets)/d(source) for each source, in the structure of ``sources``.

        A non-scalar target, or a list of targets, is summed; ``output_gradients``
        weights each target instead of ones. A source that is not watched or not
        connected gives None, or zeros with ``unconnected_gradients="zero"``; the
        reason is in ``tape.notes``. ``grads_seen`` (not in TF) receives the
        cotangent reaching each recorded tensor, keyed by ``id``, for traces.
        """
        mode = _unconnected_mode(unconnected_gradients)
        paused = self._begin_use()
        try:
            targets = flatten(target)
            seeds = _seeds(targets, output_gradients)
            srcs = flatten(sources)
            for s in srcs:
                if not isinstance(s, Tensor):
                    raise ValueError(
                        f"sources must be tensors or variables, got {type(s).__name__}"
                    )
            with collector_paused:
                grads = backprop.sweep(
                    self._log.entries, targets, seeds, srcs, self._log.watched,
                    grads_seen=grads_seen, leaves=self._log.leaves,
                )
            if not TAPE_STACK.logs:
                _unrecorded_gradients.update(g for g in grads if g is not None)
            out = self._finish(targets, srcs, grads, mode)
        finally:
            if paused:
                self._push()
        return unflatten(sources, out)

    def jacobian(
        self,
        target: Any,
        sources: Any,
        unconnected_gradients: str = "none",
        parallel_iterations: int | None = None,  # noqa: ARG002 - TF signature
        experimental_use_pfor: bool = True,  # noqa: ARG002 - TF signature
    ) -> Any:
        """d target / d source, each of shape ``target.shape + source.shape``."""
        mode = _unconnected_mode(unconnected_gradients)
        paused = self._begin_use()
        try:
            if not isinstance(target, Tensor):
                raise ValueError("jacobian takes a single target tensor")
            srcs = flatten(sources)
            from engine.tape import transposed  # imports this module: bound late

            # one seed per target element, or per source element when the target is tall
            route = (transposed.jacobian_columns if transposed.is_tall(target, srcs)
                     else backprop.jacobian_rows)
            with collector_paused:
                log = self._log
                rows = route(log.entries, target, srcs, log.watched, log.leaves)
            out = self._finish([target], srcs, rows, mode, prefix=target.shape)
        finally:
            if paused:
                self._push()
        return unflatten(sources, out)

    def _finish(
        self,
        targets: list[Tensor],
        sources: list[Tensor],
        grads: list[Tensor | None],
        mode: str,
        prefix: tuple[int, ...] = (),
    ) -> list[Tensor | None]:
        self.notes = []
        out: list[Tensor | None] = []
        stale = [t for t in targets if t in _unrecorded_gradients]
        for s, g in zip(sources, grads, strict=True):
            if g is None:
                self.notes.append(self._why_none(s, stale))
                if mode == "zero":
                    g = Tensor(np.zeros(prefix + s.shape))
            out.append(g)
        if stale and any(g is None for g in grads):
            warnings.warn(
                "The target was computed by GradientTape.gradient() while no tape was "
                "recording, so it has no recorded derivative and its gradient is None. "
                + NESTED_TAPES_HINT,
                stacklevel=3,
            )
        return out

    def _why_none(self, source: Tensor, stale: list[Tensor]) -> Note:
        label = source.name or "source"
        if stale:
            return Note(
                reason="gradient_not_recorded",
                source=source.name,
                detail=f"{label}: the target is a gradient computed outside any recording "
                "tape. " + NESTED_TAPES_HINT,
            )
        if source not in self._log.watched:
            if type(source) is Variable and source.trainable:
                why = (
                    "a trainable variable is watched when an op reads it while the tape "
                    "records, and no op read it"
                    if self._log.watch_accessed_variables
                    else "watch_accessed_variables=False: only what tape.watch() names is "
                    "watched (`watch` in a request)"
                )
            else:
                why = "constants and non-trainable variables need tape.watch() (or `watch` " \
                    "in a request)"
            return Note(
                reason="not_watched",
                source=source.name,
                detail=f"{label} is not watched by the tape: {why}",
            )
        return Note(
            reason="unconnected",
            source=source.name,
            detail=f"no differentiable path from {label} to the target",
        )


def jacobian_rows(
    tape: GradientTape, target: Tensor, sources: list[Tensor], seeds: np.ndarray | None = None
) -> list[Tensor | None]:
    """``backprop.jacobian_rows`` over what ``tape`` recorded, with the collector paused:
    the Jacobian of ``target`` (a seed per element), or with ``seeds`` (k rows) their
    weighted sums of its rows, one vectorised sweep either way."""
    with collector_paused:
        return backprop.jacobian_rows(tape.raw_entries, target, sources, tape.watched,
                                      tape.watched_leaves, seeds=seeds)


def _unconnected_mode(mode: Any) -> str:
    value = getattr(mode, "value", mode)
    if value not in ("none", "zero"):
        raise ValueError(f"Unknown value for unconnected_gradients: {mode!r}")
    return value


def _seeds(targets: list[Tensor], output_gradients: Any) -> list[Tensor]:
    """One upstream gradient per target: ones, or the caller's of the target's shape."""
    if output_gradients is None:
        return [Tensor(np.ones(t.shape)) if t.ndim else Tensor(np.float64(1.0)) for t in targets]
    given = flatten(output_gradients)
    if len(given) != len(targets):
        raise ValueError(
            f"output_gradients has {len(given)} entries for {len(targets)} target(s)"
        )
    seeds = []
    for t, g in zip(targets, given, strict=True):
        if g is None:
            seeds.append(Tensor(np.ones(t.shape)) if t.ndim else Tensor(np.float64(1.0)))
            continue
        g = g if isinstance(g, Tensor) else Tensor(g)
        if g.shape != t.shape:
            raise ValueError(
                f"output_gradients shape {list(g.shape)} does not match target shape "
                f"{list(t.shape)}"
            )
        seeds.append(g)
    return seeds
