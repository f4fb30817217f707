"""Entry-by-entry agreement between the tape's answer and an independent reference.

Shared by both methods of ``engine.check.verify``: an entry agrees when
``|tape - ref| <= atol + rtol * max(|tape|, |ref|) + extra`` (``extra`` is the
finite-difference error estimate), when both are NaN, or when both are the same
infinity; at a kink, any value between the one-sided slopes agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.derive.derivatives import Result


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



def tape_quantities(kind: str, result: Result, unwatched: list[str], tally: Tally
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


def or_zeros(tape: Any, ref: np.ndarray, path: tuple, tally: Tally) -> np.ndarray:
    """The tape's None (no path) is compared as zeros: the true derivative must vanish."""
    if tape is None:
        tally.notes.append(f"{'/'.join(path[1:])}: None on the tape (no path), compared with 0")
        return np.zeros(np.shape(ref))
    return np.asarray(tape, dtype=np.float64)


def get_path(tree: dict, path: tuple, as_array: bool = True) -> Any:
    """The entry of a nested ``{quantity: {id: ...}}`` tree at ``path``."""
    for key in path:
        tree = tree[key]
    return np.asarray(tree, dtype=np.float64) if as_array else tree


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
        tape, ref = np.asarray(tape, np.float64), np.asarray(ref)
        if tape.shape != ref.shape:  # numpy broadcasts at most 32 dims: only when needed
            tape, ref = np.broadcast_arrays(tape, ref)
        shape = ref.shape
        tape, ref = tape.ravel(), ref.ravel()  # 1-d inside: 0-d arrays cannot be indexed
        skip = np.zeros(ref.shape, bool) if skip is None else np.ravel(skip).astype(bool)
        extra = np.ravel(extra) if isinstance(extra, np.ndarray) else extra
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
        if isinstance(extra, np.ndarray) and (~skip).any():
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

    def structural(self, path: tuple, reason: str) -> None:
        """A disagreement about a whole quantity rather than about its entries."""
        self.bad += 1
        if len(self.disagreements) < self.cap:
            self.disagreements.append({"quantity": path[0], **_names(path), "index": None,
                                       "reason": reason})

    def report(self, method: str, detail: str, status: str | None = None) -> CheckReport:
        rule = (f"|tape - reference| <= {self.atol:g} + {self.rtol:g} * max(|tape|, |reference|)"
                + (" + 4 * error estimate" if method == "numeric" else ""))
        if status is None:
            if self.bad:
                status = "disagree"
                detail = (f"the tape DISAGREES with {detail} at {self.bad} of "
                          f"{_entries(self.compared)} (max |error| {self.max_err:.3g}); "
                          f"rule: {rule}")
            elif self.compared:
                status = "agree"
                detail = (f"the tape agrees with {detail} at {_entries(self.compared)}; "
                          f"rule: {rule}")
            else:
                status = "skipped"
                detail = "nothing to compare"
        return CheckReport(
            method=method, status=status, tolerance=self.rtol, abs_tolerance=self.atol,
            max_abs_error=self.max_err if self.compared else None,
            detail="; ".join([detail, *self.notes]), disagreements=self.disagreements,
            compared=self.compared,
        )


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _names(path: tuple) -> dict[str, str]:
    kind = path[0]
    if kind == "outputs":
        return {"target": path[1]}
    if kind == "gradients":
        return {"source": path[1]}
    if kind == "jacobian":
        return {"target": path[1], "source": path[2]}
    return {"source": path[1], "source_2": path[2]}
