"""The one bounded cache: the least recently used entry goes first, reads count as use."""

from __future__ import annotations

import threading

from engine.lru import LRU


def test_the_least_recently_used_entry_goes_first_and_a_read_counts_as_use():
    cache: LRU[str, int | None] = LRU(2)
    cache.put("a", 1)
    cache.put("b", None)
    assert cache.get("a") == 1  # now "b" is the least recent
    cache.put("c", 3)
    assert len(cache) == 2
    assert cache.get("b", "gone") == "gone"
    assert cache.get("a") == 1 and cache.get("c") == 3


def test_a_stored_none_is_told_from_a_missing_entry():
    cache: LRU[str, None] = LRU(4)
    cache.put("x", None)
    missing = object()
    assert cache.get("x", missing) is None and cache.get("y", missing) is missing


def test_threads_never_push_it_past_its_size():
    cache: LRU[int, int] = LRU(8)

    def fill(start: int) -> None:
        for k in range(start, start + 2000):
            cache.put(k, k)
            cache.get(k - 3)

    threads = [threading.Thread(target=fill, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 8
