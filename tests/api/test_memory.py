"""The allocator is set up at start-up to give freed large arrays back (app.memory); the
hostile-load test (tests/load) measures what that does to a replica's RSS."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import main, memory
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_the_app_tunes_the_allocator_at_start_up(monkeypatch):
    calls: list[bool] = []
    monkeypatch.setattr(main, "tune_allocator", lambda: calls.append(memory.tune_allocator()))
    with TestClient(main.create_app(make_settings())) as client:
        assert client.get("/healthz").status_code == 200
    assert calls == [GLIBC]


# glibc's allocator, driven from a fresh process (each test's own heap).
LIBC = """
import ctypes, ctypes.util, sys
from app import memory


class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2: hblkhd, bytes in mmapped
    _fields_ = [(name, ctypes.c_size_t) for name in (  # blocks; keepcost, the heap's free top
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
"""
# A fresh process: in a test worker, earlier tests' large arrays may have been
# freed into the heap while glibc's threshold was still its own (dynamic), and a free run
# of 16 MiB there serves the block below without any new mapping, whatever the threshold.
MAPPED = LIBC + """
libc.mallopt(memory.M_MMAP_THRESHOLD, 32 * 2**20)  # as high as glibc raises it
assert memory.tune_allocator()
size = 16 * 2**20  # past the tuned threshold, under the raised one
libc.malloc_trim(0)
before = libc.mallinfo2().hblkhd
block = libc.malloc(size)
assert block
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(size, mapped - before, libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's")
def test_the_tuned_threshold_maps_a_large_block_and_unmaps_it_when_freed():
    done = subprocess.run([sys.executable, "-c", MAPPED], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    size, mapped, left = map(int, done.stdout.split())
    assert mapped >= size  # its own mapping, not heap memory
    assert left == 0  # and given back to the system at once


# Freed heap blocks at the top of the heap: glibc's own setting gives all but 128 KiB
# back at once; the tuned one keeps ``TOP_PAD`` mapped for the next request's arrays.
KEPT = LIBC + """
if sys.argv[1] == "tuned":
    assert memory.tune_allocator()
blocks = [libc.malloc(80_000) for _ in range(100)]  # 100 arrays of 10,000 doubles
assert all(blocks)
for block in reversed(blocks):
    libc.free(block)
print(libc.mallinfo2().keepcost)
"""


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's")
def test_the_tuned_allocator_keeps_freed_heap_pages_for_the_next_request():
    def kept(how: str) -> int:
        done = subprocess.run([sys.executable, "-c", KEPT, how], capture_output=True,
                              text=True, cwd=ROOT, check=True, timeout=60)
        return int(done.stdout)

    assert kept("glibc's own") < 2**20  # the freed 8 MB went back to the system
    assert kept("tuned") >= 100 * 80_000  # all kept, up to memory.TOP_PAD
