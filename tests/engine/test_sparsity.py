"""Sparsity detection and compressed evaluation: every op's rule, Rosenbrock, random graphs.

The references are the dense derivatives the engine already trusts (``engine.derive.hessian``
and ``tape.jacobian``): a compressed result must equal them, and a detected pattern
must cover every one of their non-zeros (a missed one would be silently wrong).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from bench import rosenbrock
from engine import GradientTape, Variable, sparse_hessian, sparse_jacobian
from engine.derive import index_sets
from engine.derive.colouring import is_valid
from engine.derive.hessian import hessian
from engine.derive.pattern import hessian_pattern, jacobian_pattern, propagate
from engine.derive.sparse import PatternTooLarge, SparseResult
from engine.ops import OPS, dependence
from engine.ops.registry import Case, F, OpDef
from engine.tensor import OPS_FN, Tensor
from tests.engine.op_cases import op_cases, rng_for
from tests.gradcheck import sample_inputs


def pattern_of(s: SparseResult) -> np.ndarray:
    out = np.zeros(s.shape, dtype=bool)
    out[s.rows, s.cols] = True
    return out


def assert_matches_dense(s: SparseResult, dense: np.ndarray) -> None:
    """Same values, and no non-zero of ``dense`` outside the detected pattern."""
    assert s.shape == dense.shape
    missed = (dense != 0) & ~pattern_of(s)
    assert not missed.any(), f"pattern misses non-zeros at {np.argwhere(missed)[:5].tolist()}"
    np.testing.assert_allclose(s.todense(), dense, rtol=1e-10, atol=1e-12)
    assert s.nnz == s.rows.size == s.values.size
    if s.shape[0] == s.shape[1]:  # a Hessian: rows sharing a column differ in colour
        assert is_valid(s.cols, s.rows, s.colouring)


def op_inputs(op: OpDef, case: Case) -> tuple[list[Variable], dict, np.random.Generator]:
    rng = rng_for(op, case, "sparsity")
    args = sample_inputs(op, case, rng)
    return [Variable(a) for a in args], op.normalize_attrs(case.attrs), rng


# ------------------------------------------------------------------ every op


@pytest.mark.parametrize(("op", "case"), op_cases())
def test_sparse_hessian_of_every_op_equals_the_dense_one(op: OpDef, case: Case) -> None:
    xs, attrs, rng = op_inputs(op, case)
    fn = OPS_FN[op.name]
    w = rng.standard_normal(fn(*xs, **attrs).shape)
    targets = {
        # linear in the op's output: the Hessian is the op's own second derivative,
        # so this checks its second-order rule (linear, bilinear, nonlinear)
        "weighted sum": lambda: F.sum(fn(*xs, **attrs) * w),
        # nonlinear on top: S(y_e)² for every output element, so this checks its deps
        "sum of sin": lambda: F.sum(F.sin(fn(*xs, **attrs))),
    }
    for name, target in targets.items():
        dense = hessian(target, xs).matrix
        got = sparse_hessian(target, xs)
        try:
            assert_matches_dense(got, dense)
        except AssertionError as e:
            raise AssertionError(f"{op.name}, target {name}: {e}") from None
        assert got.colours <= max(1, dense.shape[0]) and got.colours >= got.structure.lower_bound


@pytest.mark.parametrize(("op", "case"), op_cases())
def test_sparse_jacobian_of_every_op_equals_the_dense_one(op: OpDef, case: Case) -> None:
    xs, attrs, _ = op_inputs(op, case)
    with GradientTape(persistent=True) as tape:
        y = OPS_FN[op.name](*xs, **attrs)
    blocks = tape.jacobian(y, xs, unconnected_gradients="zero")
    dense = np.concatenate([b.numpy().reshape(y.size, -1) for b in blocks], axis=1)
    got = sparse_jacobian(y, xs, tape=tape)
    assert_matches_dense(got, dense)
    # reverse mode colours rows: no column may hold two rows of one colour
    assert is_valid(got.cols, got.rows, got.colouring)


def test_every_op_has_a_rule_and_only_zero_derivative_ops_depend_on_nothing() -> None:
    assert [name for name, op in OPS.items() if op.sparsity is None] == []
    nothing = {name for name, op in OPS.items() if op.sparsity.deps is dependence.nothing}
    no_gradient = {"less", "greater", "less_equal", "greater_equal", "equal", "not_equal",
                   "logical_and", "logical_or", "logical_not"}  # TF's NotDifferentiable ops
    assert nothing == {"sign", "floor", "ceil", "stop_gradient", *no_gradient}


# ----------------------------------------------------------------- Rosenbrock


def rosenbrock_fn(x: Variable):
    return lambda: rosenbrock.in_engine_ops(x)


def test_rosenbrock_sparse_hessian_is_the_exact_tridiagonal_one() -> None:
    n = 40
    x = Variable(np.random.default_rng(3).uniform(-2, 2, n), name="x")
    got = sparse_hessian(rosenbrock_fn(x), [x])
    want = rosenbrock.exact_hessian(x.numpy())
    assert_matches_dense(got, hessian(rosenbrock_fn(x), [x]).matrix)
    np.testing.assert_allclose(got.todense(), want, rtol=1e-12, atol=1e-9)
    assert got.nnz == 3 * n - 2
    assert got.colours == 3
    s = got.structure
    assert (s.kind, s.bandwidth, s.lower_bound, s.colours) == ("banded", 1, 3, 3)
    np.testing.assert_allclose(got.gradients[0].numpy(),
                               hessian(rosenbrock_fn(x), [x]).gradients[0].numpy())


def test_rosenbrock_at_ten_thousand_sources_in_three_colours() -> None:
    n = 10_000
    x = Variable(np.linspace(-1.2, 1.2, n), name="x")
    got = sparse_hessian(rosenbrock_fn(x), [x])
    assert got.colours == 3 and got.nnz == 3 * n - 2
    # the exact Hessian's entries, without building it (800 MB dense)
    want = rosenbrock.exact_entries(x.numpy(), got.rows, got.cols)
    np.testing.assert_allclose(got.values, want, rtol=1e-12, atol=1e-9)


# --------------------------------------------------------------- structures


def sl(t: Tensor, begin: int, end: int | None = None) -> Tensor:
    return F.slice(t, begin=[begin], end=None if end is None else [end])


X6 = np.linspace(-0.9, 0.8, 6)


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("zero", lambda x: F.sum(x * 3.0)),
        ("diagonal", lambda x: F.sum(F.sin(x))),
        ("block-diagonal", lambda x: F.sum(F.logsumexp(F.reshape(x, shape=[2, 3]), axis=1))),
        ("dense", lambda x: F.logsumexp(x)),
        ("sparse", lambda x: F.sum(sl(x, 0, 1)) * F.sum(sl(x, 1))),  # an arrowhead
        ("banded", lambda x: F.sum(F.cos(sl(x, 1) * sl(x, 0, -1)))),
    ],
)
def test_structure_kind(kind: str, target) -> None:
    n = 6 if kind != "banded" else 12
    x = Variable(np.linspace(-0.9, 0.8, n))
    got = sparse_hessian(lambda: target(x), [x])
    assert_matches_dense(got, hessian(lambda: target(x), [x]).matrix)
    assert got.structure.kind == kind
    assert got.structure.nnz == got.nnz
    assert got.structure.density == pytest.approx(got.nnz / n**2)


def test_several_sources_a_list_target_and_an_unused_source() -> None:
    x = Variable(X6)
    z = Variable(np.array([0.3, -0.2, 0.5]))
    unused = Variable(1.5)

    def fn() -> list[Tensor]:
        return [F.sum(F.exp(sl(x, 0, 3) * z)), F.sum(x ** 3.0)]

    got = sparse_hessian(fn, [x, z, unused])
    ref = hessian(fn, [x, z, unused])
    assert_matches_dense(got, ref.matrix)
    assert got.gradients[2] is None and ref.gradients[2] is None
    assert float(got.value.value) == pytest.approx(sum(float(t.value) for t in fn()))


def test_unwatched_constant_gives_zero_rows_as_the_dense_hessian() -> None:
    c = Tensor(X6)
    x = Variable(X6[:3])
    fn = lambda: F.sum(F.sin(c) * F.sum(x * x))  # noqa: E731
    got = sparse_hessian(fn, [x, c])
    assert_matches_dense(got, hessian(fn, [x, c]).matrix)
    with_watch = sparse_hessian(fn, [x, c], watch=[c])
    assert_matches_dense(with_watch, hessian(fn, [x, c], watch=[c]).matrix)
    assert with_watch.nnz > got.nnz


def test_hessian_needs_a_scalar_target() -> None:
    x = Variable(X6)
    with pytest.raises(ValueError, match="scalar"):
        sparse_hessian(lambda: F.sin(x), [x])


# ---------------------------------------------------------- random composites


def random_program(rng: np.random.Generator, x: Tensor) -> Tensor:
    """A random scalar function of x mixing every kind of rule: elementwise, products of
    shifted slices, reductions along an axis, scans, matmuls, moves."""
    n = x.shape[0]
    pool = [x]
    for _ in range(6):
        a = pool[rng.integers(len(pool))]
        k = rng.integers(9)
        if k == 0:
            y = [F.sin, F.exp, F.tanh, F.square, F.abs, F.neg][rng.integers(6)](a * 0.5)
        elif k == 1:
            y = a * pool[rng.integers(len(pool))]
        elif k == 2:
            s = int(rng.integers(1, 3))
            y = F.pad_slice(sl(a, s) * sl(a, 0, -s) / (2.0 + F.cos(sl(a, s))),
                            shape=[n], begin=[0], end=[n - s])
        elif k == 3:
            y = F.reshape(F.softmax(F.reshape(a, shape=[n // 4, 4]), axis=1), shape=[n])
        elif k == 4:
            y = F.cumprod(F.tanh(a), axis=0, reverse=bool(rng.integers(2)))
        elif k == 5:
            m = np.triu(rng.standard_normal((n, n)), k=-1) * (rng.random((n, n)) < 0.3)
            y = F.matmul(Tensor(m), a)
        elif k == 6:
            y = F.reshape(F.transpose(F.reshape(a, shape=[4, n // 4])), shape=[n])
        elif k == 7:
            y = F.maximum(a, F.pad_slice(sl(a, 1), shape=[n], begin=[0], end=[n - 1]))
        else:
            y = F.concat(F.sigmoid(sl(a, n // 2)), F.log1p(F.square(sl(a, 0, n // 2))), axis=0)
        pool.append(y)
    picks = [pool[i] for i in rng.choice(len(pool), size=2, replace=False)]
    return F.sum(picks[0] * F.cos(picks[1])) + F.sum(F.square(pool[-1]))


@pytest.mark.parametrize("seed", range(12))
def test_random_composite_graph(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = Variable(rng.uniform(-1, 1, 12))
    program_seed = int(rng.integers(1 << 30))

    def fn() -> Tensor:
        return random_program(np.random.default_rng(program_seed), x)

    dense = hessian(fn, [x]).matrix
    got = sparse_hessian(fn, [x])
    assert_matches_dense(got, dense)
    assert got.colours <= got.shape[0]

    def vector() -> Tensor:
        return F.tanh(x) * random_program(np.random.default_rng(program_seed), x)

    with GradientTape(persistent=True) as tape:
        y = vector()
    jac = sparse_jacobian(y, [x], tape=tape)
    assert_matches_dense(jac, tape.jacobian(y, x).numpy())


# -------------------------------------------------------- detection itself


def test_jacobian_pattern_of_shifted_products_is_banded_and_exact() -> None:
    x = Variable(np.arange(1.0, 9.0))
    with GradientTape() as tape:
        y = sl(x, 2) * sl(x, 0, -2) + F.exp(sl(x, 1, -1))
    p = jacobian_pattern(tape.raw_entries, y, [x])
    want = np.zeros((6, 8), dtype=bool)
    for i in range(6):
        want[i, [i, i + 1, i + 2]] = True
    np.testing.assert_array_equal(p.todense(), want)


def test_pattern_of_every_tensor_without_a_target() -> None:
    x = Variable(np.arange(1.0, 7.0))
    with GradientTape() as tape:
        y = F.reshape(x, shape=[2, 3])
        s = F.sum(y, axis=0)
        c = F.stop_gradient(s)
    found = propagate(tape.raw_entries, [x])
    np.testing.assert_array_equal(found.of(y).todense(), np.eye(6, dtype=bool))
    np.testing.assert_array_equal(found.of(s).todense(), np.eye(3, dtype=bool)[:, [0, 1, 2] * 2])
    assert found.of(c).nnz == 0
    assert found.hessian is None


def test_a_source_that_is_an_intermediate_keeps_both_paths() -> None:
    x = Variable(np.linspace(-0.5, 0.7, 5))
    with GradientTape(persistent=True) as tape:
        y = F.cumprod(x * x)
        t = F.sin(y) * x + F.sum(y)
    blocks = tape.jacobian(t, [x, y])
    dense = np.concatenate([b.numpy().reshape(5, -1) for b in blocks], axis=1)
    assert_matches_dense(sparse_jacobian(t, [x, y], tape=tape), dense)


def test_an_op_with_no_rule_is_dense_and_nonlinear() -> None:
    """The fallback: a copy of ``mul`` without its rule still gives a correct superset."""
    x = Variable(np.linspace(-0.5, 0.7, 4))
    with GradientTape() as tape:
        y = x * x
        target = F.sum(y)
    ruleless = dataclasses.replace(OPS["mul"], sparsity=None)
    entries = [(ruleless if e[0].name == "mul" else e[0], *e[1:]) for e in tape.raw_entries]
    rows, cols, n = hessian_pattern(entries, [target], [x])
    assert rows.size == n * n  # every pair: one output element of mul reads all of x
    assert jacobian_pattern(entries, y, [x]).nnz == n * n
    exact_rows, _, _ = hessian_pattern(tape.raw_entries, [target], [x])
    assert exact_rows.size == n  # x * x: the diagonal


def test_too_dense_a_pattern_for_the_bound_is_refused() -> None:
    x = Variable(np.linspace(-0.5, 0.7, 6))
    fn = lambda: F.sum(F.sin(x)) * F.sum(F.cos(x))  # noqa: E731
    with pytest.raises(PatternTooLarge, match="limit of 30"):
        sparse_hessian(fn, [x], max_pairs=30)  # 36 pairs: every one
    got = sparse_hessian(fn, [x], max_pairs=36)
    assert got.structure.kind == "dense" and got.colours == 6
    assert_matches_dense(got, hessian(fn, [x]).matrix)
    with pytest.raises(PatternTooLarge):
        sparse_jacobian(lambda: F.cumprod(x), [x], max_pairs=20)  # 21 pairs
    assert sparse_jacobian(lambda: F.cumprod(x), [x], max_pairs=21).nnz == 21


def test_index_maps_run_forwards_on_labels() -> None:
    pad = OPS["pad_slice"]
    attrs = pad.normalize_attrs({"shape": [6], "begin": [1], "end": [6], "step": [2]})
    (m,) = dependence.by_forward(pad, ((3,),), (6,), attrs)
    np.testing.assert_array_equal(m.slot, [1, 3, 5])
    np.testing.assert_array_equal(m.elem, [0, 1, 2])
    concat = OPS["concat"]
    maps = dependence.by_forward(concat, ((2,), (3,)), (5,), {"axis": 0})
    np.testing.assert_array_equal(maps[1].slot, [2, 3, 4])
    np.testing.assert_array_equal(maps[1].elem, [0, 1, 2])
    scan = dependence.along((2, 3), 1, exclusive=True, reverse=True)
    assert sorted(zip(scan.slot.tolist(), scan.elem.tolist(), strict=True)) == [
        (0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)
    ]
    widened = dependence.along((1, 50), 1, max_pairs=10)
    assert isinstance(widened, dependence.Groups)


def test_collect_unions_and_dedupes() -> None:
    p = index_sets.from_coo(np.array([0, 0, 1, 2]), np.array([3, 1, 1, 0]), 3, 4)
    np.testing.assert_array_equal(p.indptr, [0, 2, 3, 4])
    np.testing.assert_array_equal(p.indices, [1, 3, 1, 0])
    pairs = dependence.Pairs(np.array([0, 0, 1]), np.array([0, 1, 2]))
    q = index_sets.collect(pairs, p, 2)
    np.testing.assert_array_equal(q.todense(), [[False, True, False, True], [True, False, False,
                                                                            False]])
    groups = dependence.grouped(np.array([0, 0, -1]), np.array([0, 0, 1]))
    r = index_sets.collect(groups, p, 3)
    assert r.lengths().tolist() == [2, 2, 0]
    assert math.prod(r.todense().shape) == 12


def test_the_patterns_held_at_once_are_bounded(monkeypatch) -> None:
    """Twenty tensors whose every element depends on all 50 sources, alive together until
    they are added up, hold 50,000 indices at once: past 8 steps' worth of a 2,500-pair
    bound (20,000), with no floor; the default floor lets it through."""
    from engine.derive import pattern

    x = Variable(np.linspace(-0.5, 0.7, 50))

    def fn():
        y = F.sum(x) * np.ones(50)  # linear: no second-order pairs on the way
        parts = [y * (k + 1.0) for k in range(20)]
        total = parts[0]
        for p in parts[1:]:
            total = total + p
        return F.square(F.sum(total))  # 2,500 pairs: every one

    monkeypatch.setattr(pattern, "HELD_FLOOR", 0)
    with pytest.raises(PatternTooLarge, match="held at once would total"):
        sparse_hessian(fn, [x], max_pairs=2500)
    monkeypatch.setattr(pattern, "HELD_FLOOR", 1 << 22)
    got = sparse_hessian(fn, [x], max_pairs=2500)
    assert_matches_dense(got, hessian(fn, [x]).matrix)
