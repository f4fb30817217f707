"""Notes: numerical facts about a result that are not errors (None gradients, NaN, kinks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Note:
    """``reason`` is a stable code; ``detail`` says it for a person."""

    reason: str  # not_watched | unconnected | gradient_not_recorded | non_finite | kink |
    # ignored_field | summed_targets (several targets: a derivative of their sum)
    detail: str
    source: str | None = None
    node: str | None = None
