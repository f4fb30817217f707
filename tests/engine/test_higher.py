"""Derivatives of every order from nested tapes, against SymPy's derivatives of the same text."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import sympy as sp

import engine as tf
from engine.check.job import build_job
from engine.check.limits import CheckLimits
from engine.check.sympy_job import run_job
from engine.derive import derivatives
from engine.derive.higher import derivatives_up_to, entries, sweeps_needed
from engine.derive.kinds import DERIVATIVE
from engine.derive.query import Query
from engine.errors import GraphError, LimitError, ShapeError
from engine.graphs.build import build_graph
from engine.graphs.expression import parse_expression
from engine.graphs.graph import Limits

# (expression text, point): the text is both the engine's expression and SymPy's input
FUNCTIONS = [
    ("x**3", {"x": 3.0}),
    ("sin(x) * exp(x)", {"x": 0.7}),
    ("log(1 + x**2) / (2 + cos(x))", {"x": -1.3}),
    ("tanh(x) + sqrt(x)", {"x": 0.4}),
    ("x * y + sin(x * y)", {"x": 0.5, "y": -1.2}),
    ("exp(x) * y**3 - x / y", {"x": 0.3, "y": 1.7}),
    ("(x + 2 * y - z)**3 * cos(z)", {"x": 0.2, "y": 0.1, "z": 0.9}),
    ("atan(x * y * z) + x**2 * z", {"x": 0.6, "y": -0.5, "z": 1.1}),
]
SYMPY_NAMES = {"sqrt": sp.sqrt, "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos,
               "tanh": sp.tanh, "atan": sp.atan}


def sympy_tensor(text: str, point: dict[str, float], order: int) -> np.ndarray:
    """Every order-``order`` partial of ``text`` at ``point``, as an (n,)*order array."""
    names = list(point)
    syms = sp.symbols(names, real=True)
    f = sp.sympify(text, locals={**SYMPY_NAMES, **dict(zip(names, syms, strict=True))})
    at = {s: sp.Float(v, 30) for s, v in zip(syms, point.values(), strict=True)}
    partial = {(): f}  # every index path, each one diff from its prefix: no symmetry assumed
    for idx in itertools.chain.from_iterable(
        itertools.product(range(len(names)), repeat=k) for k in range(1, order + 1)
    ):
        partial[idx] = sp.diff(partial[idx[:-1]], syms[idx[-1]])
    out = np.empty((len(names),) * order)
    for idx in itertools.product(range(len(names)), repeat=order):
        out[idx] = float(partial[idx].xreplace(at).evalf(30))
    return out


@pytest.mark.parametrize(("text", "point"), FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_every_order_up_to_4_matches_sympy(text, point):
    q = Query(graph=parse_expression(text), values=point)
    result = derivatives.derivative(dataclasses.replace(q, order=4))
    assert result.sources == sorted(point, key=list(point).index)
    assert len(result.derivatives) == 4
    for order, tape in enumerate(result.derivatives, start=1):
        ref = sympy_tensor(text, point, order)
        expected_shape = () if len(point) == 1 else (len(point),) * order
        assert np.shape(tape) == expected_shape
        np.testing.assert_allclose(tape, ref.reshape(expected_shape), rtol=1e-9, atol=1e-9)


def test_one_source_gives_numbers_and_the_seed_example_gives_27_18_6():
    q = Query(graph=parse_expression("x**3"), values={"x": 3.0})
    result = derivatives.derivative(dataclasses.replace(q, order=3))
    assert [float(d) for d in result.derivatives] == [27.0, 18.0, 6.0]
    assert all(np.ndim(d) == 0 for d in result.derivatives)


def test_nested_tapes_on_variables_directly():
    x, y = tf.Variable(0.7), tf.Variable(-0.4)
    h = derivatives_up_to(lambda: tf.sin(x * y) + tf.exp(x) * y**3, [x, y], 3)
    ref = sympy_tensor("sin(x*y) + exp(x)*y**3", {"x": 0.7, "y": -0.4}, 3)
    np.testing.assert_allclose(h.derivatives[2], ref, rtol=1e-12)
    assert float(h.value) == pytest.approx(np.sin(-0.28) + np.exp(0.7) * -0.064)


def test_each_multiset_of_indices_is_swept_once():
    xs = [tf.Variable(v) for v in (0.1, 0.2, 0.3)]
    h = derivatives_up_to(lambda: (xs[0] * xs[1] * xs[2]) ** 2, xs, 4)
    assert h.sweeps == sweeps_needed(3, 4) == 1 + 3 + 6 + 10
    for order, d in enumerate(h.derivatives, start=1):
        for perm in itertools.permutations(range(order)):
            np.testing.assert_array_equal(d, np.transpose(d, perm))


def test_an_unwatched_or_unconnected_source_gives_zeros_and_a_note():
    g = build_graph([
        {"id": "x", "op": "variable", "value": 2.0},
        {"id": "c", "op": "constant", "value": 5.0},
        {"id": "u", "op": "variable", "value": 1.0},
        {"id": "v", "op": "sin", "inputs": ["u"]},  # reads u (so watches it), off the path
        {"id": "y", "op": "pow", "inputs": ["x", 2]},
    ])
    q = Query(graph=g, sources=["x", "c", "u"])
    result = derivatives.derivative(dataclasses.replace(q, order=2))
    np.testing.assert_array_equal(result.derivatives[0], [4.0, 0.0, 0.0])
    np.testing.assert_array_equal(result.derivatives[1], np.diag([2.0, 0.0, 0.0]))
    reasons = {n.source: n.reason for n in result.notes if n.source}
    assert reasons == {"c": "not_watched", "u": "unconnected"}
    assert result.gradients == {"x": 4.0, "c": None, "u": None}


def test_output_gradients_weight_every_order():
    q = Query(graph=parse_expression("x**3"), values={"x": 2.0},
                          output_gradients={"_1": 0.5})
    result = derivatives.derivative(dataclasses.replace(q, order=3))
    assert [float(d) for d in result.derivatives] == [6.0, 6.0, 3.0]


def test_a_list_target_is_summed():
    g = build_graph([
        {"id": "x", "op": "variable", "value": 2.0},
        {"id": "a", "op": "pow", "inputs": ["x", 3]},
        {"id": "b", "op": "sin", "inputs": ["x"]},
    ])
    result = derivatives.derivative(Query(graph=g, target=["a", "b"], order=2))
    assert float(result.derivatives[1]) == pytest.approx(12.0 - np.sin(2.0))


def test_a_non_scalar_target_is_a_shape_error_naming_it():
    q = Query(graph=parse_expression("x * y"), values={"x": [1.0, 2.0], "y": 3.0},
                          sources=["y"])
    with pytest.raises(ShapeError) as info:
        derivatives.derivative(dataclasses.replace(q, order=2))
    assert info.value.node == "_1" and info.value.field == "target"


def test_a_non_scalar_source_is_a_shape_error_naming_it():
    q = Query(graph=parse_expression("sum(x)"), values={"x": [1.0, 2.0]})
    with pytest.raises(ShapeError) as info:
        derivatives.derivative(dataclasses.replace(q, order=2))
    assert info.value.node == "x" and info.value.field == "sources"


def test_an_inner_node_as_source_is_a_graph_error():
    q = Query(graph=parse_expression("sin(x) * 2"), values={"x": 1.0},
                          sources=["_1"])
    with pytest.raises(GraphError, match="must be leaves"):
        derivatives.derivative(dataclasses.replace(q, order=2))


def test_order_beyond_the_limit_is_a_limit_error():
    q = Query(graph=parse_expression("x**3"), values={"x": 1.0})
    with pytest.raises(LimitError) as info:
        derivatives.derivative(dataclasses.replace(q, order=7, max_order=6))
    assert info.value.field == "order"
    with pytest.raises(GraphError):
        derivatives.derivative(dataclasses.replace(q, order=0))


def test_entries_over_the_work_limit_are_a_limit_error():
    limits = Limits(max_derivative_work=entries(3, 3) - 1)
    q = Query(graph=parse_expression("x * y * z"),
                          values={"x": 1.0, "y": 2.0, "z": 3.0}, limits=limits)
    with pytest.raises(LimitError, match="39 entries"):
        derivatives.derivative(dataclasses.replace(q, order=3))
    assert entries(3, 3) == 3 + 9 + 27 and entries(1, 5) == 5


@pytest.mark.parametrize(("text", "point"), FUNCTIONS[4:7], ids=[f[0] for f in FUNCTIONS[4:7]])
def test_the_symbolic_check_computes_sympys_tensors(text, point):
    q = Query(graph=parse_expression(text), values=point)
    result = derivatives.derivative(dataclasses.replace(q, order=3))
    job, _, _ = build_job(DERIVATIVE, q, result, CheckLimits())
    reply = run_job(job)
    for order in (1, 2, 3):
        got = np.asarray(reply["values"]["derivatives"][str(order)], dtype=np.float64)
        np.testing.assert_allclose(got, sympy_tensor(text, point, order), rtol=1e-12)
    assert set(reply["text"]["derivatives"]) == {"1", "2", "3"}


# b·a^(b-1) where b = 0 is 0, even at a = 0 (a^(b-1) infinite): as JAX and PyTorch, so an
# integer power's higher derivatives at 0 are its polynomial's, not 0·inf = NaN
AT_ZERO = [
    ("x**2", {"x": 0.0}),
    ("x**4 + x**1", {"x": 0.0}),
    ("x**1 * y", {"x": 0.0, "y": 2.0}),
    ("(x + y)**1 + (x - y)**3", {"x": 0.0, "y": 0.0}),
    ("x**3 * y**2", {"x": 0.0, "y": -1.5}),
]


@pytest.mark.parametrize(("text", "point"), AT_ZERO, ids=[f[0] for f in AT_ZERO])
def test_integer_powers_at_zero_have_their_polynomials_derivatives(text, point):
    q = Query(graph=parse_expression(text), values=point)
    result = derivatives.derivative(dataclasses.replace(q, order=4))
    for order, tape in enumerate(result.derivatives, start=1):
        ref = sympy_tensor(text, point, order).reshape(np.shape(tape))
        np.testing.assert_array_equal(tape, ref)  # exact: no NaN, no rounding at 0
    for fmt in ("dense", "coo"):
        hessian = derivatives.hessian(dataclasses.replace(q, format=fmt))
        matrix = hessian.matrix if fmt == "dense" else hessian.sparse.todense()
        np.testing.assert_array_equal(np.reshape(matrix, (len(point),) * 2),
                                      sympy_tensor(text, point, 2).reshape(len(point), -1))
    assert not [n for n in result.notes if n.reason == "non_finite"]


def test_a_tensor_of_exponents_with_zeros_differentiates_at_a_zero_base():
    a = tf.Variable(np.array([0.0, 0.0, 0.0, 1.5]))
    b = tf.constant(np.array([0.0, 1.0, 2.0, 0.0]))
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            y = tf.reduce_sum(a**b)
        g = inner.gradient(y, a)
    h = outer.jacobian(g, a)
    np.testing.assert_array_equal(g.numpy(), [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(h.numpy(), np.diag([0.0, 0.0, 2.0, 0.0]))


@pytest.mark.parametrize("point", [{"x": 2.0, "y": 0.0}, {"x": 0.5, "y": 0.0},
                                   {"x": 2.0, "y": 1.0}, {"x": 3.0, "y": -1.0}])
def test_an_exponent_that_is_a_source_keeps_its_derivatives_where_it_is_zero(point):
    """The mask at a zero base and exponent must not touch d/db anywhere else: x**y's
    mixed derivative at y = 0 is 1/x."""
    q = Query(graph=parse_expression("x**y"), values=point)
    result = derivatives.derivative(dataclasses.replace(q, order=3))
    for order, tape in enumerate(result.derivatives, start=1):
        np.testing.assert_allclose(tape, sympy_tensor("x**y", point, order), rtol=1e-12,
                                   atol=1e-12)
    matrix = derivatives.hessian(q).matrix
    np.testing.assert_allclose(matrix, sympy_tensor("x**y", point, 2), rtol=1e-12)
    np.testing.assert_array_equal(matrix, matrix.T)
