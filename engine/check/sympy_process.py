"""One SymPy worker process: its entry point, its job loop, and our handle on it.

Workers are started from a forkserver that has imported SymPy and the op table (the
server is multi-threaded, so plain fork is unsafe). Only plain data crosses the
pipe: a job in (engine.check.sympy_job), a reply out; never code. The pool that lends
workers to jobs is engine.check.sympy_pool.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

PRELOAD = ["numpy", "sympy", "engine.ops", "engine.check.symbolic", "engine.check.sympy_job",
           "engine.check.sympy_symbolic"]
RECURSION_LIMIT = 20_000  # SymPy recurses once per nesting level of an expression
STACK_BYTES = 512 * 2**20  # reserved, not committed: room for that recursion


def context() -> Any:
    """A forkserver that has imported SymPy and the op table (spawn where there is none)."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


def _serve(conn: Connection) -> None:
    """Worker entry: serve jobs on a thread with a deep stack (SymPy recurses per level)."""
    sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(STACK_BYTES)
    thread = threading.Thread(target=_loop, args=(conn,), name="sympy-jobs")
    thread.start()
    thread.join()


def _loop(conn: Connection) -> None:
    """A job in, a reply out, until the pipe closes or ``None`` arrives."""
    from engine.check import sympy_job

    sympy_job.warm_up()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", sympy_job.run_job(job))
        except RecursionError:
            reply = ("error", "the expression nests too deeply for SymPy")
        except Exception as e:  # a job's failure is reported, the worker lives on
            reply = ("error", f"{type(e).__name__}: {e}"[:500])
        conn.send(reply)


class Worker:
    """One worker process and our end of its pipe."""

    def __init__(self, ctx: Any):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True,
                                   name="sympy-worker")
        self.process.start()
        child.close()
        self.ready = False
        self.dead = False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def poll_ready(self) -> bool:
        """Whether its warm-up is done, without waiting (a dead one is marked ``dead``)."""
        if self.ready or self.dead or self.conn.closed:
            return self.ready
        try:
            if self.conn.poll(0):
                self.conn.recv()
                self.ready = True
        except (EOFError, OSError):
            self.dead = True
        return self.ready

    def wait_ready(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for its warm-up: whether it is done."""
        if self.ready:
            return True
        if not self.conn.poll(seconds):
            return False
        self.conn.recv()
        self.ready = True
        return True

    def kill(self) -> None:
        if self.conn.closed:
            return
        self.process.kill()
        self.process.join(2.0)
        self.conn.close()
