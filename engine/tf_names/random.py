"""``tf.random``: constants drawn with numpy, for code (and tests) written against TF."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.tensor import Tensor, constant
from engine.tf_names.core import _check_dtype


def uniform(
    shape: Any,
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: Any = None,
    seed: int | None = None,
    name: str | None = None,
) -> Tensor:
    return _drawn(lambda rng, size: rng.uniform(minval, maxval, size), shape, dtype, seed, name)


def normal(
    shape: Any,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Any = None,
    seed: int | None = None,
    name: str | None = None,
) -> Tensor:
    return _drawn(lambda rng, size: rng.normal(mean, stddev, size), shape, dtype, seed, name)


def _drawn(
    draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray],
    shape: Any,
    dtype: Any,
    seed: int | None,
    name: str | None,
) -> Tensor:
    """A constant of ``shape`` drawn by ``draw`` from a generator seeded with ``seed``
    (fresh entropy without one)."""
    _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    return constant(draw(rng, tuple(int(n) for n in shape)), name)


__all__ = ["normal", "uniform"]
