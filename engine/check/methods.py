"""The two independent methods on one job, each compared with the tape entry by entry.

SymPy runs in a worker process (engine.check.sympy_pool) under its budget; finite
differences run here (engine.check.finite_differences) under theirs. Both read the
tape's entries through ``agreement.tape_values`` (and a Hessian's laid-out ``matrix``
and ``sparse`` through ``agreement.laid_values``, against the same reference entries
gathered), so a kind compares the same entries either way. Neither checker is
imported until its method runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.check.agreement import (
    QUANTITIES,
    CheckReport,
    Tally,
    get_path,
    laid_values,
    or_zeros,
    tape_values,
)
from engine.check.limits import CheckLimits, budget_work

if TYPE_CHECKING:
    from engine.derive.query import Result


def numeric_deadline(limits: CheckLimits) -> float:
    """When finite differences stop: their own budget, or the request's if that ends first."""
    from engine import budget

    deadline = time.monotonic() + limits.numeric_seconds
    left = budget.remaining()
    if left is not None:
        deadline = min(deadline, time.monotonic() + left)
    return deadline


def by_sympy(job: dict[str, Any], result: Result, unwatched: list[str], limits: CheckLimits,
             work: int = 0, heavy: bool = False, local_only: bool = False) -> CheckReport:
    """SymPy's reference for ``job`` within the budget, compared with the tape.

    The budget covers the wait for a worker too; ``work`` (the estimate) and ``heavy``
    decide how the job queues (engine.check.sympy_pool.Admission), and a refusal is a
    ``timeout`` whose detail starts with "SymPy workers busy". Entries SymPy gave no
    number for (kinks, unevaluated) are not compared, and the report says so.
    """
    from engine import budget
    from engine.check import shared_checks, sympy_pool
    from engine.check.sympy_job import structure_key

    seconds = limits.sympy_seconds
    left = budget.remaining()
    if left is not None:
        seconds = max(0.05, min(seconds, left))
    tally = Tally(limits.sympy_rtol, limits.sympy_atol, limits.max_disagreements,
                  job["sources"])
    admission = sympy_pool.Admission(work=work, heavy=heavy, wait=limits.sympy_queue_seconds,
                                       max_ahead=budget_work(limits))
    pool = sympy_pool.get_pool(limits.sympy_workers)
    try:  # a structure derived before, here or on another replica, is evaluated here
        reply = shared_checks.reply(job, structure_key(job),
                                    lambda j: pool.run(j, seconds, admission), local_only)
    except sympy_pool.WorkerBusy as e:
        return tally.report("sympy", status="timeout", detail=f"{e}; not checked by SymPy")
    except sympy_pool.WorkerTimeout as e:
        return tally.report("sympy", status="timeout", detail=str(e))
    except sympy_pool.WorkerError as e:
        return tally.report("sympy", status="skipped", detail=f"SymPy failed: {e}")
    last = QUANTITIES[job["quantities"][-1]]
    skip: dict[tuple, list] = {}
    for entry in reply["kinks"] + reply["unevaluated"]:  # [*path, index]
        skip.setdefault(tuple(entry[:-1]), []).append(tuple(entry[-1]))
    if reply["kinks"]:
        k = len(reply["kinks"])
        tally.notes.append(f"{k} {'entry' if k == 1 else 'entries'} at a kink{last.kink} "
                           "or at a point an op settles by convention (xlogy's d/dx at "
                           "x = 0), where the derivative is undefined or another number, "
                           "not compared: the tape follows its convention there")
    if reply["unevaluated"]:
        tally.notes.append(f"{len(reply['unevaluated'])} entries SymPy left unevaluated "
                           "not compared")
    zero = {tuple(p) for p in reply["zero"]}

    def skipped(path: tuple, shape: tuple[int, ...]) -> np.ndarray:
        mask = np.zeros(shape, dtype=bool)
        for idx in skip.get(path, ()):
            mask[idx] = True
        return mask

    for path, tape in tape_values(job, result, unwatched, tally):
        ref = get_path(reply["values"], path)
        mask = skipped(path, np.shape(ref)) if path in skip else None  # None: nothing skipped
        if tape is None and path in zero:
            tally.notes.append(f"{'/'.join(path[1:])}: None on the tape (no path); the "
                               "symbolic derivative is 0 (away from kinks)")
            tape = np.zeros(np.shape(ref))
        elif tape is None:
            tally.structural(path, "the tape found no path, but the symbolic derivative "
                                   f"is not identically 0: "
                                   f"{get_path(reply['text'], path, False)}")
            continue
        tally.add(path, tape, ref, skip=mask)
    grid, laid = laid_values(job["quantities"], result, job.get("layout"), tally)
    if laid:
        refs = grid.place(job["sources"], lambda p: get_path(reply["values"], p), 0.0)
        masks = grid.place(job["sources"],
                           lambda p: skipped(p, np.shape(get_path(reply["values"], p))), False)
        for item in laid:
            tally.add(item.path, item.tape, refs[item.at], skip=masks[item.at],
                      named=item.names)
    report = tally.report("sympy", last.sympy_is)
    report.symbolic, report.latex = reply["text"], reply["latex"]
    return report


def by_numeric(job: dict[str, Any], result: Result, unwatched: list[str], limits: CheckLimits
               ) -> CheckReport:
    """Central finite differences (a numpy re-run for values), compared with the tape."""
    from engine.check import finite_differences as numeric

    deadline = numeric_deadline(limits)
    tally = Tally(limits.numeric_rtol, limits.numeric_atol, limits.max_disagreements,
                  job["sources"])
    notes: list[str] = []  # what the estimates leave out
    try:
        runner = numeric.Runner(job, deadline)
        refs: dict[tuple, numeric.Estimate] = {}
        for q in job["quantities"]:
            refs.update(numeric.ESTIMATES[q](runner, job, notes))
    except numeric.NumericTimeout:
        return tally.report("numeric", status="timeout",
                            detail="finite differences ran past their budget of "
                                   f"{limits.numeric_seconds:g} s")
    jumps = undefined = 0

    def compare(path: tuple, tape: np.ndarray, est: numeric.Estimate,
                named: Callable[[int], dict[str, Any]] | None = None) -> None:
        nonlocal jumps, undefined
        # a step that leaves the domain gives NaN (or an infinity) where the tape has a
        # number: no reference; nor is a NaN on both sides an agreement (the tape's NaN
        # where a true second derivative is 0 would pass as one)
        off = (~np.isfinite(est.value) & np.isfinite(tape)) | (np.isnan(est.value)
                                                              & np.isnan(tape))
        jumps, undefined = jumps + int(est.jump.sum()), undefined + int(off.sum())
        tally.add(path, tape, est.value, skip=est.jump | off, extra=4 * est.error, interval=est,
                  named=named)

    for path, tape in tape_values(job, result, unwatched, tally):
        est = refs.get(path)
        if est is None:  # beyond what finite differences estimate: ``notes`` says so
            continue
        compare(path, or_zeros(tape, est.value, path, tally), est)
    grid, laid = laid_values(job["quantities"], result, job.get("layout"), tally)
    if laid:
        fills = {"kink": False, "jump": False}
        fields = {f: grid.place(job["sources"], lambda p, f=f: getattr(refs[p], f),
                                fills.get(f, 0.0))
                  for f in numeric.Estimate.__annotations__}
        for item in laid:
            compare(item.path, item.tape,
                    numeric.Estimate(*(fields[f][item.at] for f in fields)), item.names)
    if jumps:
        tally.notes.append(f"{jumps} entries at a discontinuity not compared")
    if undefined:
        tally.notes.append(f"{undefined} entries where a finite-difference step leaves the "
                           "domain (no reference) not compared")
    tally.notes.extend(notes)
    report = tally.report("numeric", QUANTITIES[job["quantities"][-1]].numeric_is)
    report.error_estimate = tally.error_estimate
    return report
