"""The check policy: which independent method checks a result, and the fallback.

``check`` builds the plain-data job (engine.check.job) and runs the method asked for:
``sympy``, ``numeric``, or ``auto``, which is SymPy while the job is within its lines,
finite differences past them or when SymPy gives no answer in time, and nothing when
neither fits. Every kind goes through here; kinds differ only in the quantities they
compare (``Kind.compares``). Nothing that runs a method is imported or started when
the method is ``none``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from engine.check import methods
from engine.check.agreement import CheckReport
from engine.check.job import (
    planned_job,
    sympy_plan,
    sympy_too_big,
    sympy_work,
)
from engine.check.limits import CheckLimits
from engine.check.shared_checks import NotLocal

if TYPE_CHECKING:
    from engine.derive.kinds import Kind
    from engine.derive.query import Query, Result

log = logging.getLogger("engine.check.verify")
BUSY = "SymPy workers busy"  # how a refused (not overrun) SymPy check's detail starts
DEFAULT_LIMITS = CheckLimits()


def check(kind: Kind, query: Query, result: Result, method: str = "auto",
          limits: CheckLimits = DEFAULT_LIMITS, local_only: bool = False) -> CheckReport:
    """Cross-check ``result`` of ``kind`` by ``method``; never raises for numerical reasons.

    Skipped for ``none``, timed, a checker bug turned into ``skipped`` (it must not fail
    the request it checks), and a disagreement logged loudly. ``local_only``: only from
    SymPy's derivative compiled in this process (engine.check.shared_checks), else
    NotLocal, before anything waits or differentiates numerically (a caller on an event
    loop, which then checks in a thread).
    """
    if method == "none":
        return CheckReport(method="none", status="skipped", detail="check not requested")
    start = time.perf_counter()
    try:
        report = _check(kind, query, result, method, limits, local_only)
    except NotLocal:
        raise
    except Exception as e:
        log.exception("check %s of a %s failed", method, kind.name)
        report = CheckReport(method=method if method != "auto" else "none", status="skipped",
                             detail=f"the check failed: {type(e).__name__}: {e}"[:300])
    report.elapsed_ms = round((time.perf_counter() - start) * 1000, 3)
    if report.status == "disagree":
        log.warning("%s check of a %s disagrees with the tape: %s", report.method, kind.name,
                    report.detail)
    return report


def _check(kind: Kind, query: Query, result: Result, method: str, limits: CheckLimits,
           local_only: bool = False) -> CheckReport:
    """The one policy every kind goes through: auto -> SymPy -> numeric fallback."""
    job, plan, unwatched = planned_job(kind, query, result, limits)
    shapes = plan.shapes
    why = plan.unchecked
    if why:
        return CheckReport(method="none", status="skipped", detail=why)
    if method == "auto":
        sympy_why, work = plan.sympy_auto
        numeric_ok, numeric_why = plan.numeric
        if not sympy_why:
            assert work is not None  # estimated on the way to "within SymPy's lines"
            report = methods.by_sympy(job, result, unwatched, limits, work,
                                      local_only=local_only)
            if not sympy_failed(report) or not numeric_ok:
                return report
            return fell_back(report, methods.by_numeric(job, result, unwatched, limits))
        if numeric_ok:
            _not_local(local_only)
            report = methods.by_numeric(job, result, unwatched, limits)
            report.detail = f"{report.detail} (not SymPy: {sympy_why})"
            return report
        return CheckReport(method="none", status="skipped",
                           detail=f"too large to check: {sympy_why}; {numeric_why}")
    if method == "sympy":
        auto_why, work = plan.sympy_auto  # the work, unless a cheaper line said no first
        if work is None:
            work = sympy_work(job, shapes)
        why, heavy = sympy_plan(auto_why, sympy_too_big(job, shapes, limits, auto=False),
                                work, limits)
        if why:
            return CheckReport(method="sympy", status="skipped", detail=why)
        return methods.by_sympy(job, result, unwatched, limits, work, heavy, local_only)
    if method == "numeric":
        _not_local(local_only)
        fits, why = plan.numeric_asked
        if not fits:
            return CheckReport(method="numeric", status="skipped",
                               detail=f"too large to check by finite differences: {why}")
        return methods.by_numeric(job, result, unwatched, limits)
    return CheckReport(method="none", status="skipped", detail=f"unknown method {method!r}")


def _not_local(local_only: bool) -> None:
    """Finite differences run the graph again and again: not for a local-only check."""
    if local_only:
        raise NotLocal("finite differences run the graph many times")


def sympy_failed(report: CheckReport) -> bool:
    """SymPy gave no reference (overrun, busy, or failed): ``auto`` may fall back."""
    return report.status == "timeout" or report.detail.startswith("SymPy failed")


def fell_back(sympy: CheckReport, numeric: CheckReport) -> CheckReport:
    """The numeric report, its detail saying why SymPy did not answer."""
    if sympy.detail.startswith(BUSY):
        numeric.detail = f"{BUSY}; checked by finite differences: {numeric.detail}"
    else:
        numeric.detail = f"SymPy: {sympy.detail}; so numeric: {numeric.detail}"
    return numeric
