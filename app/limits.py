"""Settings as the engine's limits: the one place where the two meet."""

from __future__ import annotations

from app.settings import Settings
from app.wire.values import MAX_RANK
from engine import cost
from engine.check.limits import CheckLimits
from engine.graphs.graph import Limits


def engine_limits(settings: Settings) -> Limits:
    """What a graph may contain and compute: nodes, elements, expression, derivatives."""
    return Limits(
        max_nodes=settings.max_nodes,
        max_elements=settings.max_tensor_elements,
        max_total_elements=settings.max_total_elements,
        max_inputs=settings.max_inputs,
        max_expression_length=settings.max_expression_chars,
        max_expression_depth=settings.max_expression_depth,
        max_value_depth=MAX_RANK,
        max_rank=MAX_RANK,
        max_derivative_work=settings.max_derivative_work,
        max_points=settings.max_points,
        dense_max_sources=settings.dense_max_sources,
    )


def cost_limits(settings: Settings) -> cost.CostLimits:
    """What a request's estimated cost may reach: work, memory, answer size."""
    return cost.CostLimits(
        max_work=settings.max_work,
        max_bytes=settings.max_request_bytes,
        max_response_bytes=settings.max_response_bytes,
    )


def check_limits(settings: Settings) -> CheckLimits:
    """What an independent check may spend: SymPy's and finite differences' sizes and time."""
    return CheckLimits(
        sympy_max_nodes=settings.sympy_max_nodes,
        sympy_max_elements=settings.sympy_max_elements,
        numeric_max_elements=settings.numeric_max_elements,
        sympy_seconds=settings.sympy_seconds,
        numeric_seconds=settings.numeric_seconds,
        sympy_workers=settings.sympy_workers,
    )
