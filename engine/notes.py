"""Notes: numerical facts about a result that are not errors (None gradients, NaN, kinks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SHOWN = 10  # a note names at most this many blocks, orders or ids


@dataclass(frozen=True, slots=True)
class Note:
    """``reason`` is a stable code; ``detail`` says it for a person."""

    reason: str  # not_watched | unconnected | gradient_not_recorded | non_finite | kink |
    # ignored_field | summed_targets (several targets: a derivative of their sum)
    detail: str
    source: str | None = None
    node: str | None = None


def listed(items: Sequence[str], shown: int = SHOWN) -> str:
    """The first ``shown`` of ``items``, comma-separated, and how many more: a note names a
    few, never a graph's worth."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
