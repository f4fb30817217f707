"""``tf.random``: constants drawn with numpy, for code (and tests) written against TF."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001

from __future__ import annotations

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
    _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    return constant(rng.uniform(minval, maxval, size=tuple(int(n) for n in shape)), name)


def normal(
    shape: Any,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Any = None,
    seed: int | None = None,
    name: str | None = None,
) -> Tensor:
    _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    return constant(rng.normal(mean, stddev, size=tuple(int(n) for n in shape)), name)


__all__ = ["normal", "uniform"]
