"""The request kinds, as one table: what each computes, over one point and over many,
and which quantities of its result an independent check compares.

Everything that differs between kinds is a field here, so no other layer switches on
a kind's name: the service runs ``kind.compute``, the check compares ``kind.compares``,
the web layer renders what the kind's result holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.derive import derivatives
from engine.derive.points import Points
from engine.derive.query import Query, Result


@dataclass(frozen=True)
class Kind:
    name: str
    compute: Callable[[Query], Result]
    over_points: Callable[[Query, Points], Result] | None
    """The same computation at many points in one pass; None: the kind takes no points."""
    compares: tuple[str, ...]
    """The quantities of a ``Result`` (its field names) that a check compares, in order."""


EVALUATE = Kind("evaluate", derivatives.evaluate, derivatives.evaluate, ("outputs",))
GRADIENT = Kind("gradient", derivatives.gradient, derivatives.gradient, ("gradients",))
JACOBIAN = Kind("jacobian", derivatives.jacobian, None, ("jacobian",))
HESSIAN = Kind("hessian", derivatives.hessian, derivatives.hessian,
               ("gradients", "hessian", "matrix", "sparse"))
DERIVATIVE = Kind("derivative", derivatives.derivative, None, ("derivatives",))

KINDS: dict[str, Kind] = {k.name: k for k in (EVALUATE, GRADIENT, JACOBIAN, HESSIAN, DERIVATIVE)}
