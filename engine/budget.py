"""A cooperative time budget: long loops call ``check()`` and stop with a typed error.

The deadline lives in a context variable, so each request thread has its own
and code outside any budget pays one lookup per check.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

from engine.errors import BudgetExceeded

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Run the block with a deadline ``seconds`` from now (None: no deadline)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the current budget, or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def check(where: str = "computation") -> None:
    """Raise ``BudgetExceeded`` once the current deadline has passed."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise BudgetExceeded(f"{where} ran past its time budget")
