"""A symbolic job in the SymPy worker pool, under the answer's hard budget.

The job waits its turn as a check does (a heavy one may not take the last free worker),
tries the simplified form in its share of the budget (engine.check.symbolic_simplify),
and otherwise derives plainly in what is left. Running past the budget is BudgetExceeded;
SymPy failing on the graph is a ComputeLimitError; no free worker (WorkerBusy) is the
caller's to answer.
"""

from __future__ import annotations

import time
from typing import Any

from engine.check import sympy_pool
from engine.check.limits import CheckLimits, budget_work
from engine.check.symbolic_job import WORK_PER_SECOND, budget_seconds
from engine.check.symbolic_simplify import simplified_reply
from engine.errors import BudgetExceeded, ComputeLimitError
from engine.notes import Note

HEAVY_SECONDS = 1.0
"""An answer estimated past this many seconds of SymPy queues as a heavy check does."""


def run(
    job: dict[str, Any], work: int, limits: CheckLimits
) -> tuple[dict[str, Any], bool, list[Note]]:
    """The worker's reply, whether it is simplified, and the notes on its form."""
    seconds = budget_seconds(limits)
    # past about a second's work it may not take the last free worker (checks need one)
    heavy = work > WORK_PER_SECOND * HEAVY_SECONDS
    admission = sympy_pool.Admission(
        work=work, heavy=heavy, wait=limits.sympy_queue_seconds, max_ahead=budget_work(limits)
    )
    pool = sympy_pool.get_pool(limits.sympy_workers)
    notes: list[Note] = []
    start = time.monotonic()
    try:
        reply = simplified_reply(pool, job, work, seconds, admission, notes)
        if reply is not None:
            return reply, not reply["unsimplified"], notes
        # the plain job has what the simplified one left of the one budget, no more
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            raise sympy_pool.WorkerTimeout(f"SymPy ran past its budget of {seconds:g} s")
        reply = pool.run({**job, "simplify": False}, left, admission)
        return reply, False, notes
    except sympy_pool.WorkerBusy:
        raise
    except sympy_pool.WorkerTimeout as e:
        raise BudgetExceeded(f"the symbolic derivatives did not finish: {e}") from None
    except sympy_pool.WorkerError as e:
        raise ComputeLimitError(f"SymPy could not derive this graph: {e}") from None
