"""A symbolic job's reply laid out as ``/v1/derivative`` lays out its derivatives.

The worker sends each distinct entry once (mixed partials commute); here order j becomes
an n^j nested list of text, of LaTeX and (when every leaf has a value) of numbers, bounded
by the response's size, with the notes the answer carries: kinks met and the convention
of each non-differentiable op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import CostError
from engine.notes import Note
from engine.ops.registry import OPS


@dataclass
class SymbolicResult:
    target: str
    sources: list[str]  # one per scalar source: ``x``, or ``w_0_1`` for ``w[0, 1]``
    order: int
    function: str
    derivatives: list[Any]  # order j: a string for one source, else nested lists [n] * j
    latex_function: str
    latex_derivatives: list[Any]
    values: dict[str, Any] | None  # {"function": number, "derivatives": [...]} laid out alike
    notes: list[Note]
    simplified: bool


def conventions(nodes: list[list[Any]], frozen: list[str]) -> list[Note]:
    """A note per non-differentiable op: what its derivative is taken to be, and why."""
    out, seen = [], set()
    for nid, op, *_ in nodes:
        if nid in frozen and op not in seen:
            seen.add(op)
            out.append(
                Note(
                    "convention",
                    f"{op}' = 0: {op} is held constant by the derivative ({OPS[op].convention})",
                    node=nid,
                )
            )
    return out


def lay_out(
    reply: dict[str, Any],
    target: str,
    n: int,
    order: int,
    max_response_bytes: float,
    simplified: bool,
    notes: list[Note],
) -> SymbolicResult:
    """The reply's distinct entries laid out by ``n`` scalar sources up to ``order``; text
    and LaTeX over ``max_response_bytes`` is a CostError."""
    at = {tuple(k): i for i, k in enumerate(reply["keys"])}

    def lay(items: list[Any]) -> list[Any]:
        out = []
        for j in range(1, order + 1):
            if n == 1:
                out.append(items[at[(0,) * j]])
                continue
            grid = np.empty((n,) * j, dtype=object)
            for idx in np.ndindex(grid.shape):
                grid[idx] = items[at[tuple(sorted(idx))]]
            out.append(grid.tolist())
        return out

    text, latex = reply["text"], reply["latex"]
    size = sum(
        len(text[at[tuple(sorted(idx))]]) + len(latex[at[tuple(sorted(idx))]])
        for j in range(1, order + 1)
        for idx in np.ndindex((n,) * j)
    )
    if size > max_response_bytes:
        raise CostError(
            f"the derivatives' text is {size} bytes, over the response limit",
            field="order",
            limit="max_response_bytes",
            estimate=float(size),
        )
    values = None
    if "values" in reply:
        nums = reply["values"]
        values = {"function": nums[at[()]], "derivatives": lay(nums)}
        kinks = len(reply["kinks"])
        if kinks:
            notes.append(
                Note(
                    "kink",
                    f"{kinks} derivative {'entry is' if kinks == 1 else 'entries are'}"
                    " at a kink, where the derivative is undefined: NaN",
                    node=target,
                )
            )
        # every other non-finite value: outside the domain, at a pole, or an overflow
        other = sum(isinstance(v, float) and not math.isfinite(v) for v in nums) - kinks
        if other > 0:
            notes.append(Note(
                "non_finite",
                f"{other} of the function's and derivatives' distinct values "
                f"{'is' if other == 1 else 'are'} not finite at these values (outside the "
                "domain, at a pole, past float64's range, or not evaluated)",
                node=target,
            ))
    return SymbolicResult(
        target,
        reply["symbols"],
        order,
        text[at[()]],
        lay(text),
        latex[at[()]],
        lay(latex),
        values,
        notes,
        simplified,
    )
