"""The (op, case) pairs every table-driven test runs, with stable ids and seeds."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from engine import OPS
from engine.ops.registry import Case, OpDef
from tests.gradcheck import sample_inputs


def case_id(op: OpDef, i: int, case: Case) -> str:
    shapes = ",".join("x".join(map(str, s)) or "scalar" for s in case.shapes)
    attrs = ",".join(f"{k}={v}" for k, v in case.attrs.items())
    return f"{op.name}-{i}-{shapes}" + (f"-{attrs}" if attrs else "")


def op_cases(differentiable: bool | None = None) -> list:
    """pytest params ``(op, case)`` over the whole table; filter on having a vjp."""
    return [
        pytest.param(op, case, id=case_id(op, i, case))
        for op in OPS.values()
        if differentiable is None or (op.vjp is not None) == differentiable
        for i, case in enumerate(op.cases)
    ]


def rng_for(op: OpDef, case: Case, salt: str = "") -> np.random.Generator:
    """A generator seeded by the case itself: failures reproduce, cases differ."""
    key = f"{salt}:{op.name}:{case.shapes}:{sorted(case.attrs.items())}"
    return np.random.default_rng(zlib.crc32(key.encode()))


def assert_shape_rule_matches_forward(op: OpDef, case: Case) -> None:
    """``infer_shape`` gives the shape ``forward`` returns on the case's sampled inputs."""
    attrs = op.normalize_attrs(case.attrs)
    args = sample_inputs(op, case, rng_for(op, case, "shape"))
    assert np.shape(op.forward(*args, **attrs)) == op.infer_shape(*case.shapes, **attrs)
