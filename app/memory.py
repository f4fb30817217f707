"""glibc's allocator, set up for a server whose requests allocate and free large arrays.

By default glibc raises its mmap threshold each time a large block is freed (up to
32 MiB), so later arrays of that size come from the heap instead, where memory freed in
the middle is kept by the process; and it gives each busy thread an arena of its own.
Under the hostile-load test that kept a replica's RSS past 1 GiB with only two small
requests in flight, although the admission budget held what was live under 384 MiB.
A fixed threshold returns every large array to the system when it is freed, and two
arenas keep what small objects leave behind small: the same test then peaks at 750 to
820 MiB. The settings are the documented ``mallopt`` ones (also ``MALLOC_ARENA_MAX``
and ``MALLOC_MMAP_THRESHOLD_`` in the environment); elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, now kept
ARENAS = 2


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD, arenas: int = ARENAS) -> bool:
    """Fix glibc's mmap threshold and cap its arenas; whether both were set."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_ARENA_MAX, arenas))
