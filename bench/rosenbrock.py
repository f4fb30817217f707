"""Rosenbrock's function, the reference of the Hessian benchmarks and of engine tests:

    f(x) = sum_i 100 (x[i+1] - x[i]²)² + (1 - x[i])²

written in engine ops, with its exact tridiagonal Hessian by hand, whole or
at given entries (past a few thousand sources the dense matrix would not fit). The wire
form of the same function is Swagger UI's example, ``app.examples.rosenbrock``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine import Tensor

DENSE_UP_TO = 2000  # exact_entries builds the dense Hessian up to this many sources


def in_engine_ops(x: Tensor) -> Tensor:
    """f(x) recorded by the engine, with slices for x[1:] and x[:-1] as the wire graph has."""
    from engine.ops.registry import F

    head, tail = F.slice(x, begin=[1]), F.slice(x, begin=[0], end=[-1])
    return F.sum(100.0 * F.square(head - F.square(tail)) + F.square(1.0 - tail))


def exact_hessian(x: np.ndarray) -> np.ndarray:
    """The Hessian by hand: the reference every competitor must match."""
    n = x.size
    h = np.zeros((n, n))
    i = np.arange(n - 1)
    h[i, i] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    h[i + 1, i + 1] += 200.0
    h[i, i + 1] = h[i + 1, i] = -400.0 * x[:-1]
    return h


def exact_entries(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The exact Hessian at (rows, cols), without the n x n matrix past small n."""
    n = x.size
    if n <= DENSE_UP_TO:
        return exact_hessian(x)[rows, cols]
    out = np.zeros(rows.size)
    diag = rows == cols
    i = rows[diag]
    inner = i < n - 1
    out[diag] = np.where(inner, 1200.0 * x[np.minimum(i, n - 2)] ** 2
                         - 400.0 * x[np.minimum(i + 1, n - 1)] + 2.0, 0.0)
    out[diag] += np.where(i > 0, 200.0, 0.0)
    out[~diag] = -400.0 * x[np.minimum(rows[~diag], cols[~diag])]
    return out
