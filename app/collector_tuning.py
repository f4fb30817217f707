"""The cyclic garbage collector's youngest generation, sized for a server's requests.

Why: Python scans its youngest generation every 700 net allocations, and a request that
keeps a few thousand objects alive while it works (a graph of a thousand nodes decoded,
validated and built) sees them scanned several times and promoted to the older
generations, though they die with the request. Promoted objects then trigger full
passes over everything the process holds (about 110,000 objects from start-up alone:
modules, SymPy, pydantic's validators): 4 clients posting 64 KB graphs made 57 full
passes in 12 s, each 70 to 80 ms on whichever thread allocated, and /healthz waited up
to 70 ms. With a youngest generation of ``YOUNG_THRESHOLD`` objects such a request's
objects mostly die before a scan: the same load made 2 full passes, and answered half
as many requests again. A young scan then walks up to that many objects (none took 2 ms
in that run); the older generations keep Python's own thresholds.

``gc.freeze()`` after start-up was measured too: it made each full pass about 4 ms, but
it turns off the tapes' hand-over of a long tape's objects to the oldest generation
(engine.tape.collector), and a 10,000-node graph's gradient took 40 to 50% longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune(young: int = YOUNG_THRESHOLD) -> tuple[int, ...]:
    """Set the youngest generation's threshold (never lower than it was); the thresholds
    before, for ``restore``."""
    before = gc.get_threshold()
    gc.set_threshold(max(young, before[0]), *before[1:])
    return before


def restore(before: tuple[int, ...]) -> None:
    gc.set_threshold(*before)
