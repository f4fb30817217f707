"""Admission control: a process-wide budget of working memory and running computations.

Each request's peak memory is estimated before it computes (engine.cost); the
process admits it only while the estimates of everything running, plus its own,
fit ``memory_bytes`` and fewer than ``max_running`` computations run. A request
that does not fit waits up to ``wait_seconds`` for others to finish, then gets a
503 with ``Retry-After``: a saturated replica says so at once rather than piling
up threads, memory and latency for everyone (the gateway can retry elsewhere).

It waits in the request's worker thread, never on the event loop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class Saturated(Exception):
    """The replica is at its budget; the client should come back later (a 503)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.node = None
        self.field = None
        self.limit = "memory_budget_bytes"


@dataclass
class Load:
    """What is admitted now: for /readyz and /metrics."""

    running: int
    bytes: float
    waiting: int


class Admission:
    """Admits computations while their estimated memory and their number fit."""

    def __init__(self, memory_bytes: float, max_running: int, wait_seconds: float) -> None:
        self.memory_bytes = memory_bytes
        self.max_running = max_running
        self.wait_seconds = wait_seconds
        self._running = 0
        self._bytes = 0.0
        self._waiting = 0
        self._free = threading.Condition()

    def load(self) -> Load:
        with self._free:
            return Load(self._running, self._bytes, self._waiting)

    def saturated(self) -> bool:
        """Whether a new request would have to wait now."""
        with self._free:
            return self._running >= self.max_running or self._waiting > 0

    @contextmanager
    def admitted(self, nbytes: float) -> Iterator[None]:
        """Hold ``nbytes`` of the budget and a running slot for the block."""
        self.enter(nbytes)
        try:
            yield
        finally:
            self.leave(nbytes)

    def enter(self, nbytes: float) -> None:
        """Take a slot and ``nbytes``, waiting up to ``wait_seconds``; Saturated if none.

        A request larger than the whole budget is admitted alone (the per-request
        limit bounds it), so it is never refused for a budget it could not ever fit.
        """
        deadline = time.monotonic() + self.wait_seconds
        with self._free:
            self._waiting += 1
            try:
                while not self._fits(nbytes):
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._free.wait(left):
                        if self._fits(nbytes):
                            break
                        raise Saturated(self._why(nbytes), self.retry_after())
            finally:
                self._waiting -= 1
            self._running += 1
            self._bytes += nbytes

    def leave(self, nbytes: float) -> None:
        with self._free:
            self._running -= 1
            self._bytes -= nbytes
            self._free.notify_all()

    def retry_after(self) -> int:
        """Seconds a client should wait: the wait it already had, at least one."""
        return max(1, math.ceil(self.wait_seconds))

    def _fits(self, nbytes: float) -> bool:
        if self._running >= self.max_running:
            return False
        return self._running == 0 or self._bytes + nbytes <= self.memory_bytes

    def _why(self, nbytes: float) -> str:
        return (
            f"the replica is saturated: {self._running} computations hold an estimated "
            f"{self._bytes / 2**20:.0f} MiB of its {self.memory_bytes / 2**20:.0f} MiB budget "
            f"(this one needs {nbytes / 2**20:.1f} MiB) and none finished within "
            f"{self.wait_seconds:g} s; retry later"
        )
