"""glibc's allocator, set up for a server whose requests allocate and free large arrays.

By default glibc raises its mmap threshold each time a large block is freed (up to
32 MiB), so later arrays of that size come from the heap instead, where memory freed in
the middle is kept by the process; and it gives each busy thread an arena of its own.
Under the hostile-load test that kept a replica's RSS past 1 GiB with only two small
requests in flight, although the admission budget held what was live under 384 MiB.
A fixed threshold returns every large array to the system when it is freed, and two
arenas keep what small objects leave behind small: the same test then peaks at 750 to
833 MiB. The settings are the documented ``mallopt`` ones (also ``MALLOC_ARENA_MAX``
and ``MALLOC_MMAP_THRESHOLD_`` in the environment); elsewhere than glibc this does nothing.

The price is a fresh, zeroed mapping for every large array: a dense n = 1000 Hessian
takes 64 to 67 ms as a whole request (bench), against 45 to 55 ms when its 8 MB arrays
come from the heap. The middle ways were measured and refused, for the hostile test's margin:
a fixed 32 MiB threshold alone fails it (1065 MiB) and keeps ~60 MiB after a burst; with
``malloc_trim(0)`` (0.35 ms, off the event loop) once a request of 32 MiB or more gives
back its room, RSS falls back after bursts and the Hessian takes 53 to 54 ms, but the
test peaks at 820 to 944 MiB (16 MiB threshold: 866 to 989 MiB) of its 1 GiB.

Smaller arrays come from the heap, and glibc gives its top back to the system as soon as
128 KiB lie free there: a request's arrays of a few KiB to 128 KiB then land on fresh
pages each time, which the kernel must map and zero. A gradient over 10,000 points of a
50-op chain (100 arrays of 80 KB) spent a third of its time so (4.2 ms; 2.9 ms on kept
pages). ``TOP_PAD`` is kept at the top of each arena when it is trimmed
(``MALLOC_TOP_PAD_``), so such a request finds its pages mapped: at most ``ARENAS`` x
``TOP_PAD`` held beyond glibc's own. The hostile-load test peaked at 805 and 857 MiB with
it, 833 and 868 MiB without.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_TOP_PAD = -2
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, now kept
TOP_PAD = 16 * 2**20
ARENAS = 2


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD, arenas: int = ARENAS,
                   top_pad: int = TOP_PAD) -> bool:
    """Fix glibc's mmap threshold, cap its arenas and keep ``top_pad`` at each arena's top;
    whether all were set."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all([mallopt(M_MMAP_THRESHOLD, mmap_threshold), mallopt(M_ARENA_MAX, arenas),
                mallopt(M_TOP_PAD, top_pad)])
