"""The arguments ``gradient`` and ``jacobian`` take, checked and put in the form the
sweeps use, with TF's errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.tape.structure import flatten
from engine.tensor import Tensor


def source_tensors(sources: Any) -> list[Tensor]:
    srcs = flatten(sources)
    for s in srcs:
        if not isinstance(s, Tensor):
            raise ValueError(f"sources must be tensors or variables, got {type(s).__name__}")
    return srcs


def rows_per_sweep(parallel_iterations: Any, use_pfor: bool) -> int | None:
    """Jacobian rows one reverse sweep carries: TF's knob, or one without pfor."""
    if parallel_iterations is not None and (
        isinstance(parallel_iterations, bool)
        or not isinstance(parallel_iterations, int)
        or parallel_iterations < 1
    ):
        raise ValueError(
            f"parallel_iterations must be None or a positive integer, got {parallel_iterations!r}"
        )
    return parallel_iterations if use_pfor else (parallel_iterations or 1)


def unconnected_mode(mode: Any) -> str:
    value = getattr(mode, "value", mode)
    if value not in ("none", "zero"):
        raise ValueError(f"Unknown value for unconnected_gradients: {mode!r}")
    return value


def seeds_for(targets: list[Tensor], output_gradients: Any) -> list[Tensor]:
    """One upstream gradient per target: ones, or the caller's of the target's shape."""
    if output_gradients is None:
        return [Tensor(np.ones(t.shape)) if t.ndim else Tensor(np.float64(1.0)) for t in targets]
    given = flatten(output_gradients)
    if len(given) != len(targets):
        raise ValueError(f"output_gradients has {len(given)} entries for {len(targets)} target(s)")
    seeds = []
    for t, g in zip(targets, given, strict=True):
        if g is None:
            seeds.append(Tensor(np.ones(t.shape)) if t.ndim else Tensor(np.float64(1.0)))
            continue
        g = g if isinstance(g, Tensor) else Tensor(g)
        if g.shape != t.shape:
            raise ValueError(
                f"output_gradients shape {list(g.shape)} does not match target shape "
                f"{list(t.shape)}"
            )
        seeds.append(g)
    return seeds
