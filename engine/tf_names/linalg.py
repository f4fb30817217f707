"""``tf.linalg``: the names TensorFlow has there that map onto the engine's ops."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001

from __future__ import annotations

from typing import Any

import numpy as np

from engine.tensor import Tensor, constant
from engine.tf_names._ops import op
from engine.tf_names.core import norm


def matmul(
    a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False, name: str | None = None
) -> Tensor:
    if transpose_a:
        a = matrix_transpose(a)
    if transpose_b:
        b = matrix_transpose(b)
    return op("matmul", a, b)


def matrix_transpose(a: Any, name: str | None = None) -> Tensor:
    rank = np.ndim(a)
    if rank < 2:
        raise ValueError(f"matrix_transpose needs rank >= 2, got shape {list(np.shape(a))}")
    return op("transpose", a, perm=[*range(rank - 2), rank - 1, rank - 2])


def det(input: Any, name: str | None = None) -> Tensor:  # noqa: A002
    return op("det", input)


def inv(input: Any, adjoint: bool = False, name: str | None = None) -> Tensor:  # noqa: A002
    return op("inv", matrix_transpose(input) if adjoint else input)


def solve(matrix: Any, rhs: Any, adjoint: bool = False, name: str | None = None) -> Tensor:
    return op("solve", matrix_transpose(matrix) if adjoint else matrix, rhs)


def diag(diagonal: Any, name: str | None = None) -> Tensor:
    """``tf.linalg.diag``: a (batch of) square matrix with ``diagonal`` on its diagonal,
    as diagonal[..., None] times the identity (recorded, so differentiable)."""
    n = np.shape(diagonal)[-1]
    return op("mul", op("expand_dims", diagonal, axis=-1), constant(np.eye(n)))


def trace(x: Any, name: str | None = None) -> Tensor:
    n = np.shape(x)[-1]
    return op("sum", op("mul", x, constant(np.eye(n))), axis=[-2, -1])


__all__ = ["det", "diag", "inv", "matmul", "matrix_transpose", "norm", "solve", "trace"]
