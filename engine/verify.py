"""Verification of a result by methods independent of the tape (SymPy, finite differences).

``check`` turns the request's graph into plain data (a job), gives it to SymPy
in a worker process (engine.symbolic, engine.sympy_worker) or to central
finite differences (engine.numeric), and compares each entry of the tape's
answer with the reference. Nothing here is imported or started when the
method is ``none``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.ops.registry import OPS

if TYPE_CHECKING:
    from engine.derivatives import Query, Result

log = logging.getLogger("engine.verify")
LINALG_SQUARE = ("inv", "det", "solve")


@dataclass
class CheckReport:
    """What an independent method said about a result."""

    method: str  # "sympy" | "numeric" | "none"
    status: str  # "agree" | "disagree" | "skipped" | "timeout"
    max_abs_error: float | None = None
    tolerance: float | None = None  # relative: |tape - ref| <= abs_tolerance + tolerance * scale
    detail: str = ""
    symbolic: dict[str, Any] = field(default_factory=dict)  # derivative text per quantity
    latex: dict[str, Any] = field(default_factory=dict)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    abs_tolerance: float | None = None
    error_estimate: float | None = None  # numeric: largest finite-difference error estimate
    compared: int = 0  # entries compared
    elapsed_ms: float | None = None


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
    sympy_workers: int = 1
    """Warm SymPy worker processes, shared by all requests."""
    text_max_elements: int = 16
    """Derivative text is given entry by entry up to this many entries, summarised beyond."""
    sympy_rtol: float = 1e-7
    sympy_atol: float = 1e-9
    numeric_rtol: float = 1e-5
    numeric_atol: float = 1e-7
    max_disagreements: int = 10


def check(
    kind: str,  # "evaluate" | "gradient" | "jacobian" | "hessian"
    query: Query,
    result: Result,
    method: str = "auto",
    limits: CheckLimits = CheckLimits(),
) -> CheckReport:
    """Cross-check ``result`` by ``method``; never raises for numerical reasons."""
    if method == "none":
        return CheckReport(method="none", status="skipped", detail="check not requested")
    start = time.perf_counter()
    try:
        report = _check(kind, query, result, method, limits)
    except Exception as e:  # a checker bug must not fail the request it checks
        log.exception("check %s of a %s failed", method, kind)
        report = CheckReport(method=method if method != "auto" else "none", status="skipped",
                             detail=f"the check failed: {type(e).__name__}: {e}"[:300])
    report.elapsed_ms = round((time.perf_counter() - start) * 1000, 3)
    if report.status == "disagree":
        log.warning("%s check of a %s disagrees with the tape: %s", report.method, kind,
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
            report = _by_sympy(kind, job, result, unwatched, limits)
            if report.status not in ("timeout", "skipped") or not numeric_ok:
                return report
            fallback = _by_numeric(kind, job, result, unwatched, limits)
            fallback.detail = f"SymPy: {report.detail}; so numeric: {fallback.detail}"
            return fallback
        if numeric_ok:
            report = _by_numeric(kind, job, result, unwatched, limits)
            report.detail = f"{report.detail} (not SymPy: {sympy_why})"
            return report
        return CheckReport(method="none", status="skipped",
                           detail=f"too large to check: {sympy_why}; {numeric_why}")
    if method == "sympy":
        too_big = _sympy_too_big(job, shapes, limits, auto=False)
        if too_big:
            return CheckReport(method="sympy", status="skipped", detail=too_big)
        return _by_sympy(kind, job, result, unwatched, limits)
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


def sympy_work(job: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> int:
    """The derivative's size written out as a tree, times the derivative entries.

    A node used twice counts twice (SymPy's derivative of a shared subexpression grows
    like the written-out tree), and an element reading k input elements (a reduction,
    a matmul's contraction) counts each of them.
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
    from engine.numeric import evaluations_needed

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


def _by_sympy(kind: str, job: dict[str, Any], result: Result, unwatched: list[str],
              limits: CheckLimits) -> CheckReport:
    from engine import budget, sympy_worker

    seconds = limits.sympy_seconds
    left = budget.remaining()
    if left is not None:
        seconds = max(0.05, min(seconds, left))
    tally = Tally(limits.sympy_rtol, limits.sympy_atol, limits.max_disagreements)
    try:
        reply = sympy_worker.get_pool(limits.sympy_workers).run(job, seconds)
    except sympy_worker.WorkerTimeout as e:
        return tally.report("sympy", status="timeout", detail=str(e))
    except sympy_worker.WorkerError as e:
        return tally.report("sympy", status="skipped", detail=f"SymPy failed: {e}")
    skip: dict[tuple, list] = {}
    for entry in reply["kinks"]:
        skip.setdefault(tuple(entry[:-1]), []).append(tuple(entry[-1]))
    if reply["kinks"]:
        tally.notes.append(f"{len(reply['kinks'])} entries at a kink (a step function's "
                           "derivative at 0) not compared: the tape follows its convention")
    for path, tape in _tape_quantities(kind, result, unwatched, tally):
        ref = _get(reply["values"], path)
        mask = np.zeros(np.shape(ref), dtype=bool)
        for idx in skip.get(path, ()):
            mask[idx] = True
        tally.add(path, _or_zeros(tape, ref, path, tally), ref, skip=mask)
    report = tally.report("sympy", detail="SymPy's derivative")
    report.symbolic, report.latex = reply["text"], reply["latex"]
    return report


def _by_numeric(kind: str, job: dict[str, Any], result: Result, unwatched: list[str],
                limits: CheckLimits) -> CheckReport:
    from engine import budget, numeric

    deadline = time.monotonic() + limits.numeric_seconds
    left = budget.remaining()
    if left is not None:
        deadline = min(deadline, time.monotonic() + left)
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
    jumps = 0
    for path, tape in _tape_quantities(kind, result, unwatched, tally):
        est = refs[path]
        undefined = ~np.isfinite(est.value) & np.isfinite(np.asarray(runner.loss(runner.base)))
        jumps += int(est.jump.sum())
        tally.add(path, _or_zeros(tape, est.value, path, tally), est.value,
                  skip=est.jump | undefined, extra=4 * est.error, interval=est)
    if jumps:
        tally.notes.append(f"{jumps} entries at a discontinuity not compared")
    report = tally.report("numeric", detail="central finite differences")
    report.error_estimate = tally.error_estimate
    return report


def _tape_quantities(kind: str, result: Result, unwatched: list[str], tally: Tally
                     ) -> list[tuple[tuple, Any]]:
    """(path, tape value) for every quantity of ``kind`` that is compared."""
    out: list[tuple[tuple, Any]] = []
    if kind == "evaluate":
        out += [(("outputs", t), result.outputs[t]) for t in result.targets]
    if kind in ("gradient", "hessian"):
        out += [(("gradients", s), g) for s, g in (result.gradients or {}).items()]
    if kind == "jacobian":
        out += [(("jacobian", t, s), v) for t, row in (result.jacobian or {}).items()
                for s, v in row.items()]
    if kind == "hessian":
        out += [(("hessian", a, b), v) for a, row in (result.hessian or {}).items()
                for b, v in row.items()]
    if unwatched:
        tally.notes.append(f"not watched, so None by design and not compared: "
                           f"{', '.join(sorted(set(unwatched)))}")
    return [(p, v) for p, v in out if not set(p[1:]) & set(unwatched) or p[0] == "outputs"]


def _or_zeros(tape: Any, ref: np.ndarray, path: tuple, tally: Tally) -> np.ndarray:
    """The tape's None (no path) is compared as zeros: the true derivative must vanish."""
    if tape is None:
        tally.notes.append(f"{'/'.join(path[1:])}: None on the tape (no path), compared with 0")
        return np.zeros(np.shape(ref))
    return np.asarray(tape, dtype=np.float64)


def _get(tree: dict, path: tuple) -> np.ndarray:
    for key in path:
        tree = tree[key]
    return np.asarray(tree, dtype=np.float64)


class Tally:
    """Entry-by-entry comparison: |tape - ref| <= atol + rtol * max(|tape|, |ref|) + extra."""

    def __init__(self, rtol: float, atol: float, cap: int):
        self.rtol, self.atol, self.cap = rtol, atol, cap
        self.max_err = 0.0
        self.error_estimate: float | None = None
        self.compared = self.bad = self.skipped = 0
        self.disagreements: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(self, path: tuple, tape: np.ndarray, ref: np.ndarray, skip: Any = None,
            extra: Any = 0.0, interval: Any = None) -> None:
        tape, ref = np.broadcast_arrays(np.asarray(tape, np.float64), ref)
        shape = ref.shape
        tape, ref = tape.ravel(), ref.ravel()  # 1-d inside: 0-d arrays cannot be indexed
        skip = np.zeros(ref.shape, bool) if skip is None else np.ravel(skip).astype(bool)
        extra = np.ravel(extra) if np.ndim(extra) else extra
        if interval is not None:
            interval = type(interval)(*(np.ravel(getattr(interval, f))
                                        for f in interval.__dataclass_fields__))
        with np.errstate(invalid="ignore"):
            both_nan = np.isnan(tape) & np.isnan(ref)
            same = (tape == ref) | both_nan  # equal infinities too
            err = np.where(same, 0.0, np.abs(tape - ref))
            tol = self.atol + self.rtol * np.maximum(np.abs(tape), np.abs(ref)) + extra
            ok = same | (err <= tol)
            if interval is not None:  # at a kink any value between the one-sided slopes is fine
                inside = (tape >= interval.low - tol) & (tape <= interval.high + tol)
                ok |= interval.kink & inside
                err = np.where(interval.kink & inside, 0.0, err)
        ok |= skip
        self.skipped += int(skip.sum())
        self.compared += int((~skip).sum())
        finite = err[~skip & np.isfinite(err)]
        if finite.size:
            self.max_err = max(self.max_err, float(finite.max()))
        if np.ndim(extra) and (~skip).any():
            est = float(np.nanmax(np.where(skip, 0.0, extra / 4)))
            self.error_estimate = max(self.error_estimate or 0.0, est)
        for k in np.flatnonzero(~ok):
            self.bad += 1
            if len(self.disagreements) < self.cap:
                idx = np.unravel_index(k, shape)
                self.disagreements.append({
                    "quantity": path[0], **_names(path), "index": [int(i) for i in idx],
                    "tape": float(tape[k]), "reference": float(ref[k]),
                    "abs_error": float(err[k]),
                })

    def report(self, method: str, detail: str, status: str | None = None) -> CheckReport:
        rule = (f"|tape - reference| <= {self.atol:g} + {self.rtol:g} * max(|tape|, |reference|)"
                + (" + 4 * error estimate" if method == "numeric" else ""))
        if status is None:
            if self.bad:
                status = "disagree"
                detail = (f"{detail} DISAGREES with the tape at {self.bad} of {self.compared} "
                          f"entries (max |error| {self.max_err:.3g}); rule: {rule}")
            elif self.compared:
                status = "agree"
                detail = f"{detail} agrees with the tape at {self.compared} entries; rule: {rule}"
            else:
                status = "skipped"
                detail = "nothing to compare"
        return CheckReport(
            method=method, status=status, tolerance=self.rtol, abs_tolerance=self.atol,
            max_abs_error=self.max_err if self.compared else None,
            detail="; ".join([detail, *self.notes]), disagreements=self.disagreements,
            compared=self.compared,
        )


def _names(path: tuple) -> dict[str, str]:
    kind = path[0]
    if kind == "outputs":
        return {"target": path[1]}
    if kind == "gradients":
        return {"source": path[1]}
    if kind == "jacobian":
        return {"target": path[1], "source": path[2]}
    return {"source": path[1], "source_2": path[2]}
