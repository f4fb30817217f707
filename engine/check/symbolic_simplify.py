"""Simplification's share of a symbolic answer's budget, and the simplified job's attempt.

One ``simplify`` call cannot be interrupted inside the worker, so the simplified job gets
a hard limit of its own: what the plain derivation (estimated from the work, doubled) and
a killed worker's replacement do not need. Past it the answer is the unsimplified text,
with a note, not an error.
"""

from __future__ import annotations

from typing import Any

from engine.check import sympy_pool
from engine.check.symbolic_job import WORK_PER_SECOND
from engine.notes import Note

REPLACE_SECONDS = 1.5
"""Kept, out of a symbolic answer's budget, for a worker killed mid-simplification to be
replaced by a warm one (about a second on 2 shared cores) before the plain job runs."""


def simplify_seconds(seconds: float, work: int) -> float:
    """What simplifying may take of ``seconds``: the rest is kept for the plain job."""
    plain = min(seconds, 2 * work / WORK_PER_SECOND + REPLACE_SECONDS)
    return seconds - plain


def simplified_reply(
    pool: sympy_pool.Pool,
    job: dict[str, Any],
    work: int,
    seconds: float,
    admission: sympy_pool.Admission,
    notes: list[Note],
) -> dict[str, Any] | None:
    """The simplified job's reply within its share of ``seconds`` (``work`` sizes the
    plain job's), or None when the plain job must answer (not asked to simplify, no time
    for it, or killed at its limit); each expression left unsimplified, and each fallback,
    adds a note. WorkerBusy and WorkerError go to the caller."""
    within = simplify_seconds(seconds, work)
    if not job["simplify"]:
        return None
    if within <= 0:
        notes.append(
            Note("not_simplified", "deriving alone needs the whole budget: shown unsimplified")
        )
        return None
    try:
        reply = pool.run({**job, "simplify_seconds": within / 2}, within, admission)
    except sympy_pool.WorkerBusy:
        raise
    except sympy_pool.WorkerTimeout as e:
        notes.append(
            Note(
                "not_simplified",
                f"simplification did not finish ({e}): the derivatives are shown unsimplified",
            )
        )
        return None
    if reply["unsimplified"]:
        notes.append(
            Note(
                "not_simplified",
                f"{reply['unsimplified']} of {len(reply['text'])} expressions left "
                "unsimplified: simplification ran out of its time or they are large",
            )
        )
    return reply
