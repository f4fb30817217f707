"""Python's cyclic garbage collector, paused while any tape records or sweeps."""

from __future__ import annotations

import gc
import threading
import time


class CollectorPause:
    """Pauses Python's cyclic garbage collector while any tape records or sweeps.

    Why: a tape holds a few objects per op (tensor, entry, value), and the
    collector rescans every live object each time the heap grows by a quarter,
    so on a long tape its rescans cost more than the recording itself (about
    5 us per op on a 100,000-op chain, three times the rest). Tapes make no
    reference cycles, so reference counting frees everything they drop; cycles
    made elsewhere meanwhile are collected once the last tape stops.
    Counted, so nested tapes and tapes in other threads share one pause, and
    a collector the caller had disabled stays disabled.

    When the pause ends, all that was allocated meanwhile is still counted in the
    youngest generation, so the next allocation would scan it all at once (on a
    long chain, a fifth of the recording time) only to find the tape's objects
    alive. Past ``PROMOTE_BACKLOG`` objects, ``gc.freeze()`` then ``gc.unfreeze()``
    hand the backlog to the oldest generation instead, in constant time (freeze
    also resets the count): it is scanned at the next full collection, as any
    long-lived data, and cycles made meanwhile (or just before: all young objects
    move) are collected then. Not done when the application has frozen objects of
    its own (unfreeze would thaw them).

    Under load the pause may never end (some tape always records), so a tape that starts
    when it has lasted ``COLLECT_AFTER_SECONDS`` collects the young generations first:
    a cycle made meanwhile (ours must make none; tests.cycles) is held for at most that
    long, at the price of one scan of what was allocated since.
    """

    PROMOTE_BACKLOG = 10_000
    COLLECT_AFTER_SECONDS = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._resume = False
        self._since = 0.0  # when the pause began, or last collected

    def hold(self) -> None:
        collect = False
        with self._lock:
            now = time.monotonic()
            if self._holders == 0:
                self._resume = gc.isenabled()
                gc.disable()
                self._since = now
            elif self._resume and now - self._since >= self.COLLECT_AFTER_SECONDS:
                self._since, collect = now, True
            self._holders += 1
        if collect:
            gc.collect(1)

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._resume:
                if gc.get_count()[0] > self.PROMOTE_BACKLOG and not gc.get_freeze_count():
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()

    def __enter__(self) -> None:
        self.hold()

    def __exit__(self, *exc: object) -> None:
        self.release()


collector_paused = CollectorPause()
