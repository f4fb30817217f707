"""GradientTape: records ops on watched tensors, as ``tf.GradientTape`` does.

A tape is a Wengert list: entries in execution order. An op is recorded on
every recording tape that watches one of its inputs; its output is then
watched too. Trainable variables are watched when an op reads them (unless
``watch_accessed_variables=False``). Nested tapes give higher derivatives:
the reverse sweep runs engine ops, which outer tapes record like any other.
A non-persistent tape gives one set of gradients and then drops its record (and stops
recording, if inside its context), as TF's does: entering the same object again starts
a fresh record, one tape object per training step.
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
from engine.tape.arguments import rows_per_sweep, seeds_for, source_tensors, unconnected_mode
from engine.tape.collector import collector_paused
from engine.tape.entries import Entry, RawEntry
from engine.tape.recording import LIVE_LOGS, TAPE_STACK, TapeLog
from engine.tape.structure import flatten, unflatten
from engine.tensor import Tensor, Variable

NON_PERSISTENT_REUSE = (
    "A non-persistent GradientTape can only be used to compute one set of gradients "
    "(or jacobians)"
)

PERSISTENT_INSIDE_CONTEXT = (
    "Calling GradientTape.gradient on a persistent tape inside its context is significantly "
    "less efficient than calling it outside the context (it causes the gradient ops to be "
    "recorded on the tape, leading to increased CPU and memory usage). Only call "
    "GradientTape.gradient inside the context if you actually want to trace the gradient "
    "in order to compute higher order derivatives."
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
        self._watch_accessed_variables = watch_accessed_variables
        # What ops record here (recording); None once a non-persistent tape has given its
        # gradients, as TF drops its tape then: entering the object again starts afresh.
        self._log: TapeLog | None = TapeLog(watch_accessed_variables)
        self._spent: TapeLog | None = None  # the dropped record, still readable (not TF's API)
        self._watched_variables: tuple[Variable, ...] = ()  # as they were when dropped
        self._recording = False
        self._entered = False
        self.notes: list[Note] = []  # why each None gradient of the last call is None

    # -------------------------------------------------------------- context

    def __enter__(self) -> GradientTape:
        if self._recording:
            raise ValueError(
                "Tape is still recording, This can happen if you try to re-enter an "
                "already-active tape."
            )
        if self._log is None:
            self._log = TapeLog(self._watch_accessed_variables)
            self._spent = None
        self._push()
        self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._recording:
            self._pop()

    def _push(self) -> None:
        collector_paused.hold()
        TAPE_STACK.push(self._record)
        self._recording = True

    def _pop(self) -> None:
        TAPE_STACK.remove(self._record)
        self._recording = False
        collector_paused.release()

    @property
    def _record(self) -> TapeLog:
        """The live record, or the one a non-persistent gradient() dropped (read-only)."""
        log = self._log or self._spent
        assert log is not None  # one of them always exists
        return log

    @contextlib.contextmanager
    def stop_recording(self) -> Iterator[None]:
        """Temporarily stop recording operations on this tape."""
        if not self._entered or self._log is None:
            raise RuntimeError("Trying to stop recording a tape which is not recording.")
        if not self._recording:
            raise ValueError("Tape is not recording.")
        self._pop()
        try:
            yield
        finally:
            self._push()

    def reset(self) -> None:
        """Clear everything recorded and watched so far; recording goes on if active."""
        if self._log is None:  # dropped by gradient(): a fresh record, as TF's new tape
            self._log, self._spent = TapeLog(self._watch_accessed_variables), None
        else:
            self._log.clear()

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
            if self._log is None:  # dropped by a non-persistent gradient()
                raise RuntimeError(NON_PERSISTENT_REUSE)
            self._log.watch(t)

    def watched_variables(self) -> tuple[Variable, ...]:
        """Variables watched by this tape in order of construction, as TF's; after a
        non-persistent gradient(), those watched when it dropped its record."""
        if self._log is None:
            return self._watched_variables
        found = [t for t in self._log.leaves if isinstance(t, Variable)]
        return tuple(sorted(found, key=lambda v: v.uid))

    # ---------------------------------------------- reading the record (not TF's API)

    def is_watched(self, tensor: Tensor) -> bool:
        return tensor in self._record.watched

    @property
    def watched(self) -> AbstractSet[Tensor]:
        """Every tensor this tape watches: watched leaves and the outputs it recorded."""
        return self._record.watched

    @property
    def watched_leaves(self) -> Collection[Tensor]:
        """The tensors watched as leaves (``watch``, accessed variables), in order."""
        return self._record.leaves.keys()

    @property
    def recording(self) -> bool:
        """Whether ops are recorded now: inside ``with``, outside ``stop_recording``."""
        return self._recording

    @property
    def raw_entries(self) -> Sequence[RawEntry]:
        """The entries as stored (engine.tape.entries), in recording order, not copied:
        for sweeps and patterns over long tapes. ``entries`` is the named view."""
        return self._record.entries

    @property
    def entries(self) -> list[Entry]:
        """The recorded entries, in recording order."""
        return [Entry.of(e) for e in self._record.entries]

    # ------------------------------------------------------------ gradients

    def _begin_use(self) -> TapeLog:
        """The record to differentiate: a non-persistent tape gives one set of gradients
        and stops recording for good (TF pops its tape); a persistent one inside its
        context warns, as TF does, since its sweep is then recorded on itself."""
        log = self._log
        if log is None:
            raise RuntimeError(NON_PERSISTENT_REUSE)
        if self._recording:
            if not self._persistent:
                self._pop()
            else:
                warnings.warn(PERSISTENT_INSIDE_CONTEXT, stacklevel=3)
        return log

    def _end_use(self) -> None:
        """Drop a non-persistent tape's record after its one set of gradients."""
        if not self._persistent and self._log is not None:
            self._watched_variables = self.watched_variables()
            self._spent, self._log = self._log, None
            LIVE_LOGS.discard(self._spent)

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
        mode = unconnected_mode(unconnected_gradients)
        log = self._begin_use()
        if target is None:
            raise TypeError(
                "Argument `target` should be a list or nested structure of Tensors, "
                "Variables or CompositeTensors to be differentiated, but received None."
            )
        targets = flatten(target)
        seeds = seeds_for(targets, output_gradients)
        srcs = source_tensors(sources)
        with collector_paused:
            grads = backprop.sweep(
                log.entries, targets, seeds, srcs, log.watched,
                grads_seen=grads_seen, leaves=log.leaves,
            )
        if not TAPE_STACK.logs:
            _unrecorded_gradients.update(g for g in grads if g is not None)
        out = self._finish(targets, srcs, grads, mode)
        self._end_use()
        return unflatten(sources, out)

    def jacobian(
        self,
        target: Any,
        sources: Any,
        unconnected_gradients: str = "none",
        parallel_iterations: int | None = None,  # noqa: ARG002 - TF signature
        experimental_use_pfor: bool = True,  # noqa: ARG002 - TF signature
    ) -> Any:
        """d target / d source, each of shape ``target.shape + source.shape``.

        Every row comes from one vectorised sweep (TF's pfor), in chunks of at most
        ``parallel_iterations`` rows when given; ``experimental_use_pfor=False`` sweeps
        one row at a time (TF's while loop), which, as TF's, needs a persistent tape.
        """
        mode = unconnected_mode(unconnected_gradients)
        per_sweep = rows_per_sweep(parallel_iterations, experimental_use_pfor)
        if not experimental_use_pfor and not self._persistent and self._log is not None:
            raise RuntimeError(
                "GradientTape must be created with persistent=True to compute the jacobian "
                "with eager execution enabled and with experimental_use_pfor set to False."
            )
        log = self._begin_use()
        if not isinstance(target, Tensor):
            raise ValueError("jacobian takes a single target tensor")
        srcs = source_tensors(sources)
        from engine.tape import transposed  # imports this module: bound late

        with collector_paused:
            if target.size == 0:  # no row to sweep: the connected blocks are empty arrays
                rows = _empty_blocks(log, target, srcs)
            elif per_sweep is None and transposed.is_tall(target, srcs):
                # one seed per source element when the target is tall
                rows = transposed.jacobian_columns(log.entries, target, srcs, log.watched,
                                                   log.leaves)
            else:
                rows = backprop.jacobian_rows(log.entries, target, srcs, log.watched,
                                              log.leaves, rows_per_sweep=per_sweep)
        out = self._finish([target], srcs, rows, mode, prefix=target.shape)
        self._end_use()
        return unflatten(sources, out)

    def batch_jacobian(
        self,
        target: Tensor,
        source: Tensor,
        unconnected_gradients: str = "none",
        parallel_iterations: int | None = None,
        experimental_use_pfor: bool = True,
    ) -> Tensor:
        """Per-example Jacobians stacked, ``target.shape + source.shape[1:]``, where
        ``target[i]`` depends on ``source[i]`` only, as TF's (engine.tape.batch_jacobian)."""
        from engine.tape.batch_jacobian import batch_jacobian  # imports this module

        unconnected_mode(unconnected_gradients)
        return batch_jacobian(self, target, source, parallel_iterations,
                              experimental_use_pfor)

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
        trainable = type(source) is Variable and source.trainable
        return none_note(label, source.name, source in self._record.watched, trainable,
                         self._watch_accessed_variables)


def none_note(label: str, name: str | None, watched: bool, trainable_variable: bool,
              watch_accessed_variables: bool) -> Note:
    """Why a source got no gradient (``tape.notes``), its target recorded: it was not
    watched (and why not), or no differentiable path leads from it to the target. A
    gradient taken with no tape (engine.graphs.untaped) says it in the same words."""
    if not watched:
        if trainable_variable:
            why = (
                "a trainable variable is watched when an op reads it while the tape "
                "records, and no op read it"
                if watch_accessed_variables
                else "watch_accessed_variables=False: only what tape.watch() names is "
                "watched (`watch` in a request)"
            )
        else:
            why = "constants and non-trainable variables need tape.watch() (or `watch` " \
                "in a request)"
        return Note(
            reason="not_watched",
            source=name,
            detail=f"{label} is not watched by the tape: {why}",
        )
    return Note(
        reason="unconnected",
        source=name,
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


def _empty_blocks(log: TapeLog, target: Tensor, sources: list[Tensor]) -> list[Tensor | None]:
    """The Jacobian of a zero-element target: an empty array for each source it depends on
    (TF's), None for the others."""
    masks = backprop.paths_from(log.entries, sources, [target])[0]
    return [Tensor(np.zeros(target.shape + s.shape)) if masks >> j & 1 and s in log.watched
            else None for j, s in enumerate(sources)]
