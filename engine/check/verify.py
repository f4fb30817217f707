"""Verification of a result by methods independent of the tape (SymPy, finite differences).

``check`` turns the request's graph into plain data (a job), gives it to SymPy
in a worker process (engine.check.symbolic, engine.check.sympy_worker) or to central
finite differences (engine.check.finite_differences), and compares each entry of the tape's
answer with the reference. Nothing here is imported or started when the
method is ``none``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.check.agreement import CheckReport, Tally, get_path, or_zeros, tape_quantities
from engine.ops.registry import OPS

if TYPE_CHECKING:
    from engine.derive.derivatives import Query, Result

log = logging.getLogger("engine.check.verify")
LINALG_SQUARE = ("inv", "det", "solve")
CALIBRATION_SECONDS = 2.0  # the budget ``sympy_max_work`` was calibrated for
BUSY = "SymPy workers busy"  # how a refused (not overrun) SymPy check's detail starts
Skipped = Callable[[tuple, tuple], np.ndarray]
"""``skipped(path, shape)``: the entries of a quantity SymPy gave no number for."""


@dataclass(frozen=True)
class CheckLimits:
    """Where ``auto`` draws its lines, the budgets, and the tolerances."""

    sympy_max_nodes: int = 200
    """sympy and auto: graphs with more nodes (ancestors of the targets) are not translated."""
    sympy_max_elements: int = 64
    """sympy and auto: the largest tensor anywhere in the graph, in elements (one symbol each)."""
    sympy_max_derivatives: int = 256
    """auto only: derivative entries SymPy would form: gradient sum(|s|), Jacobian
    sum(|t|) * sum(|s|), Hessian n + n * n with n = sum(|s|), evaluate sum(|t|)."""
    sympy_max_work: int = 200_000
    """auto only: ``sympy_work`` (expression tree size times derivative entries), calibrated
    so that SymPy finishes well inside its budget on two cores."""
    sympy_max_matrix: int = 4
    """auto only: inv, det and solve on larger matrices go to numeric (cofactors grow as n!)."""
    numeric_max_elements: int = 2_000
    """auto: source elements finite differences perturb (4 forward runs each)."""
    numeric_max_hessian_elements: int = 20
    """auto: source elements for a numeric Hessian (about 4 n^2 forward runs)."""
    numeric_max_work: int = 50_000_000
    """auto: forward runs times elements in the graph; beyond this neither method runs."""
    sympy_seconds: float = 2.0
    """SymPy's hard budget per request; the worker is killed and replaced past it."""
    numeric_seconds: float = 2.0
    """Finite differences' cooperative budget (also bounded by the request's own)."""
    sympy_workers: int = 2
    """Warm SymPy worker processes, shared by all requests."""
    sympy_queue_seconds: float = 0.2
    """Longest wait behind other checks for a SymPy worker (part of the budget); past it,
    or with more than a budget's worth of work queued ahead, ``auto`` falls back at once."""
    sympy_refuse_budgets: float = 20.0
    """sympy: a job estimated at more than this many budgets' worth of work is not run
    (it could only hold a worker until killed); the estimate is rough, hence the margin."""
    text_max_elements: int = 16
    """Derivative text is given entry by entry up to this many entries, summarised beyond."""
    sympy_rtol: float = 1e-7
    """SymPy's reference is exact (30 digits): an entry agrees when |tape - ref| <= atol +
    rtol * max(|tape|, |ref|); rtol allows float64 rounding over long chains."""
    sympy_atol: float = 1e-9
    numeric_rtol: float = 1e-5
    """Finite differences agree when |tape - fd| <= atol + rtol * max(|tape|, |fd|) + 4 * the
    entry's error estimate (the gap between steps h and h/2, plus rounding)."""
    numeric_atol: float = 1e-7
    max_disagreements: int = 10
    """Disagreeing entries listed in a report (all are counted)."""


def check(
    kind: str,  # "evaluate" | "gradient" | "jacobian" | "hessian"
    query: Query,
    result: Result,
    method: str = "auto",
    limits: CheckLimits = CheckLimits(),
) -> CheckReport:
    """Cross-check ``result`` by ``method``; never raises for numerical reasons."""
    return guarded(method, kind, lambda: _check(kind, query, result, method, limits))


def guarded(method: str, what: str, run: Callable[[], CheckReport]) -> CheckReport:
    """Run one check: skipped for ``none``, timed, a checker bug turned into ``skipped``
    (it must not fail the request it checks), and a disagreement logged loudly."""
    if method == "none":
        return CheckReport(method="none", status="skipped", detail="check not requested")
    start = time.perf_counter()
    try:
        report = run()
    except Exception as e:
        log.exception("check %s of a %s failed", method, what)
        report = CheckReport(method=method if method != "auto" else "none", status="skipped",
                             detail=f"the check failed: {type(e).__name__}: {e}"[:300])
    report.elapsed_ms = round((time.perf_counter() - start) * 1000, 3)
    if report.status == "disagree":
        log.warning("%s check of a %s disagrees with the tape: %s", report.method, what,
                    report.detail)
    return report


def _check(kind: str, query: Query, result: Result, method: str, limits: CheckLimits
           ) -> CheckReport:
    job, shapes, unwatched = build_job(kind, query, result, limits)
    if kind == "hessian" and any(s not in job["values"] for s in job["sources"]):
        return CheckReport(method="none", status="skipped",
                           detail="a Hessian with respect to an inner node is not cross-checked")
    numeric_ok, numeric_why = _numeric_fits(kind, job, shapes, limits)
    if method == "auto":
        sympy_why = _sympy_too_big(job, shapes, limits, auto=True)
        if not sympy_why:
            report = _by_sympy(kind, job, result, unwatched, limits, sympy_work(job, shapes))
            if not sympy_failed(report) or not numeric_ok:
                return report
            return fell_back(report, _by_numeric(kind, job, result, unwatched, limits))
        if numeric_ok:
            report = _by_numeric(kind, job, result, unwatched, limits)
            report.detail = f"{report.detail} (not SymPy: {sympy_why})"
            return report
        return CheckReport(method="none", status="skipped",
                           detail=f"too large to check: {sympy_why}; {numeric_why}")
    if method == "sympy":
        work = sympy_work(job, shapes)
        why, heavy = sympy_plan(_sympy_too_big(job, shapes, limits, auto=True),
                                _sympy_too_big(job, shapes, limits, auto=False), work, limits)
        if why:
            return CheckReport(method="sympy", status="skipped", detail=why)
        return _by_sympy(kind, job, result, unwatched, limits, work, heavy)
    if method == "numeric":
        return _by_numeric(kind, job, result, unwatched, limits)
    return CheckReport(method="none", status="skipped", detail=f"unknown method {method!r}")


# ------------------------------------------------------------------ the job


def build_job(kind: str, query: Query, result: Result, limits: CheckLimits
              ) -> tuple[dict[str, Any], dict[str, tuple[int, ...]], list[str]]:
    """The graph as plain data (ops by name), pruned to what the targets need; shapes;
    and the sources the tape does not watch (None by design, never compared)."""
    graph = query.graph
    unwatched = [n.source for n in result.notes
                 if n.source is not None and n.reason == "not_watched"]
    sources = [s for s in result.sources if s not in unwatched] if kind != "evaluate" else []
    need: set[str] = set()
    stack = [*result.targets, *sources]
    while stack:  # iterative: graphs can be deep
        nid = stack.pop()
        if nid not in need:
            need.add(nid)
            stack.extend(x for x in graph.nodes[nid].inputs if isinstance(x, str))
    nodes = []
    for nid in graph.order:
        if nid in need:
            n = graph.nodes[nid]
            ins = [x if isinstance(x, str) else np.asarray(x.value).tolist() for x in n.inputs]
            nodes.append([nid, n.op, ins, dict(n.attrs)])
    leaf_values = graph.leaf_values(query.values)
    shapes = graph.infer_shapes(leaf_values, getattr(query, "limits", graph.limits))
    weights = {}
    if kind in ("gradient", "hessian"):
        weights = {t: np.asarray(w, np.float64) for t, w in (query.output_gradients or {}).items()}
    job = {
        "kind": kind,
        "nodes": nodes,
        "values": {k: v for k, v in leaf_values.items() if k in need},
        "targets": list(result.targets),
        "sources": sources,
        "weights": weights,
        "frozen": [n[0] for n in nodes if n[1] in OPS and OPS[n[1]].vjp is None],
        "text_max": limits.text_max_elements,
    }
    return job, {k: v for k, v in shapes.items() if k in need}, unwatched


def _sizes(ids: list[str], shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(math.prod(shapes[i]) for i in ids)


def _sympy_too_big(job: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                   limits: CheckLimits, auto: bool) -> str:
    """Why SymPy should not run on this job, or "" if it should."""
    largest = max((math.prod(s) for s in shapes.values()), default=0)
    if len(job["nodes"]) > limits.sympy_max_nodes:
        return f"{len(job['nodes'])} nodes, over SymPy's limit of {limits.sympy_max_nodes}"
    if largest > limits.sympy_max_elements:
        return (f"a tensor of {largest} elements, over SymPy's limit of "
                f"{limits.sympy_max_elements}")
    if not auto:
        return ""
    src, tgt = _sizes(job["sources"], shapes), _sizes(job["targets"], shapes)
    entries = {"evaluate": tgt, "gradient": src, "jacobian": tgt * src,
               "hessian": src + src * src}[job["kind"]]
    if entries > limits.sympy_max_derivatives:
        return (f"{entries} derivative entries, over SymPy's limit of "
                f"{limits.sympy_max_derivatives}")
    work = sympy_work(job, shapes)
    if work > limits.sympy_max_work:
        return f"an estimated {work} units of symbolic work, over SymPy's limit of " \
               f"{limits.sympy_max_work}"
    for nid, op, ins, _ in job["nodes"]:
        if op in LINALG_SQUARE and isinstance(ins[0], str) and shapes[ins[0]]:
            n = shapes[ins[0]][-1]
            if n > limits.sympy_max_matrix:
                return f"{op} of a {n}x{n} matrix at {nid!r}, over SymPy's limit of " \
                       f"{limits.sympy_max_matrix}"
    return ""


def sympy_plan(auto_why: str, explicit_why: str, work: int, limits: CheckLimits
               ) -> tuple[str, bool]:
    """An explicit SymPy check: why it does not run (or ""), and whether it is heavy.

    ``auto_why`` and ``explicit_why`` are ``_sympy_too_big``'s answers. Past auto's
    lines a job still runs, as heavy (it may not take the last free worker); one
    estimated at many budgets' worth is refused outright, so it cannot hold a worker
    for its whole budget only to be killed.
    """
    if explicit_why:
        return explicit_why, True
    cap = int(budget_work(limits) * limits.sympy_refuse_budgets)
    if work > cap:
        return (f"an estimated {work} units of symbolic work, far over the {cap} SymPy "
                f"could finish in its {limits.sympy_seconds:g} s budget: not run"), True
    return "", bool(auto_why)


def budget_work(limits: CheckLimits) -> int:
    """Units of symbolic work SymPy gets through in one budget (``sympy_max_work`` is
    what finishes well inside ``CALIBRATION_SECONDS``)."""
    return max(1, int(limits.sympy_max_work * limits.sympy_seconds / CALIBRATION_SECONDS))


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


def sympy_work(job: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> int:
    """The derivative's size written out as a tree, times the derivative entries.

    A node used twice counts twice (SymPy's derivative of a shared subexpression grows
    like the written-out tree), an element reading k input elements (a reduction, a
    matmul's contraction) counts each of them, and an element of inv, det or solve of
    an n x n matrix reads n * n! (cofactor expansion: n! products of n entries).
    """
    cap = 10**12
    terms: dict[str, int] = {}
    for nid, op, ins, _ in job["nodes"]:
        if op in ("variable", "constant"):
            terms[nid] = 1
            continue
        out = max(1, math.prod(shapes[nid]))
        total = 1
        for x in ins:
            if not isinstance(x, str):
                total += 1
                continue
            fan = max(1, math.prod(shapes[x]) // out)
            if op == "matmul" and shapes[ins[0]]:
                fan = shapes[ins[0]][-1]
            if op in LINALG_SQUARE and x == ins[0] and shapes[x]:
                fan = shapes[x][-1] * math.factorial(shapes[x][-1])
            total += terms[x] * fan
        terms[nid] = min(cap, total)
    # the chain rule gives each node a factor holding its own subtree, so the derivative
    # is about as large as every node's tree together
    size = sum(terms[n[0]] * math.prod(shapes[n[0]]) for n in job["nodes"])
    src = _sizes(job["sources"], shapes)
    entries = {"evaluate": 1, "gradient": src, "jacobian": src,
               "hessian": src + src * src}[job["kind"]]
    return min(cap, size * max(1, entries))


def _numeric_fits(kind: str, job: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                  limits: CheckLimits) -> tuple[bool, str]:
    from engine.check.finite_differences import evaluations_needed

    src = _sizes(job["sources"], shapes)
    cap = limits.numeric_max_hessian_elements if kind == "hessian" else limits.numeric_max_elements
    if src > cap:
        return False, f"{src} source elements, over finite differences' limit of {cap}"
    runs = evaluations_needed(kind, [src])
    work = runs * max(1, sum(math.prod(s) for s in shapes.values()))
    if work > limits.numeric_max_work:
        return False, (f"{runs} forward runs of {work // runs} elements, over finite "
                       f"differences' limit of {limits.numeric_max_work}")
    return True, ""


# ------------------------------------------------------------------ the two methods


def numeric_deadline(limits: CheckLimits) -> float:
    """When finite differences stop: their own budget, or the request's if that ends first."""
    from engine import budget

    deadline = time.monotonic() + limits.numeric_seconds
    left = budget.remaining()
    if left is not None:
        deadline = min(deadline, time.monotonic() + left)
    return deadline


def by_sympy(job: dict[str, Any], limits: CheckLimits,
             compare: Callable[[Tally, dict[str, Any], Skipped], None],
             what: str, kink: str = "", work: int = 0, heavy: bool = False) -> CheckReport:
    """SymPy's reference for ``job`` within the budget, compared with the tape by ``compare``.

    One runner for the four fixed kinds and for ``derivative``'s every order
    (engine.check.higher_check): they differ only in the quantities they compare.
    ``compare(tally, reply, skipped)`` adds them to the tally; ``skipped(path, shape)``
    masks the entries of a quantity SymPy gave no number for (kinks, unevaluated).
    ``kink`` says, in the note, what a kink is. The budget covers the wait for a
    worker too; ``work`` (the estimate) and ``heavy`` decide how the job queues
    (engine.check.sympy_worker.Admission), and a refusal is a ``timeout`` whose detail
    starts with ``BUSY``.
    """
    from engine import budget
    from engine.check import sympy_worker

    seconds = limits.sympy_seconds
    left = budget.remaining()
    if left is not None:
        seconds = max(0.05, min(seconds, left))
    tally = Tally(limits.sympy_rtol, limits.sympy_atol, limits.max_disagreements)
    admission = sympy_worker.Admission(work=work, heavy=heavy, wait=limits.sympy_queue_seconds,
                                       max_ahead=budget_work(limits))
    try:
        reply = sympy_worker.get_pool(limits.sympy_workers).run(job, seconds, admission)
    except sympy_worker.WorkerBusy as e:
        return tally.report("sympy", status="timeout", detail=f"{e}; not checked by SymPy")
    except sympy_worker.WorkerTimeout as e:
        return tally.report("sympy", status="timeout", detail=str(e))
    except sympy_worker.WorkerError as e:
        return tally.report("sympy", status="skipped", detail=f"SymPy failed: {e}")
    skip: dict[tuple, list] = {}
    for entry in reply["kinks"] + reply["unevaluated"]:  # [*path, index]
        skip.setdefault(tuple(entry[:-1]), []).append(tuple(entry[-1]))
    if reply["kinks"]:
        tally.notes.append(f"{len(reply['kinks'])} entries at a kink{kink} not compared: "
                           "the tape follows its convention")
    if reply["unevaluated"]:
        tally.notes.append(f"{len(reply['unevaluated'])} entries SymPy left unevaluated "
                           "not compared")

    def skipped(path: tuple, shape: tuple) -> np.ndarray:
        mask = np.zeros(shape, dtype=bool)
        for idx in skip.get(path, ()):
            mask[idx] = True
        return mask

    compare(tally, reply, skipped)
    report = tally.report("sympy", what)
    report.symbolic, report.latex = reply["text"], reply["latex"]
    return report


def _by_sympy(kind: str, job: dict[str, Any], result: Result, unwatched: list[str],
              limits: CheckLimits, work: int = 0, heavy: bool = False) -> CheckReport:
    def compare(tally: Tally, reply: dict[str, Any], skipped: Skipped) -> None:
        zero = {tuple(p) for p in reply["zero"]}
        for path, tape in tape_quantities(kind, result, unwatched, tally):
            ref = get_path(reply["values"], path)
            mask = skipped(path, np.shape(ref))
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

    return by_sympy(job, limits, compare,
                    "SymPy's values" if kind == "evaluate" else "SymPy's derivative",
                    kink=" (a step function's derivative at 0)", work=work, heavy=heavy)


def _by_numeric(kind: str, job: dict[str, Any], result: Result, unwatched: list[str],
                limits: CheckLimits) -> CheckReport:
    from engine.check import finite_differences as numeric

    deadline = numeric_deadline(limits)
    tally = Tally(limits.numeric_rtol, limits.numeric_atol, limits.max_disagreements)
    try:
        runner = numeric.Runner(job, deadline)
        refs: dict[tuple, numeric.Estimate] = {}
        if kind == "evaluate":
            for t in job["targets"]:
                v = np.asarray(runner.base[t])
                refs[("outputs", t)] = numeric.Estimate(v, np.zeros(v.shape), v, v,
                                                        *(np.zeros(v.shape, bool),) * 2)
        if kind in ("gradient", "hessian"):
            for s, est in numeric.gradients(runner, job["sources"]).items():
                refs[("gradients", s)] = est
        if kind == "jacobian":
            for t, row in numeric.jacobians(runner, job["sources"]).items():
                refs.update({("jacobian", t, s): est for s, est in row.items()})
        if kind == "hessian":
            for si, row in numeric.hessian(runner, job["sources"]).items():
                refs.update({("hessian", si, sj): est for sj, est in row.items()})
    except numeric.NumericTimeout:
        return tally.report("numeric", status="timeout",
                            detail="finite differences ran past their budget of "
                                   f"{limits.numeric_seconds:g} s")
    jumps = undefined = 0
    for path, tape in tape_quantities(kind, result, unwatched, tally):
        est = refs[path]
        tape = or_zeros(tape, est.value, path, tally)
        # a step that leaves the domain gives NaN where the tape has a number: no reference
        off = ~np.isfinite(est.value) & np.isfinite(tape)
        jumps, undefined = jumps + int(est.jump.sum()), undefined + int(off.sum())
        tally.add(path, tape, est.value, skip=est.jump | off, extra=4 * est.error, interval=est)
    if jumps:
        tally.notes.append(f"{jumps} entries at a discontinuity not compared")
    if undefined:
        tally.notes.append(f"{undefined} entries where a finite-difference step leaves the "
                           "domain not compared")
    report = tally.report("numeric", "a numpy re-run" if kind == "evaluate" else
                          "central finite differences")
    report.error_estimate = tally.error_estimate
    return report
