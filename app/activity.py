"""Whether a compute request is alone: nothing else computing, no other client lately.

A request computed on the event loop makes everything that arrives meanwhile wait, so
only a request that nobody is likely to wait behind may spend more than a tick there
(app.dispatch). Requests of other clients come on other connections: one that started a
compute request within the last ``WINDOW_SECONDS`` is probably about to send another (a
flood of 16 clients each waiting for its answer), while a single client's requests, one
after another on its connection, wait behind nobody. Costs a dictionary update per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

WINDOW_SECONDS = 0.01


class Activity:
    """Compute requests in flight, and when each connection last started one (event loop
    only: no lock)."""

    def __init__(self, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.computing = 0
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def start(self, connection: Hashable) -> bool:
        """Count a compute request of ``connection`` (ASGI's ``client``: host and port) in;
        whether it is alone (nothing else computing, no other connection started one
        within the window). ``end`` counts it out. A connection that cannot be told apart
        from others is never alone: behind a gateway that forwards the client's address
        (``--proxy-headers``), every client of one host has port 0."""
        now = self.clock()
        last = self._last
        while last:
            oldest, when = next(iter(last.items()))
            if now - when <= self.window:
                break
            del last[oldest]
        others = len(last) - (connection in last)
        last[connection] = now
        last.move_to_end(connection)
        self.computing += 1
        known = type(connection) in (tuple, list) and len(connection) == 2 and connection[1]
        return bool(known) and others == 0 and self.computing == 1

    def end(self) -> None:
        self.computing -= 1
