"""``POST /v1/symbolic``'s answer: the engine's symbolic result as the response's JSON data.

The numbers go through the value codec (NaN at a kink travels as ``"NaN"``); the text
and LaTeX are laid out by the engine already (engine.check.symbolic_query).
"""

from __future__ import annotations

from typing import Any

from app.rendering import note
from app.wire.values import jsonable
from engine.check.symbolic_query import SymbolicResult


def render(result: SymbolicResult) -> dict[str, Any]:
    """The response body of ``SymbolicResponse``."""
    body: dict[str, Any] = {
        "function": result.function,
        "derivatives": result.derivatives,
        "latex": {"function": result.latex_function, "derivatives": result.latex_derivatives},
    }
    if result.values is not None:
        body["values"] = jsonable(result.values)
    body.update(
        sources=result.sources,
        order=result.order,
        target=result.target,
        simplified=result.simplified,
        notes=[note(n) for n in result.notes],
    )
    return body
