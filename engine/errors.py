"""Typed engine errors: each carries the culprit so the service can name it.

The engine never raises HTTP errors; the web layer maps each class to a problem.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every error a caller can trigger with bad input."""

    kind = "invalid"

    def __init__(self, detail: str, *, node: str | None = None, field: str | None = None):
        super().__init__(detail if node is None else f"node {node!r}: {detail}")
        self.detail = detail
        self.node = node
        self.field = field


class GraphError(EngineError):
    """The graph is malformed: cycle, dangling reference, duplicate id, arity, unknown op."""

    kind = "graph"


class AttrError(EngineError):
    """An op's attrs are missing, unknown or of the wrong kind."""

    kind = "attrs"


class ShapeError(EngineError):
    """Input shapes are incompatible for the op."""

    kind = "shape"


class ExpressionError(EngineError):
    """Infix text outside the accepted grammar."""

    kind = "expression"


class LimitError(EngineError):
    """A configured limit (nodes, elements, depth, derivative work) would be exceeded."""

    kind = "limit"


class ComputeLimitError(LimitError):
    """A limit on what the graph would compute (the shapes it produces, a derivative's
    entries, its order) would be exceeded: the request is of allowed size but asks for
    too much, so it is a 422 (the wire contract), not a 413 like a body over its limits."""

    kind = "compute-limit"


class CostError(EngineError):
    """What the request would compute is estimated past a limit on work, memory or the
    answer's size (engine.cost): refused before anything runs."""

    kind = "cost"

    def __init__(self, detail: str, *, node: str | None = None, field: str | None = None,
                 limit: str, estimate: float):
        super().__init__(detail, node=node, field=field)
        self.limit = limit
        self.estimate = estimate


class BudgetExceeded(EngineError):
    """A computation ran past its time budget and was stopped cooperatively."""

    kind = "timeout"


def short(x: Any, limit: int = 80) -> str:
    """A repr cut to ``limit`` characters, so errors never echo a huge input back."""
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."
