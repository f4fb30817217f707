"""The symbolic derivative as an answer: a graph's scalar function and its derivatives of
every order up to k, as text, LaTeX and (when every leaf has a value) numbers.

Three steps, a module each: the question becomes a worker's job, checked against every
bound first (engine.check.symbolic_job); the job runs in the SymPy worker pool under a
hard budget, simplified if that fits its share (engine.check.symbolic_run,
engine.check.symbolic_simplify); the reply is laid out (engine.check.symbolic_layout).
"""

from __future__ import annotations

from engine.check.symbolic_job import SymbolicQuery, symbolic_job, symbolic_work
from engine.check.symbolic_layout import SymbolicResult, conventions, lay_out
from engine.check.symbolic_run import run

__all__ = ["SymbolicQuery", "SymbolicResult", "symbolic", "symbolic_work"]


def symbolic(q: SymbolicQuery) -> SymbolicResult:
    """The derivatives of ``q``'s scalar target up to ``q.order``, symbolically."""
    planned = symbolic_job(q)
    job = planned.job
    reply, simplified, notes = run(job, planned.work, q.check_limits)
    notes = notes + conventions(job["nodes"], job["frozen"])
    return lay_out(
        reply, planned.target, planned.n, q.order, q.max_response_bytes, simplified, notes
    )
