"""Turns at a renderer that works outside the engine's admission (matplotlib, Graphviz).

A render is bounded in time by its own limit, but not in number by the memory budget: a
picture's work starts once the engine's answer has given its room back, and ``dot`` is a
process of its own. Abandoned drawings from four clients ran up to forty ``dot``
processes at once, about 800 MB beside the server, with ``/healthz`` at 1.6 s (p99). So
renders take turns: one at a time per process for each kind, a wait of a few seconds for
a turn, then a 503 (``Saturated``); a request whose client has gone stops waiting within
``POLL_SECONDS`` (``engine.budget``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.admission import Saturated
from engine import budget

POLL_SECONDS = 0.1  # how often a waiting (or running) render asks whether its client is there


class Turns:
    """At most ``at_once`` renders of one kind in this process."""

    def __init__(self, at_once: int, wait_seconds: float, busy: str, limit: str) -> None:
        self._slots = threading.BoundedSemaphore(at_once)
        self.wait_seconds = wait_seconds
        self.busy = busy
        """The 503's detail: what kept the renderer busy."""
        self.limit = limit
        """The 503's ``limit``: the renders at once that were all taken."""

    @contextmanager
    def turn(self, what: str) -> Iterator[None]:
        """Hold a turn for the block: wait ``wait_seconds`` at most, then ``Saturated``;
        ``budget.check(what)`` stops the wait when the request is cancelled."""
        deadline = time.monotonic() + self.wait_seconds
        while not self._slots.acquire(timeout=POLL_SECONDS):
            budget.check(what)
            if time.monotonic() >= deadline:
                raise Saturated(f"{self.busy} for {self.wait_seconds:g} s; retry later",
                                retry_after=1, limit=self.limit)
        try:
            yield
        finally:
            self._slots.release()
