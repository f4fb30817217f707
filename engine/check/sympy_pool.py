"""A small pool of warm SymPy worker processes, each job under a hard time budget.

SymPy can hang in a simplification, and a Python thread cannot be stopped, so
SymPy runs in separate processes (engine.check.sympy_process): a job that
overruns its budget has its worker killed and replaced, and the request thread
is free at once. Workers are reused between jobs, and each keeps a cache of
compiled derivatives per graph structure.

Only plain data crosses the process boundary: the job's node list with ops by
name, its values and the quantities to compute (see engine.check.sympy_job);
never code.

Fairness: a job's budget covers its wait for a worker as well as its run, and
it waits only briefly behind other jobs (``Admission``): when no worker comes
free in that wait, or the work queued ahead is more than a budget's worth, it
is refused at once (``WorkerBusy``) so the caller can fall back. Heavy jobs
(past ``check: auto``'s lines) may hold all workers but one, so one client
sending them cannot starve the small checks of everyone else.

As with any forkserver or spawn user, a script that runs checks when imported
needs the ``if __name__ == "__main__":`` guard (servers and pytest have it).
"""

from __future__ import annotations

import atexit
import threading
import time
from dataclasses import dataclass
from typing import Any

from engine.check import sympy_process
from engine.check.sympy_process import Worker

DEFAULT_WORKERS = 2  # one per core of a replica; ~67 MB RSS each (24 MB private), measured
# A cold pool's start and warm-up (before any worker of it was ready); not charged to a
# job's budget. Once warm, waiting for a replaced worker is charged like any other wait.
STARTUP_SECONDS = 60.0
POLL_SECONDS = 0.02  # how often a waiting job looks for a worker that finished starting


class WorkerTimeout(Exception):
    """The job ran past its budget (its worker was replaced), or no worker came free."""


class WorkerBusy(WorkerTimeout):
    """No worker came free within the job's short wait, or too much work is queued ahead:
    refused at once so that the caller falls back instead of queueing."""


class WorkerError(Exception):
    """The worker failed on the job or died; the message says how."""


@dataclass(frozen=True)
class Admission:
    """How long a job may queue: the defaults (whole budget, no limit ahead) suit a lone
    caller; a check passes the estimate and the short wait (engine.check.methods)."""

    work: int = 0
    """Estimated units of symbolic work (engine.check.job.sympy_work)."""
    heavy: bool = False
    """Past ``auto``'s lines: may hold every worker but one (with two or more)."""
    wait: float | None = None
    """Longest wait behind other jobs, seconds; None: the whole budget."""
    max_ahead: int | None = None
    """Refuse at once when the estimated work queued ahead exceeds this; None: never."""


@dataclass(eq=False)
class _Waiter:
    """A job in the queue, in arrival order."""

    work: int
    heavy: bool


class Pool:
    """Up to ``size`` warm workers, lent to jobs in arrival order within each job's budget."""

    def __init__(self, size: int = 1):
        self.size = max(1, size)
        self._cond = threading.Condition()
        self._idle: list[Worker] = []  # free: warm, or still starting
        self._workers: set[Worker] = set()  # idle and busy
        self._held: dict[Worker, bool] = {}  # busy workers: whether their job is heavy
        self._queue: list[_Waiter] = []  # jobs waiting for a worker, in arrival order
        self._ctx: Any = None
        self._closed = False
        self._warm = False  # a worker was ready once: from then on every wait is charged
        self.replaced = 0  # workers killed for overrunning, for tests and metrics
        self.refused = 0  # jobs refused as busy, for tests and metrics

    def _spawn(self) -> Worker:
        """A new worker, counted in the pool (call with the lock held)."""
        if self._ctx is None:
            self._ctx = sympy_process.context()
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

    def stats(self) -> dict[str, int]:
        """Busy workers (and how many heavy), jobs waiting, workers replaced, jobs refused."""
        with self._cond:
            return {"busy": len(self._held), "heavy": sum(self._held.values()),
                    "waiting": len(self._queue), "replaced": self.replaced,
                    "refused": self.refused}

    def warm(self, seconds: float) -> bool:
        """Wait until every worker finished starting (tests and benchmarks; the service
        does not wait): whether they all did within ``seconds``."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not all(w.poll_ready() for w in self._idle) or self._held:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, POLL_SECONDS))
            self._warm = self._warm or bool(self._idle)
            return True

    # -------------------------------------------------------------- admission

    def _heavy_may_start(self, ready: int) -> bool:
        """Heavy jobs leave a worker to the rest: at most ``size - 1`` of them at once, and
        never the last warm one (a lone worker serves everything)."""
        if self.size == 1:
            return True
        return sum(self._held.values()) < self.size - 1 and ready >= 2

    def _is_next(self, me: _Waiter, ready: int) -> bool:
        """``me`` is the first waiter that may take a worker now: arrival order, except that
        a heavy job held back by the rule above lets the ones behind it pass."""
        for w in self._queue:
            if not w.heavy or self._heavy_may_start(ready):
                return w is me
        return False

    def _ready_idle(self) -> list[Worker]:
        """The idle workers that finished starting; dead ones leave the pool."""
        ready = []
        for w in list(self._idle):
            if w.poll_ready():
                ready.append(w)
            elif w.dead:
                self._idle.remove(w)
                self._workers.discard(w)
                w.kill()
        self._warm = self._warm or bool(ready)
        return ready

    def _fill(self) -> None:
        """Spawn the workers the pool lacks (never started, or a replacement failed)."""
        while len(self._workers) < self.size:
            try:
                self._idle.append(self._spawn())
            except OSError as e:  # no processes to be had: the check is skipped
                if not self._workers:
                    raise WorkerError(f"cannot start a SymPy worker: {e}") from e
                return

    def _take(self, me: _Waiter) -> Worker | None:
        """A worker for ``me`` if it is its turn and one is free (call with the lock held)."""
        self._fill()
        ready = self._ready_idle()
        if not self._is_next(me, len(ready)):
            return None
        pick = ready[0] if ready else None
        if pick is None and not self._warm and self._idle:
            pick = self._idle[0]  # a cold pool: ``run`` waits for its start-up, uncharged
        if pick is not None:
            self._idle.remove(pick)
            self._held[pick] = me.heavy
        return pick

    def _refuse_long_queue(self, me: _Waiter, max_ahead: int | None) -> None:
        """WorkerBusy when the work of the jobs that would be served first exceeds
        ``max_ahead``: heavy ones wait behind everyone, light ones only behind light ones."""
        ahead = sum(w.work for w in self._queue if me.heavy or not w.heavy)
        if max_ahead is not None and ahead > max_ahead:
            self.refused += 1
            raise WorkerBusy(f"SymPy workers busy: an estimated {ahead} units of work queued "
                             f"ahead, over the {max_ahead} of one budget")

    def _wait_end(self, me: _Waiter, short_end: float, budget_end: float, start: float
                  ) -> float:
        """When ``me`` stops waiting: behind other jobs, after the short wait; else for a
        worker to finish starting, within the budget (a cold pool: its start-up)."""
        if self._held or self._queue[0] is not me:
            return short_end
        if not self._warm:
            return max(budget_end, start + STARTUP_SECONDS)
        return budget_end

    def _acquire(self, seconds: float, admission: Admission) -> Worker:
        start = time.monotonic()
        wait = seconds if admission.wait is None else min(admission.wait, seconds)
        me = _Waiter(admission.work, admission.heavy)
        with self._cond:
            self._refuse_long_queue(me, admission.max_ahead)
            self._queue.append(me)
            try:
                while True:
                    if self._closed:
                        raise WorkerError("the SymPy pool is shut down")
                    worker = self._take(me)
                    if worker is not None:
                        return worker
                    end = self._wait_end(me, start + wait, start + seconds, start)
                    if time.monotonic() >= end:
                        raise self._gave_up(time.monotonic() - start)
                    self._cond.wait(min(end - time.monotonic(), POLL_SECONDS))
            finally:
                self._queue.remove(me)
                self._cond.notify_all()

    def _gave_up(self, waited: float) -> WorkerTimeout:
        """Busy if other jobs hold or wait for the workers, else a worker slow to start."""
        if self._held or len(self._queue) > 1:
            self.refused += 1
            return WorkerBusy(f"SymPy workers busy: none came free within {waited:.2g} s")
        return WorkerTimeout(f"no SymPy worker finished starting within {waited:.2g} s")

    def _release(self, worker: Worker) -> None:
        with self._cond:
            self._held.pop(worker, None)
            if self._closed:
                self._workers.discard(worker)
                worker.kill()
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    def _replace(self, worker: Worker) -> None:
        """Kill ``worker``; a fresh one takes its place and warms up for a later job. The
        kill and its reaping run on a thread of their own, so the job's caller answers at
        its budget, not after the old process is gone."""
        threading.Thread(target=worker.kill, name="sympy-reaper", daemon=True).start()
        with self._cond:
            self._held.pop(worker, None)
            self._workers.discard(worker)
            self._cond.notify_all()
            if not self._closed:
                try:
                    self._idle.append(self._spawn())
                except Exception:  # the next job spawns one on demand
                    pass

    # -------------------------------------------------------------- running a job

    def run(self, job: dict[str, Any], seconds: float, admission: Admission = Admission()
            ) -> dict[str, Any]:
        """The worker's reply to ``job`` within ``seconds`` all told, the wait for a worker
        included: WorkerBusy when refused by ``admission``, WorkerTimeout past the budget,
        WorkerError on failure."""
        start = time.monotonic()
        worker = self._acquire(seconds, admission)
        if not worker.ready:  # a cold pool's first worker
            self._start_up(worker)
            start = time.monotonic()
        status, payload = self._exchange(worker, job, seconds - (time.monotonic() - start),
                                         seconds)
        if status != "ok":
            raise WorkerError(payload)
        return payload

    def _start_up(self, worker: Worker) -> None:
        """Wait for a cold pool's worker to warm up; one that cannot is replaced."""
        try:
            if not worker.wait_ready(STARTUP_SECONDS):
                raise WorkerTimeout(f"the SymPy worker did not start within {STARTUP_SECONDS:g} s")
        except (WorkerTimeout, EOFError, OSError) as e:
            self._replace(worker)
            raise WorkerError(f"the SymPy worker did not start: {e or type(e).__name__}") from e
        self._warm = True

    def _exchange(self, worker: Worker, job: dict[str, Any], left: float, seconds: float
                  ) -> tuple[str, Any]:
        """Send ``job`` and wait ``left`` seconds for the reply; an overrun or a death
        replaces the worker, anything else gives it back to the pool."""
        keep = True
        try:
            if left <= 0:
                raise WorkerTimeout(f"SymPy's budget of {seconds:g} s went on waiting for a "
                                    "worker")
            worker.conn.send(job)
            if not worker.conn.poll(left):
                self.replaced += 1
                keep = False
                self._replace(worker)
                raise WorkerTimeout(f"SymPy ran past its budget of {seconds:g} s")
            return worker.conn.recv()
        except (EOFError, OSError) as e:
            keep = False
            self._replace(worker)
            raise WorkerError(f"the SymPy worker died: {type(e).__name__}") from e
        finally:
            if keep:
                self._release(worker)

    def close(self) -> None:
        """Stop every worker; busy ones are killed (their jobs end as errors)."""
        with self._cond:
            self._closed = True
            workers, self._idle = list(self._workers), []
            self._workers.clear()
            self._held.clear()
            self._cond.notify_all()
        for w in workers:
            w.kill()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def get_pool(size: int = DEFAULT_WORKERS) -> Pool:
    """The process-wide pool, created (not started) on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = Pool(size)
            atexit.register(shutdown)
        return _pool


def start(size: int = DEFAULT_WORKERS) -> Pool:
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
