"""What an op costs, from shapes alone: the op table's cost rules and their vocabulary.

A cost is counted in *work units*, flop-equivalents calibrated so that one unit is
about a nanosecond of one core: a float64 add per element is 1, a libm call (sin,
exp, pow) about 20, a LAPACK flop a fraction of one. ``engine.cost`` adds the rules
of a graph's nodes, with a per-op overhead for the Python around each recorded op,
to refuse a request before it computes anything (``bench/`` and the cost tests
hold the units against measured time and memory).

A rule is ``cost(input shapes, output shape, attrs) -> Cost``; it is declared in
each op's ``defop`` block beside its shape rule (``OpDef.cost``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from math import prod
from typing import Any, NamedTuple

Shape = tuple[int, ...]

CHEAP = 1.0  # add, mul, abs, a copy: memory-bound, ~1 ns per element
LIBM = 20.0  # sin, exp, pow, atan2: one libm call per element, 5 to 25 ns
BLAS_FLOP = 0.1  # a matmul flop (BLAS, one thread: 10 to 40 GFLOP/s, less on small stacks)
LAPACK_FLOP = 0.25  # a flop of a small or batched factorisation (LU, inverse)
PYTHON_STEP = 500.0  # one iteration of a Python loop over numpy slices (linrec)
# Around each matrix of a stack, numpy's loop makes a call and copies: on a stack of many
# small matrices that is most of the time (a million 1 x 1 inverses: 77 ms, of which the
# flops are 0.5 ms). Measured per matrix: inv 77 / 238 / 460 / 1,141 ns at n = 1 / 2 / 4 / 8,
# det 61 / 104 / 197 / 498 ns, a matmul of 2 x 2 to 8 x 8 matrices 75 to 135 ns.
LAPACK_CALL = 100.0  # a LAPACK call of one matrix of a stack, and its set-up
LAPACK_COPY = 4.0  # an element copied into or out of that call
BLAS_CALL = 80.0  # one product of a stack of matrices (a BLAS call each)


class Cost(NamedTuple):
    """Work of an op's forward and of its VJP (every input's cotangent), and the bytes
    its forward allocates beyond its output (a factorisation's copies). A tuple: one is
    made per node of every request, and a tuple is the cheapest record to make."""

    forward: float
    backward: float
    scratch: float = 0.0


CostRule = Callable[[tuple[Shape, ...], Shape, Mapping[str, Any]], Cost]


def size(shape: Shape) -> int:
    return math.prod(shape)


def per_element(work: float = LIBM, backward: float | None = None) -> CostRule:
    """An op that touches each element of its largest operand a fixed number of times
    (elementwise ops, reductions, copies): ``work`` per element forward, ``backward``
    (default: twice that, plus a cheap pass per input) per element for the cotangents."""

    def rule(ins: tuple[Shape, ...], out: Shape, _attrs: Mapping[str, Any]) -> Cost:
        n = prod(out)
        for shape in ins:
            m = prod(shape)
            if m > n:
                n = m
        back = 2 * work + CHEAP * len(ins) if backward is None else backward
        return Cost(work * n, back * n)

    return rule


ELEMENTWISE = per_element(LIBM)  # the default of an op that declares none: a libm call
CHEAP_ELEMENTWISE = per_element(CHEAP)


def scaled(flops: Callable[..., float], rate: float, *, scratch: Callable[..., float] | None = None,
           calls: Callable[..., float] | None = None, backward: float = 2.0) -> CostRule:
    """A dense linear-algebra op: ``flops(*input shapes, out)`` at ``rate`` work per flop,
    and ``calls(*input shapes, out)`` work around the calls of a stack's matrices (see
    ``LAPACK_CALL``); its VJP is ``backward`` times the forward (two matmuls, a transposed
    solve)."""

    def rule(ins: tuple[Shape, ...], out: Shape, _attrs: Mapping[str, Any]) -> Cost:
        work = flops(*ins, out) * rate + CHEAP * size(out)
        if calls is not None:
            work += calls(*ins, out)
        extra = 0.0 if scratch is None else scratch(*ins, out)
        return Cost(work, backward * work, extra)

    return rule
