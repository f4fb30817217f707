"""Where ``check: auto`` draws its lines, each method's budget, and the tolerances."""

from __future__ import annotations

from dataclasses import dataclass

CALIBRATION_SECONDS = 2.0  # the budget ``sympy_max_work`` was calibrated for


@dataclass(frozen=True)
class CheckLimits:
    """Where ``auto`` draws its lines, the budgets, and the tolerances."""

    sympy_max_nodes: int = 200
    """sympy and auto: graphs with more nodes (ancestors of the targets) are not translated."""
    sympy_max_elements: int = 64
    """sympy and auto: the largest tensor anywhere in the graph, in elements (one symbol each)."""
    sympy_max_derivatives: int = 256
    """auto only: derivative entries SymPy would form: gradient sum(|s|), Jacobian
    sum(|t|) * sum(|s|), Hessian n + n * n with n = sum(|s|), evaluate sum(|t|), every
    order up to k the distinct entries of each order's symmetric tensor."""
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
    """numeric and auto: forward runs times elements in the graph; beyond this finite
    differences do not run (auto: neither method runs)."""
    numeric_max_values: int = 4_000_000
    """numeric and auto: elements of every node's value together. Finite differences hold
    a copy of them (32 MB at this line) and of what each step recomputes, beside the
    request's own values, which its estimate charges; beyond this they do not run."""
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


def budget_work(limits: CheckLimits) -> int:
    """Units of symbolic work SymPy gets through in one budget (``sympy_max_work`` is
    what finishes well inside ``CALIBRATION_SECONDS``)."""
    return max(1, int(limits.sympy_max_work * limits.sympy_seconds / CALIBRATION_SECONDS))
