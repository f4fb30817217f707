"""The independent check of ``derivative``: SymPy at every order, finite differences to two.

``engine.check.verify`` checks the four fixed kinds; every order up to k needs its own
symbolic quantities, so this module builds the same plain-data job (through
``verify.build_job``), lets the SymPy worker differentiate it k times
(``run_symbolic``, reached from ``engine.check.symbolic.run_job``), and compares with
``agreement.Tally``. Finite differences beyond the second order lose most of
float64's digits, so ``numeric`` compares orders 1 and 2 and says so.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.check import verify
from engine.check.agreement import CheckReport, Tally

if TYPE_CHECKING:
    from engine.derive.derivatives import Query, Result

NUMERIC_ORDERS = 2  # central differences are trusted up to here
DEFAULT_LIMITS = verify.CheckLimits()


def check(query: Query, result: Result, order: int, method: str = "auto",
          limits: verify.CheckLimits = DEFAULT_LIMITS) -> CheckReport:
    """Cross-check every order of ``result.derivatives``; never raises for numerical reasons."""
    return verify.guarded(method, "derivative", lambda: _check(query, result, order, method,
                                                              limits))


def _check(query: Query, result: Result, order: int, method: str,
           limits: verify.CheckLimits) -> CheckReport:
    job, shapes, _ = verify.build_job("gradient", query, result, limits)
    job.update(kind="derivative", order=order)
    if not job["sources"]:
        return CheckReport(method="none", status="skipped", detail="no watched source")
    numeric_ok, numeric_why = verify._numeric_fits(
        "hessian" if order > 1 else "gradient", job, shapes, limits)
    if method in ("auto", "sympy"):
        work = _work(job, shapes, order)
        too_big, heavy = _sympy_too_big(job, shapes, order, limits, auto=True), False
        if method == "sympy":
            explicit = _sympy_too_big(job, shapes, order, limits, auto=False)
            too_big, heavy = verify.sympy_plan(too_big, explicit, work, limits)
        if not too_big:
            report = _by_sympy(job, result, limits, work, heavy)
            if method == "sympy" or not verify.sympy_failed(report) or not numeric_ok:
                return report
            return verify.fell_back(report, _by_numeric(job, result, limits))
        if method == "sympy":
            return CheckReport(method="sympy", status="skipped", detail=too_big)
        if not numeric_ok:
            return CheckReport(method="none", status="skipped",
                               detail=f"too large to check: {too_big}; {numeric_why}")
        report = _by_numeric(job, result, limits)
        report.detail = f"{report.detail} (not SymPy: {too_big})"
        return report
    if method == "numeric":
        return _by_numeric(job, result, limits)
    return CheckReport(method="none", status="skipped", detail=f"unknown method {method!r}")


def _sympy_too_big(job: dict[str, Any], shapes: dict[str, tuple[int, ...]], order: int,
                   limits: verify.CheckLimits, auto: bool) -> str:
    """Why SymPy should not run, or "": the gradient's bounds, then every order's entries."""
    why = verify._sympy_too_big({**job, "kind": "gradient"}, shapes, limits, auto)
    if why or not auto:
        return why
    distinct = _distinct(len(job["sources"]), order)
    if distinct > limits.sympy_max_derivatives:
        return (f"{distinct} distinct derivative entries, over SymPy's limit of "
                f"{limits.sympy_max_derivatives}")
    work = _work(job, shapes, order)
    if work > limits.sympy_max_work:
        return (f"an estimated {work} units of symbolic work, over SymPy's limit of "
                f"{limits.sympy_max_work}")
    return ""


def _distinct(n: int, order: int) -> int:
    """Distinct entries of every order's symmetric derivative tensor in ``n`` sources."""
    return sum(math.comb(n + j - 1, j) for j in range(1, order + 1))


def _work(job: dict[str, Any], shapes: dict[str, tuple[int, ...]], order: int) -> int:
    """Estimated symbolic work of every order (``verify.sympy_work``'s units): each order
    differentiates the last one, whose tree grows about linearly with it."""
    n = len(job["sources"])
    per_entry = verify.sympy_work({**job, "kind": "gradient"}, shapes) // max(1, n)
    return per_entry * _distinct(n, order) * order


def _tape(job: dict[str, Any], result: Result, j: int) -> np.ndarray:
    """The tape's order-j tensor over the checked (watched) sources only."""
    d = np.asarray((result.derivatives or [])[j - 1], dtype=np.float64)
    if d.ndim == 0:
        return d
    keep = [result.sources.index(s) for s in job["sources"]]
    sub = d[np.ix_(*[keep] * j)]
    return sub.reshape(()) if len(keep) == 1 else sub


def _by_sympy(job: dict[str, Any], result: Result, limits: verify.CheckLimits,
              work: int = 0, heavy: bool = False) -> CheckReport:
    def compare(tally: Tally, reply: dict[str, Any], skipped: verify.Skipped) -> None:
        for j in range(1, job["order"] + 1):
            ref = np.asarray(reply["values"]["derivatives"][str(j)], dtype=np.float64)
            tally.add(("derivatives", str(j), ""), _tape(job, result, j), ref,
                      skip=skipped(("derivatives", str(j)), ref.shape))

    report = verify.by_sympy(job, limits, compare, "SymPy's derivatives", work=work, heavy=heavy)
    return _named(report, job["sources"])


def _by_numeric(job: dict[str, Any], result: Result, limits: verify.CheckLimits
                ) -> CheckReport:
    from engine.check import finite_differences as numeric

    deadline = verify.numeric_deadline(limits)
    tally = Tally(limits.numeric_rtol, limits.numeric_atol, limits.max_disagreements)
    sources = job["sources"]
    try:
        runner = numeric.Runner(job, deadline)
        first = numeric.gradients(runner, sources)
        estimates = {1: _stack([first[s] for s in sources], (len(sources),))}
        if job["order"] > 1:
            second = numeric.hessian(runner, sources)
            blocks = [second[a][b] for a in sources for b in sources]
            estimates[2] = _stack(blocks, (len(sources),) * 2)
    except numeric.NumericTimeout:
        return tally.report("numeric", status="timeout", detail="finite differences ran "
                            f"past their budget of {limits.numeric_seconds:g} s")
    for j, est in estimates.items():
        tape = _tape(job, result, j)
        est = numeric.Estimate(*(np.reshape(getattr(est, f), np.shape(tape))
                                 for f in numeric.Estimate.__annotations__))
        off = ~np.isfinite(est.value) & np.isfinite(tape)
        tally.add(("derivatives", str(j), ""), tape, est.value, skip=est.jump | off,
                  extra=4 * est.error, interval=est)
    if job["order"] > NUMERIC_ORDERS:
        above = range(NUMERIC_ORDERS + 1, job["order"] + 1)
        orders = f"order {above[0]}" if len(above) == 1 else f"orders {above[0]} to {above[-1]}"
        tally.notes.append(f"{orders} not compared: "
                           "finite differences beyond the second order lose most of "
                           "float64's digits (ask for check: sympy)")
    return _named(tally.report("numeric", "central finite differences"), sources)


def _stack(estimates: list[Any], shape: tuple[int, ...]) -> Any:
    """Scalar estimates as one estimate of ``shape``, field by field."""
    from engine.check.finite_differences import Estimate

    return Estimate(*(np.reshape([np.ravel(getattr(e, f))[0] for e in estimates], shape)
                      for f in Estimate.__annotations__))


def _named(report: CheckReport, sources: list[str]) -> CheckReport:
    """Disagreements named by order and by the sources of their index, not by tally paths."""
    for d in report.disagreements:
        order = d.pop("source")
        d.pop("source_2", None)
        d["order"] = int(order)
        if d.get("index") is not None:
            d["sources"] = [sources[i] for i in d["index"]] or sources[:1] * d["order"]
    return report


# ------------------------------------------------------------------ in the SymPy worker


def run_symbolic(job: dict[str, Any]) -> dict[str, Any]:
    """Every order's symbolic derivative of the job's loss, evaluated at its values.

    Runs inside the SymPy worker. Order j differentiates order j - 1 once per
    nondecreasing index tuple; the rest of the symmetric tensor shares those
    expressions, so evaluating them costs nothing more.
    """
    import sympy as sp

    from engine.check import symbolic

    shapes = {k: np.shape(v) for k, v in job["values"].items()}
    exprs, defs = symbolic.translate(job["nodes"], shapes, frozenset(job["frozen"]))
    loss = symbolic.Compiled._loss(exprs, job["targets"], job["weights"])
    syms = [exprs[s][()] for s in job["sources"]]
    n = len(syms)
    quantities: dict[tuple[str, ...], np.ndarray] = {}
    level: dict[tuple[int, ...], Any] = {(): loss}
    for j in range(1, job["order"] + 1):
        level = {
            (*idx, i): symbolic.clean(sp.diff(e, syms[i]))
            for idx, e in level.items()
            for i in range(idx[-1] if idx else 0, n)
        }
        arr = np.empty((n,) * j if n > 1 else (), dtype=object)
        for idx in np.ndindex(arr.shape):
            arr[idx] = level[tuple(sorted(idx)) if idx else (0,) * j]
        quantities[("derivatives", str(j))] = arr
    compiled = SimpleNamespace(leaves={k: v for k, v in exprs.items() if k in shapes},
                               defs=defs, quantities=quantities)
    reply = symbolic.evaluate(compiled, job["values"])  # type: ignore[arg-type]
    text, latex = symbolic.render(quantities, job.get("text_max", 16))
    reply.update(text=text, latex=latex, cached=False, zero=[])
    return reply
