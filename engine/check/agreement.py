"""Entry-by-entry agreement between the tape's answer and an independent reference.

Shared by both methods (engine.check.methods): an entry agrees when
``|tape - ref| <= atol + rtol * max(|tape|, |ref|) + extra`` (``extra`` is the
finite-difference error estimate), when both are NaN, or when both are the same
infinity; at a kink, any value between the one-sided slopes agrees.

Each quantity a check compares (a ``Result`` field named in ``Kind.compares``) has a
row in ``QUANTITIES``: how its entries are read off the tape, how a disagreement names
them, and what the report calls the reference. A Hessian's ``matrix`` and ``sparse``
are read as laid out over the flattened sources (engine.check.layout), against the
reference Hessian's entries at their (row, col).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.check import layout

if TYPE_CHECKING:
    from engine.derive.query import Result

Path = tuple[str, ...]  # ("gradients", s) | ("jacobian", t, s) | ("derivatives", "2") | ...
FEW_ENTRIES = 64  # up to this many, entries are compared on Python floats (Tally._add_few)


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


def _outputs(result: Result, _sources: Sequence[str]) -> list[tuple[Path, Any]]:
    return [(("outputs", t), result.outputs[t]) for t in result.targets]


def _gradients(result: Result, sources: Sequence[str]) -> list[tuple[Path, Any]]:
    return [(("gradients", s), g) for s, g in (result.gradients or {}).items() if s in sources]


def _jacobian(result: Result, sources: Sequence[str]) -> list[tuple[Path, Any]]:
    return [(("jacobian", t, s), v) for t, row in (result.jacobian or {}).items()
            for s, v in row.items() if s in sources]


def _hessian(result: Result, sources: Sequence[str]) -> list[tuple[Path, Any]]:
    return [(("hessian", a, b), v) for a, row in (result.hessian or {}).items()
            for b, v in row.items() if a in sources and b in sources]


def _derivatives(result: Result, sources: Sequence[str]) -> list[tuple[Path, Any]]:
    """Each order's tensor over the checked sources only (a scalar for one source)."""
    keep = [result.sources.index(s) for s in sources]
    out: list[tuple[Path, Any]] = []
    for j, d in enumerate(result.derivatives or (), start=1):
        d = np.asarray(d, dtype=np.float64)
        if d.ndim:
            d = d[np.ix_(*[keep] * j)]
            d = d.reshape(()) if len(keep) == 1 else d
        out.append((("derivatives", str(j)), d))
    return out


def _by_order(path: Path, index: list[int] | None, sources: Sequence[str]) -> dict[str, Any]:
    """A derivative entry is named by its order and the sources of its index."""
    order = int(path[1])
    return {"order": order, "sources": [sources[i] for i in index or ()] or [*sources[:1]] * order}


@dataclass(frozen=True)
class Quantity:
    """How one quantity of a ``Result`` is read off the tape and reported."""

    read: Callable[[Result, Sequence[str]], list[tuple[Path, Any]]]
    """(path, the tape's value) of each entry compared, over the checked sources."""
    names: Callable[[Path, list[int] | None, Sequence[str]], dict[str, Any]]
    """What a disagreement at ``path`` (and ``index``) is about."""
    sympy_is: str
    """SymPy's reference, as the report calls it."""
    numeric_is: str = "central finite differences"
    kink: str = " (a step, or |x|'s slope, at 0)"
    """What a kink is, in SymPy's note on the entries it did not compare."""
    none_unwatched: bool = True
    """An unwatched source's entries are None by design: left out, and the report says so."""
    laid: Callable[[Result, layout.Grid], list[layout.Laid]] | None = None
    """Laid out over the flattened sources: its entries and where each sits (``read``
    gives none); the reference is the Hessian's, gathered (engine.check.layout)."""


def _laid_out(_result: Result, _sources: Sequence[str]) -> list[tuple[Path, Any]]:
    """A laid-out quantity has no entries of its own path: ``Quantity.laid`` reads them."""
    return []


def _by_layout(_path: Path, _index: list[int] | None, _sources: Sequence[str]
               ) -> dict[str, Any]:
    """A laid-out entry names itself (``Laid.names``)."""
    return {}


QUANTITIES: dict[str, Quantity] = {
    "outputs": Quantity(_outputs, lambda p, _i, _s: {"target": p[1]}, "SymPy's values",
                        numeric_is="a numpy re-run", none_unwatched=False),
    "gradients": Quantity(_gradients, lambda p, _i, _s: {"source": p[1]}, "SymPy's derivative"),
    "jacobian": Quantity(_jacobian, lambda p, _i, _s: {"target": p[1], "source": p[2]},
                         "SymPy's derivative"),
    "hessian": Quantity(_hessian, lambda p, _i, _s: {"source": p[1], "source_2": p[2]},
                        "SymPy's derivative"),
    "derivatives": Quantity(_derivatives, _by_order, "SymPy's derivatives", kink="",
                            none_unwatched=False),
    "matrix": Quantity(_laid_out, _by_layout, "SymPy's derivative", none_unwatched=False,
                       laid=layout.matrix),
    "sparse": Quantity(_laid_out, _by_layout, "SymPy's derivative", none_unwatched=False,
                       laid=layout.sparse),
}


def tape_values(job: dict[str, Any], result: Result, unwatched: Sequence[str], tally: Tally
                ) -> list[tuple[Path, Any]]:
    """(path, tape value) of every entry the check compares, over the job's sources; an
    unwatched source's entries are held to what TF answers by design instead."""
    rows = [QUANTITIES[q] for q in job["quantities"]]
    if unwatched and any(r.none_unwatched for r in rows):
        tally.notes.append(f"not watched, so None by design and not compared: "
                           f"{', '.join(sorted(set(unwatched)))}")
        _by_design(rows, result, job["sources"], job.get("unconnected", "none"), tally)
    return [entry for r in rows for entry in r.read(result, job["sources"])]


def _by_design(rows: list[Quantity], result: Result, checked: Sequence[str],
               unconnected: str, tally: Tally) -> None:
    """Entries of an unwatched source are no derivative: TF answers None for them, or
    zeros with ``unconnected_gradients: zero``. Anything else disagrees, so that a check
    that says "agree" has looked at every entry the answer holds."""
    for r in (r for r in rows if r.none_unwatched):
        seen = {path for path, _ in r.read(result, checked)}
        for path, tape in r.read(result, list(dict.fromkeys(result.sources))):
            if path in seen:
                continue
            if unconnected == "zero" and tape is not None and not np.any(tape):
                continue
            if unconnected != "zero" and tape is None:
                continue
            want = "zeros" if unconnected == "zero" else "None"
            tally.structural(path, f"not watched, so {want} by design (unconnected_gradients: "
                                   f"{unconnected}); the tape gave "
                                   f"{'None' if tape is None else 'other values'}")


def laid_values(quantities: Sequence[str], result: Result, job_layout: Any, tally: Tally
                ) -> tuple[layout.Grid | None, list[layout.Laid]]:
    """The grid of the flattened sources, and every laid-out quantity's entries; the
    layout's own problems go straight to ``tally``. No grid (None) when no quantity is
    laid out (all but a Hessian's matrix and sparse)."""
    if all(QUANTITIES[q].laid is None for q in quantities):
        return None, []
    grid = layout.Grid.of(job_layout or [])
    laid = [item for q in quantities if (f := QUANTITIES[q].laid) is not None
            for item in f(result, grid)]
    for item in laid:
        for names, reason in item.problems:
            tally.structural(item.path, reason, names)
    return grid, laid


def or_zeros(tape: Any, ref: np.ndarray, path: Path, tally: Tally) -> np.ndarray:
    """The tape's None (no path) is compared as zeros: the true derivative must vanish."""
    if tape is None:
        tally.notes.append(f"{'/'.join(path[1:])}: None on the tape (no path), compared with 0")
        return np.zeros(np.shape(ref))
    return np.asarray(tape, dtype=np.float64)


def get_path(tree: dict, path: Path, as_array: bool = True) -> Any:
    """The entry of a nested ``{quantity: {id: ...}}`` tree at ``path``."""
    for key in path:
        tree = tree[key]
    return np.asarray(tree, dtype=np.float64) if as_array else tree


class Tally:
    """Entry-by-entry comparison: |tape - ref| <= atol + rtol * max(|tape|, |ref|) + extra."""

    def __init__(self, rtol: float, atol: float, cap: int, sources: Sequence[str] = ()):
        self.rtol, self.atol, self.cap = rtol, atol, cap
        self.sources = sources  # the checked sources, to name a derivative's entries
        self.max_err = 0.0
        self.error_estimate: float | None = None
        self.compared = self.bad = self.skipped = self.undefined = self.not_finite = 0
        self.no_real_reference = 0  # of the disagreements (see ``report``)
        self.disagreements: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(self, path: Path, tape: np.ndarray, ref: np.ndarray, skip: Any = None,
            extra: Any = 0.0, interval: Any = None,
            named: Callable[[int], dict[str, Any]] | None = None) -> None:
        """Compare entry by entry; a disagreement is named by the quantity's row, or by
        ``named`` (the k-th flat entry's names, its index among them) when given."""
        tape, ref = np.asarray(tape, np.float64), np.asarray(ref)
        if tape.shape != ref.shape:  # numpy broadcasts at most 32 dims: only when needed
            tape, ref = np.broadcast_arrays(tape, ref)
        shape = ref.shape
        tape, ref = tape.ravel(), ref.ravel()  # 1-d inside: 0-d arrays cannot be indexed
        if (skip is None and interval is None and ref.size <= FEW_ENTRIES
                and type(extra) in (float, int)
                and self._add_few(path, shape, tape.tolist(), ref.tolist(), extra, named)):
            return
        skip = np.zeros(ref.shape, bool) if skip is None else np.ravel(skip).astype(bool)
        extra = np.ravel(extra) if isinstance(extra, np.ndarray) else extra
        if interval is not None:
            interval = type(interval)(*(np.ravel(getattr(interval, f))
                                        for f in interval.__dataclass_fields__))
        with np.errstate(invalid="ignore"):
            # equal infinities too; NaN on both sides is no agreement (below: "neither")
            same = tape == ref
            # a number against NaN or an infinity is unboundedly wrong, never "0 off"
            err = np.where(same, 0.0, np.where(np.isfinite(tape) & np.isfinite(ref),
                                               np.abs(tape - ref), np.inf))
            tol = self.atol + self.rtol * np.maximum(np.abs(tape), np.abs(ref)) + extra
            ok = same | (np.isfinite(err) & (err <= tol))  # +inf is never within -inf's inf
            if interval is not None:  # at a kink any value between the one-sided slopes is fine
                inside = (tape >= interval.low - tol) & (tape <= interval.high + tol)
                ok |= interval.kink & inside
                err = np.where(interval.kink & inside, 0.0, err)
                # no derivative exists at a kink: a tape that says so (NaN) is not wrong
                undefined = interval.kink & np.isnan(tape) & ~skip
                if undefined.any():
                    self.undefined += int(undefined.sum())
                    skip = skip | undefined
            # no number on either side, one of them NaN: the derivative is undefined or
            # overflows there (sqrt at 0: the tape's inf, SymPy's zoo), or neither formula
            # can give it (both 0/0 where sqrt(x**4 + y**4) has slope 0): nothing to compare
            neither = ~np.isfinite(tape) & ~np.isfinite(ref) & (np.isnan(tape) | np.isnan(ref))
            neither &= ~same & ~skip
            if neither.any():
                self.not_finite += int(neither.sum())
                skip = skip | neither
        ok |= skip
        self.skipped += int(skip.sum())
        self.compared += int((~skip).sum())
        finite = err[~skip]  # an infinity (a number against NaN) counts: it is the error
        if finite.size:
            self.max_err = max(self.max_err, float(finite.max()))
        if isinstance(extra, np.ndarray) and (~skip).any():
            est = float(np.nanmax(np.where(skip, 0.0, extra / 4)))
            self.error_estimate = max(self.error_estimate or 0.0, est)
        for k in np.flatnonzero(~ok):
            self._disagreement(path, shape, int(k), tape[k], ref[k], err[k], named)

    def _add_few(self, path: Path, shape: tuple[int, ...], tape: list[Any], ref: list[Any],
                 extra: Any, named: Callable[[int], dict[str, Any]] | None) -> bool:
        """``add`` for a few finite entries with nothing skipped, on Python floats: the
        same rule and the same arithmetic, without the twenty-odd numpy calls on tiny
        arrays (about two thirds of a seed request's SymPy check). False, having done
        nothing, when an entry is not a finite float (``add``'s own way then)."""
        if not all(type(v) is float and math.isfinite(v) for v in (*tape, *ref)):
            return False
        errors = [abs(t - r) for t, r in zip(tape, ref, strict=True)]
        bad = [k for k, (t, r, err) in enumerate(zip(tape, ref, errors, strict=True))
               if not (t == r or err <= self.atol + self.rtol * max(abs(t), abs(r)) + extra)]
        self.compared += len(ref)
        if errors:
            self.max_err = max(self.max_err, max(errors))
        for k in bad:
            self._disagreement(path, shape, k, tape[k], ref[k], errors[k], named)
        return True

    def _disagreement(self, path: Path, shape: tuple[int, ...], k: int, tape: float,
                      ref: float, err: float, named: Callable[[int], dict[str, Any]] | None
                      ) -> None:
        """The k-th flat entry disagrees: counted, and named while under the cap."""
        self.bad += 1
        if math.isnan(ref) and math.isfinite(tape):
            self.no_real_reference += 1
        if len(self.disagreements) < self.cap:
            idx = [int(i) for i in np.unravel_index(k, shape)]
            where = named(k) if named else {**self._names(path, idx), "index": idx}
            self.disagreements.append({
                "quantity": path[0], **where,
                "tape": float(tape), "reference": float(ref), "abs_error": float(err),
            })

    def structural(self, path: Path, reason: str, names: dict[str, Any] | None = None
                   ) -> None:
        """A disagreement about a whole quantity (or its layout) rather than its entries."""
        self.bad += 1
        if len(self.disagreements) < self.cap:
            where = {**self._names(path, None), "index": None} if names is None else names
            self.disagreements.append({"quantity": path[0], **where, "reason": reason})

    def _names(self, path: Path, index: list[int] | None) -> dict[str, Any]:
        return QUANTITIES[path[0]].names(path, index, self.sources)

    def report(self, method: str, detail: str, status: str | None = None) -> CheckReport:
        rule = (f"|tape - reference| <= {self.atol:g} + {self.rtol:g} * max(|tape|, |reference|)"
                + (" + 4 * error estimate" if method == "numeric" else ""))
        if self.undefined:
            n = self.undefined
            self.notes.append(f"{_entries(n)} at a kink, where no derivative exists, "
                              f"{'is' if n == 1 else 'are'} NaN on the tape: not compared")
        if self.not_finite:
            n = self.not_finite
            self.notes.append(f"{_entries(n)} where the derivative is undefined or overflows, "
                              f"or neither formula gives a number (not finite on the tape and "
                              f"in the reference, one of them NaN) {'is' if n == 1 else 'are'} "
                              "not compared")
        if self.no_real_reference:
            n = self.no_real_reference
            self.notes.append(
                f"{_entries(n)} disagree{'s' if n == 1 else ''} where the reference is no "
                "real number (NaN: SymPy's formula is complex or indeterminate there) and the "
                "tape's is finite: a convention (TensorFlow's d/dy x**y is 0 at x <= 0) or a "
                "limit (exp(-1/x**2) is 0 at 0) that the reference cannot confirm")
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
                detail = ("nothing to compare: every entry was left out, where the "
                          "derivative is undefined or has no number on both sides (below)"
                          if self.skipped else "nothing to compare")
        return CheckReport(
            method=method, status=status, tolerance=self.rtol, abs_tolerance=self.atol,
            max_abs_error=self.max_err if self.compared else None,
            detail="; ".join([detail, *self.notes]), disagreements=self.disagreements,
            compared=self.compared,
        )


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"
