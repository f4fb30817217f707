"""Ops that apply per element under numpy broadcasting (engine.ops.elementwise, binary,
and scan's linrec): their shape rule (numpy's, which matrix stacks' batch dims follow
too), scalar SymPy forms lifted to arrays, and the shapes every such op's tests run
on (scalars, tensors, broadcasting pairs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.ops.registry import Case, Shape


def broadcast(*shapes: Shape, what: str = "shapes") -> Shape:
    """numpy broadcasting of ``shapes``, or a ShapeError naming them as ``what``."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(
            f"{what} {' and '.join(str(list(s)) for s in shapes)} do not broadcast"
        ) from None


def elementwise_shape(*shapes: Shape) -> Shape:
    """Output shape of an elementwise op: numpy broadcasting of all inputs."""
    first = shapes[0]
    if type(first) is tuple and all(s == first for s in shapes):
        return first  # the common case, without numpy's general (and slow) path
    return broadcast(*shapes)


def vectorize_sympy(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Lift a scalar SymPy function to object arrays, elementwise with broadcasting."""
    vec = np.vectorize(fn, otypes=[object])

    def apply(*arrays: Any, **_: Any) -> Any:
        return vec(*arrays)

    return apply


UNARY_CASES = (Case(((),)), Case(((3, 4),)))
BINARY_CASES = (
    Case(((), ())),
    Case(((3, 4), (3, 4))),
    Case(((3, 1), (1, 4))),
    Case(((3, 4), ())),
    Case(((4,), (3, 4))),
)
