"""Admission control: a process-wide budget of working memory and running computations.

Each request's peak memory is estimated before it computes (engine.cost); the
process admits it only while the estimates of everything running, plus its own,
fit ``memory_bytes`` and fewer than ``max_running`` computations run. A request
that does not fit waits up to ``wait_seconds`` for others to finish, then gets a
503 with ``Retry-After``: a saturated replica says so at once rather than piling
up threads, memory and latency for everyone (the gateway can retry elsewhere).

A computation waits in its worker thread; a large body (``enter_body``), admitted when it
has arrived and before it is decoded, waits on the event loop by polling, never blocking
it. A body's bytes count from then until its response is sent, so bodies queued for
decoding and graphs built before their estimate cannot outgrow the budget.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass

COMPUTATION, BODY = "computation", "body"  # the two kinds of slot
BUDGET_LIMIT = "memory_budget_bytes"  # the setting a 503 of this budget names


class Saturated(Exception):
    """The replica is at its budget; the client should come back later (a 503)."""

    def __init__(self, detail: str, retry_after: int, limit: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.node = None
        self.field = None
        self.limit = limit


@dataclass
class Load:
    """What is admitted now: for /readyz and /metrics."""

    running: int
    bytes: float
    waiting: int


class Admission:
    """Admits computations while their estimated memory and their number fit, and large
    request bodies while their memory and their number fit (they are decoded, validated
    and built into a graph before any estimate exists)."""

    def __init__(self, memory_bytes: float, max_running: int, wait_seconds: float,
                 max_bodies: int | None = None) -> None:
        self.memory_bytes = memory_bytes
        self.max_running = max_running
        self.max_bodies = 2 * max_running if max_bodies is None else max_bodies
        self.wait_seconds = wait_seconds
        self._running = 0
        self._bodies = 0
        self._bytes = 0.0
        self._waiting = 0
        self._free = threading.Condition()

    def load(self) -> Load:
        with self._free:
            return Load(self._running, self._bytes, self._waiting)

    def saturated(self) -> bool:
        """Whether a new request would have to wait now."""
        with self._free:
            return (self._running >= self.max_running or self._bodies >= self.max_bodies
                    or self._waiting > 0)

    def enter(self, nbytes: float) -> None:
        """Take a computation slot and ``nbytes``, waiting up to ``wait_seconds`` in this
        (worker) thread; Saturated if none came free.

        A request larger than the whole budget is admitted alone (the per-request
        limit bounds it), so it is never refused for a budget it could not ever fit.
        """
        self._wait_for(nbytes, COMPUTATION)

    def grow(self, nbytes: float) -> None:
        """``nbytes`` more for an admitted computation, whose estimate grew as it learnt
        more (a sparse Hessian's colours); waits as ``enter`` does. Its ``leave`` then
        gives back the total."""
        self._wait_for(nbytes, None)

    def leave(self, nbytes: float) -> None:
        """Give back a computation's slot and all its bytes."""
        self._give(nbytes, COMPUTATION)

    async def enter_body(self, nbytes: float) -> None:
        """Take a body slot and ``nbytes`` for a large body, waiting up to ``wait_seconds``
        without blocking the event loop; Saturated if none came free."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.005
        while True:
            with self._free:
                if self._fits(nbytes, BODY):
                    self._take(nbytes, BODY)
                    return
            if time.monotonic() >= deadline:
                raise Saturated(self._why(nbytes), self.retry_after(), BUDGET_LIMIT)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 0.1)

    def leave_body(self, nbytes: float) -> None:
        self._give(nbytes, BODY)

    def retry_after(self) -> int:
        """Seconds a client should wait: the wait it already had, at least one."""
        return max(1, math.ceil(self.wait_seconds))

    def _wait_for(self, nbytes: float, slot: str | None) -> None:
        deadline = time.monotonic() + self.wait_seconds
        with self._free:
            self._waiting += 1
            try:
                while not self._fits(nbytes, slot):
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._free.wait(left):
                        if self._fits(nbytes, slot):
                            break
                        raise Saturated(self._why(nbytes), self.retry_after(), BUDGET_LIMIT)
            finally:
                self._waiting -= 1
            self._take(nbytes, slot)

    def _fits(self, nbytes: float, slot: str | None) -> bool:
        if slot == COMPUTATION and self._running >= self.max_running:
            return False
        if slot == BODY and self._bodies >= self.max_bodies:
            return False
        return self._bytes == 0 or self._bytes + nbytes <= self.memory_bytes

    def _take(self, nbytes: float, slot: str | None) -> None:
        if slot == COMPUTATION:
            self._running += 1
        elif slot == BODY:
            self._bodies += 1
        self._bytes += nbytes

    def _give(self, nbytes: float, slot: str) -> None:
        with self._free:
            if slot == COMPUTATION:
                self._running -= 1
            else:
                self._bodies -= 1
            self._bytes -= nbytes
            self._free.notify_all()

    def _why(self, nbytes: float) -> str:
        return (
            f"the replica is saturated: {self._running} computations and {self._bodies} large "
            f"bodies hold an estimated {self._bytes / 2**20:.0f} MiB of its "
            f"{self.memory_bytes / 2**20:.0f} MiB budget (this one needs "
            f"{nbytes / 2**20:.1f} MiB) and no room came free within {self.wait_seconds:g} s; "
            "retry later"
        )
