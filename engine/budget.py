"""A cooperative time budget: long loops call ``check()`` and stop with a typed error.

The deadline lives in a context variable, so each request thread has its own
and code outside any budget pays one lookup per check. A budget may also carry a
``Cancel`` (a ``threading.Event``): the web layer sets it when the client goes
away or the server drains, and the work stops at its next check.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator

from engine.errors import BudgetExceeded

Cancel = threading.Event


class _Budget:
    __slots__ = ("deadline", "cancel")

    def __init__(self, deadline: float | None, cancel: Cancel | None) -> None:
        self.deadline = deadline
        self.cancel = cancel


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


@contextlib.contextmanager
def time_budget(seconds: float | None, cancel: Cancel | None = None) -> Iterator[None]:
    """Run the block with a deadline ``seconds`` from now (None: no deadline), stopped
    early once ``cancel`` is set; a nested budget keeps the enclosing one's ``cancel``."""
    outer = _budget.get()
    if cancel is None and outer is not None:
        cancel = outer.cancel
    deadline = None if seconds is None else time.monotonic() + seconds
    token = _budget.set(_Budget(deadline, cancel))
    try:
        yield
    finally:
        _budget.reset(token)


def remaining() -> float | None:
    """Seconds left in the current budget, or None without one."""
    current = _budget.get()
    if current is None or current.deadline is None:
        return None
    return current.deadline - time.monotonic()


def check(where: str = "computation") -> None:
    """Raise ``BudgetExceeded`` once the current deadline has passed or it was cancelled."""
    current = _budget.get()
    if current is None:
        return
    if current.cancel is not None and current.cancel.is_set():
        raise BudgetExceeded(f"{where} was stopped: the client went away or the server is "
                             "shutting down")
    if current.deadline is not None and time.monotonic() > current.deadline:
        raise BudgetExceeded(f"{where} ran past its time budget")
