"""A small pool of warm SymPy worker processes, each job under a hard time budget.

SymPy can hang in a simplification, and a Python thread cannot be stopped, so
SymPy runs in separate processes: a job that overruns its budget has its
worker killed and replaced, and the request thread is free at once. Workers
are started from a forkserver that has imported SymPy and the op table (the
server is multi-threaded, so plain fork is unsafe); they are reused between
jobs, and each keeps a cache of compiled derivatives per graph structure.

Only plain data crosses the process boundary: the job's node list with ops by
name, its values and what to compute (see engine.symbolic); never code.

As with any forkserver or spawn user, a script that runs checks when imported
needs the ``if __name__ == "__main__":`` guard (servers and pytest have it).
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

PRELOAD = ["numpy", "sympy", "engine.ops", "engine.symbolic"]
STARTUP_SECONDS = 60.0  # a fresh worker's start and warm-up; not charged to a job's budget
RECURSION_LIMIT = 20_000  # SymPy recurses once per nesting level of an expression
STACK_BYTES = 512 * 2**20  # reserved, not committed: room for that recursion


class WorkerTimeout(Exception):
    """The job ran past its budget (its worker was replaced), or no worker came free."""


class WorkerError(Exception):
    """The worker failed on the job or died; the message says how."""


def _context() -> Any:
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
    from engine import symbolic

    symbolic.warm_up()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", symbolic.run_job(job))
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

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def wait_ready(self, seconds: float) -> None:
        if self.ready:
            return
        if not self.conn.poll(seconds):
            raise WorkerTimeout(f"the SymPy worker did not start within {seconds:g} s")
        self.conn.recv()
        self.ready = True

    def kill(self) -> None:
        if self.conn.closed:
            return
        self.process.kill()
        self.process.join(2.0)
        self.conn.close()


class Pool:
    """Up to ``size`` warm workers; a job waits for a free one, within its own budget."""

    def __init__(self, size: int = 1):
        self.size = max(1, size)
        self._cond = threading.Condition()
        self._idle: list[Worker] = []
        self._workers: set[Worker] = set()  # idle and busy
        self._ctx: Any = None
        self._closed = False
        self.replaced = 0  # workers killed for overrunning, for tests and metrics

    def _spawn(self) -> Worker:
        """A new worker, counted in the pool (call with the lock held)."""
        if self._ctx is None:
            self._ctx = _context()
        worker = Worker(self._ctx)
        self._workers.add(worker)
        return worker

    def start(self) -> None:
        """Start every worker now; they come up while the caller goes on."""
        with self._cond:
            while len(self._workers) < self.size and not self._closed:
                self._idle.append(self._spawn())

    def pids(self) -> list[int | None]:
        """Process ids of the workers, idle and busy."""
        with self._cond:
            return [w.pid for w in self._workers]

    def _acquire(self, seconds: float) -> Worker:
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._idle:
                if self._closed:
                    raise WorkerError("the SymPy pool is shut down")
                if len(self._workers) < self.size:
                    try:
                        return self._spawn()
                    except OSError as e:  # no processes to be had: the check is skipped
                        raise WorkerError(f"cannot start a SymPy worker: {e}") from e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerTimeout(f"no SymPy worker came free within {seconds:g} s")
                self._cond.wait(left)
            return self._idle.pop()

    def _release(self, worker: Worker) -> None:
        with self._cond:
            if self._closed:
                self._workers.discard(worker)
                worker.kill()
            else:
                self._idle.append(worker)
            self._cond.notify()

    def _replace(self, worker: Worker) -> Worker | None:
        """Kill ``worker``; a fresh one takes its place, warm for the next job."""
        worker.kill()
        with self._cond:
            self._workers.discard(worker)
            self._cond.notify()
            if self._closed:
                return None
            try:
                return self._spawn()
            except Exception:  # the next job spawns one on demand
                return None

    def run(self, job: dict[str, Any], seconds: float) -> dict[str, Any]:
        """The worker's reply to ``job``; WorkerTimeout past ``seconds``, WorkerError on failure."""
        worker = self._acquire(seconds)
        keep: Worker | None = worker
        try:
            worker.wait_ready(STARTUP_SECONDS)
            worker.conn.send(job)
            if not worker.conn.poll(seconds):
                self.replaced += 1
                keep = self._replace(worker)
                raise WorkerTimeout(f"SymPy ran past its budget of {seconds:g} s")
            status, payload = worker.conn.recv()
        except (EOFError, OSError) as e:
            keep = self._replace(worker)
            raise WorkerError(f"the SymPy worker died: {type(e).__name__}") from e
        except WorkerTimeout:
            if keep is worker:  # it never started: replace it too
                keep = self._replace(worker)
            raise
        finally:
            if keep is not None:
                self._release(keep)
        if status != "ok":
            raise WorkerError(payload)
        return payload

    def close(self) -> None:
        """Stop every worker; busy ones are killed (their jobs end as errors)."""
        with self._cond:
            self._closed = True
            workers, self._idle = list(self._workers), []
            self._workers.clear()
            self._cond.notify_all()
        for w in workers:
            w.kill()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def get_pool(size: int = 1) -> Pool:
    """The process-wide pool, created (not started) on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = Pool(size)
            atexit.register(shutdown)
        return _pool


def start(size: int = 1) -> Pool:
    """Pre-warm the workers (for the app's startup), so the first check is not slow."""
    pool = get_pool(size)
    pool.start()
    return pool


def shutdown() -> None:
    """Stop every worker (the app's shutdown and interpreter exit call this)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()
