"""Meta-tests on the op table: every op carries everything the engine, the catalogue
and the table-driven tests read, and each case's declared shape is the real one."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import engine
from engine import OPS
from engine.ops.registry import Case, Domain, F, OpDef
from engine.tensor import OPS_FN
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import call_with_attrs, sample_inputs

# The wire contract's catalogue minimum (API.md, "Op catalogue"), leaves aside.
CONTRACT_OPS = """
    neg abs sign exp log log1p expm1 sqrt square reciprocal sin cos tan asin acos atan
    sinh cosh tanh asinh acosh atanh sigmoid relu softplus floor ceil identity stop_gradient
    add sub mul div pow maximum minimum atan2
    sum mean prod max min logsumexp softmax
    reshape transpose broadcast_to expand_dims squeeze concat stack slice
    matmul inv det solve
    gather scatter_add tile strided_slice strided_slice_grad where xlogy div_no_nan add_n norm
    less greater less_equal greater_equal equal not_equal logical_and logical_or logical_not
""".split()

ALL_OPS = [pytest.param(op, id=name) for name, op in OPS.items()]


def test_every_contract_op_is_in_the_table() -> None:
    assert sorted(set(CONTRACT_OPS) - set(OPS)) == []


@pytest.mark.parametrize("op", ALL_OPS)
def test_op_is_complete(op: OpDef) -> None:
    assert callable(op.forward), "forward"
    assert callable(op.sympy), "SymPy form"
    assert callable(op.infer_shape), "shape rule"
    assert op.formula.strip(), "formula"
    assert op.convention.strip(), "convention"
    assert op.nonfinite.strip(), "non-finite reason"
    assert op.family.strip(), "family"
    assert op.kink is None or callable(op.kink), "kink mask"
    assert op.domains and all(isinstance(d, Domain) for d in op.domains), "domain"
    for d in op.domains:
        assert d.low < d.high and d.gap >= 0
    if op.arity is not None:
        assert len(op.domains) <= op.arity, "more domains than inputs"
    assert op.cases and all(isinstance(c, Case) for c in op.cases), "cases"


@pytest.mark.parametrize("op", ALL_OPS)
def test_op_is_differentiable_or_declares_a_none_gradient(op: OpDef) -> None:
    if op.vjp is None:
        assert "None" in op.convention, (
            f"{op.name} has no vjp, so its convention must say the gradient is None"
        )
    else:
        assert callable(op.vjp)


@pytest.mark.parametrize("op", ALL_OPS)
def test_op_is_exported_under_its_name(op: OpDef) -> None:
    assert OPS[op.name] is op
    fn = OPS_FN[op.name]
    assert fn.op is op
    exported = getattr(engine, op.name)
    # the op's callable, or TF's spelling of it where TF's signature differs
    # (``gather(params, indices, axis)``, ``add_n(inputs)``), which calls the op
    assert exported is fn or (op.name in engine.__all__ and exported.__module__ != fn.__module__)
    assert getattr(F, op.name) is fn


@pytest.mark.parametrize("op", ALL_OPS)
def test_attr_defaults_match_the_forward_defaults(op: OpDef) -> None:
    if not op.attrs:
        return
    params = inspect.signature(op.forward).parameters
    keywords = {
        name: p.default for name, p in params.items()
        if p.default is not inspect.Parameter.empty
    }
    assert set(keywords) == set(op.attrs), "the forward's keyword arguments are the attrs"
    for name, spec in op.attrs.items():
        assert keywords[name] == spec.default, f"attr {name!r}"


@pytest.mark.parametrize(("op", "case"), op_cases())
def test_case_is_valid_and_its_shape_rule_is_exact(op: OpDef, case: Case) -> None:
    if op.arity is None:
        assert len(case.shapes) >= 1
    else:
        assert len(case.shapes) == op.arity
    attrs = op.normalize_attrs(case.attrs)  # raises if a case uses a bad attr
    args = sample_inputs(op, case, rng_for(op, case, "table"))
    assert tuple(np.shape(a) for a in args) == tuple(case.shapes), "sample shapes"
    shape = op.infer_shape(*case.shapes, **attrs)
    ans = OPS_FN[op.name](*args, **attrs).value
    assert np.shape(ans) == tuple(shape), "infer_shape disagrees with the forward"
    if ans.ndim == 0:  # the engine's fast path: numpy float64 scalars, never 0-d arrays
        assert type(ans) is np.float64, f"0-d value of type {type(ans).__name__}"
    else:
        assert ans.dtype == np.float64
    if op.kink is not None:
        mask = np.asarray(call_with_attrs(op.kink, args, attrs))
        assert mask.dtype == bool



@pytest.mark.parametrize(("op", "case"), op_cases(differentiable=True))
def test_inputs_without_gradient_are_exactly_the_none_gradients(op: OpDef, case: Case) -> None:
    """``inputs_without_gradient`` is what graph analyses read for "no path through this
    input"; the tape must agree with it input by input."""
    attrs = op.normalize_attrs(case.attrs)
    args = [engine.Variable(a) for a in sample_inputs(op, case, rng_for(op, case, "none"))]
    with engine.GradientTape() as tape:
        out = OPS_FN[op.name](*args, **attrs)
    grads = tape.gradient(out, args)
    for k, grad in enumerate(grads):
        assert (grad is None) == (k in op.inputs_without_gradient), f"input {k}: {grad}"
