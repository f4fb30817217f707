"""The compute endpoints over the wire: shapes, values and TensorFlow's tape semantics."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.support import (
    SEED_1,
    SEED_2,
    SEED_3,
    arr,
    const,
    fd_gradient,
    fd_jacobian,
    graph,
    notes_for,
    op,
    post,
    var,
)

# ------------------------------------------------------------ the seed's three examples


@pytest.mark.parametrize(
    "body", [SEED_1, {"expression": "x**2", "values": {"x": 3.0}}], ids=["graph", "expression"]
)
def test_seed_example_1_gradient_is_6(client, body):
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 6.0}
    assert list(out["outputs"].values()) == [9.0]


@pytest.mark.parametrize(
    "body", [SEED_2, {"expression": "x**3", "values": {"x": 3.0}}], ids=["graph", "expression"]
)
def test_seed_example_2_gradient_is_27_and_second_derivative_18(client, body):
    assert post(client, "gradient", body)["gradients"] == {"x": 27.0}
    out = post(client, "hessian", body)
    assert out["gradients"] == {"x": 27.0}
    assert out["hessian"] == {"x": {"x": 18.0}}
    assert out["matrix"] == [[18.0]]


@pytest.mark.parametrize(
    "body",
    [SEED_3, {"expression": "x**2 + y**3", "values": {"x": 2.0, "y": 3.0}}],
    ids=["graph", "expression"],
)
def test_seed_example_3_gradients_are_4_and_27(client, body):
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 4.0, "y": 27.0}


# ------------------------------------------------------------ response shapes


def test_evaluate_returns_the_outputs_of_the_last_node(client):
    out = post(client, "evaluate", SEED_3)
    assert out["outputs"] == {"z": 2.0**2 + 3.0**3}
    assert set(out) >= {"outputs", "notes", "check"}
    assert "gradients" not in out


def test_evaluate_list_target_gives_each_output(client):
    out = post(client, "evaluate", {**SEED_3, "target": ["x2", "y3"]})
    assert out["outputs"] == {"x2": 4.0, "y3": 27.0}


def test_every_compute_response_carries_notes_and_check(client):
    for kind in ("evaluate", "gradient", "jacobian", "hessian"):
        out = post(client, kind, SEED_3)
        assert isinstance(out["notes"], list)
        check = out["check"]
        assert check["method"] in ("sympy", "numeric", "none")
        assert check["status"] in ("agree", "disagree", "skipped", "timeout")
        assert "max_abs_error" in check and "detail" in check


def test_check_none_is_skipped(client):
    out = post(client, "gradient", {**SEED_3, "check": "none"})
    assert out["check"]["method"] == "none"
    assert out["check"]["status"] == "skipped"


@pytest.mark.parametrize("method", ["numeric", "sympy"])
def test_an_explicit_check_does_not_disagree_on_the_seed(client, method):
    out = post(client, "gradient", {**SEED_3, "check": method})
    assert out["check"]["status"] != "disagree", out["check"]


def test_jacobian_has_shape_target_plus_source(client):
    x = np.array([[0.3, -1.2, 0.7], [1.1, 0.4, -0.5]])
    w = np.array([[0.5, -0.2], [1.5, 0.3], [-0.7, 0.9]])
    body = graph(var("x", x.tolist()), const("w", w.tolist()), op("y", "matmul", "x", "w"))
    out = post(client, "jacobian", body)
    jac = arr(out["jacobian"]["y"]["x"])
    assert jac.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(jac, fd_jacobian(lambda v: v @ w, x), rtol=1e-6, atol=1e-8)
    assert list(out["jacobian"]["y"]) == ["x"]


def test_jacobian_of_an_elementwise_op_is_diagonal(client):
    x = np.array([0.1, 0.5, -2.0])
    out = post(client, "jacobian", graph(var("x", x.tolist()), op("y", "sin", "x")))
    np.testing.assert_allclose(arr(out["jacobian"]["y"]["x"]), np.diag(np.cos(x)), atol=1e-12)


def test_jacobian_unconnected_source_is_null(client):
    body = graph(var("x", [1.0, 2.0]), var("u", 1.0), op("y", "exp", "x"), sources=["x", "u"])
    out = post(client, "jacobian", body)
    assert out["jacobian"]["y"]["u"] is None
    zero = post(client, "jacobian", {**body, "unconnected_gradients": "zero"})
    assert arr(zero["jacobian"]["y"]["u"]).shape == (2,)
    assert not arr(zero["jacobian"]["y"]["u"]).any()


def test_hessian_blocks_and_matrix_match_finite_differences(client):
    x0, y0 = np.array([0.4, -0.8]), np.array([1.3, 0.6, -0.2])
    a = np.array([[0.5, 1.0, -1.0], [2.0, -0.3, 0.7]])

    def f(v: np.ndarray) -> float:
        x, y = v[:2], v[2:]
        return float(np.sum(np.sin(x) * (a @ y)) + np.sum(y**3))

    body = graph(
        var("x", x0.tolist()),
        var("y", y0.tolist()),
        const("a", a.tolist()),
        op("ay", "matmul", "a", "y"),
        op("sx", "sin", "x"),
        op("p", "mul", "sx", "ay"),
        op("y3", "pow", "y", 3),
        op("s1", "sum", "p"),
        op("s2", "sum", "y3"),
        op("f", "add", "s1", "s2"),
    )
    out = post(client, "hessian", body)
    v0 = np.concatenate([x0, y0])
    expected = fd_jacobian(lambda v: fd_gradient(f, v, 1e-5), v0, 1e-5)
    matrix = arr(out["matrix"])
    assert matrix.shape == (5, 5)
    np.testing.assert_allclose(matrix, expected, atol=1e-5)
    np.testing.assert_allclose(arr(out["hessian"]["x"]["y"]), expected[:2, 2:], atol=1e-5)
    assert arr(out["hessian"]["y"]["x"]).shape == (3, 2)
    np.testing.assert_allclose(arr(out["gradients"]["x"]), fd_gradient(f, v0)[:2], atol=1e-6)


def test_hessian_matrix_follows_sources_order(client):
    out = post(client, "hessian", {**SEED_3, "sources": ["y", "x"]})
    assert out["matrix"] == [[18.0, 0.0], [0.0, 2.0]]
    assert list(out["hessian"]) == ["y", "x"]


# ------------------------------------------------------------ TensorFlow semantics


def test_unwatched_constant_gradient_is_null_with_not_watched_note(client):
    body = graph(var("x", 2.0), const("c", 5.0), op("y", "mul", "x", "c"), sources=["x", "c"])
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 5.0, "c": None}
    assert [n["source"] for n in notes_for(out, "not_watched")] == ["c"]


def test_watch_makes_a_constant_differentiable(client):
    body = graph(var("x", 2.0), const("c", 5.0), op("y", "mul", "x", "c"), watch=["c"])
    out = post(client, "gradient", {**body, "sources": ["x", "c"]})
    assert out["gradients"] == {"x": 5.0, "c": 2.0}


def test_default_sources_are_the_watched_leaves(client):
    body = graph(var("x", 2.0), const("c", 5.0), op("y", "mul", "x", "c"))
    assert post(client, "gradient", body)["gradients"] == {"x": 5.0}
    watched = post(client, "gradient", {**body, "watch": ["c"]})
    assert watched["gradients"] == {"x": 5.0, "c": 2.0}


def test_non_trainable_variable_is_not_watched(client):
    body = graph(
        var("x", 2.0),
        var("t", 3.0, trainable=False),
        op("y", "mul", "x", "t"),
        sources=["x", "t"],
    )
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 3.0, "t": None}
    assert notes_for(out, "not_watched")[0]["source"] == "t"


def test_watch_accessed_variables_false_watches_only_watch(client):
    body = {**SEED_3, "watch_accessed_variables": False, "watch": ["x"], "sources": ["x", "y"]}
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 4.0, "y": None}
    assert [n["source"] for n in notes_for(out, "not_watched")] == ["y"]


def test_unconnected_source_is_null_or_zeros(client):
    body = graph(
        var("x", 2.0),
        var("u", [[1.0, 2.0, 3.0]]),
        op("y", "square", "x"),
        op("w", "exp", "u"),  # u is read (so watched) but has no path to the target
        target="y",
        sources=["x", "u"],
    )
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 4.0, "u": None}
    assert notes_for(out, "unconnected")[0]["source"] == "u"
    zero = post(client, "gradient", {**body, "unconnected_gradients": "zero"})
    assert zero["gradients"]["u"] == [[0.0, 0.0, 0.0]]


def test_a_variable_never_read_is_null_or_zeros(client):
    body = graph(var("x", 2.0), var("u", [1.0, 2.0]), op("y", "square", "x"), sources=["x", "u"])
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 4.0, "u": None}
    assert [n["source"] for n in out["notes"]] == ["u"]
    zero = post(client, "gradient", {**body, "unconnected_gradients": "zero"})
    assert zero["gradients"]["u"] == [0.0, 0.0]


def test_list_target_is_summed(client):
    body = {**SEED_3, "target": ["x2", "y3"]}
    out = post(client, "gradient", body)
    assert out["gradients"] == {"x": 4.0, "y": 27.0}
    assert out["outputs"] == {"x2": 4.0, "y3": 27.0}


def test_non_scalar_target_is_summed(client):
    x = np.array([0.2, -1.0, 2.5])
    out = post(client, "gradient", graph(var("x", x.tolist()), op("y", "sin", "x")))
    np.testing.assert_allclose(arr(out["gradients"]["x"]), np.cos(x), atol=1e-12)


def test_output_gradients_weight_the_target(client):
    x, w = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, -2.0])
    body = graph(var("x", x.tolist()), op("y", "mul", "x", "x"), output_gradients={"y": w.tolist()})
    out = post(client, "gradient", body)
    np.testing.assert_allclose(arr(out["gradients"]["x"]), 2 * x * w)


def test_values_override_leaf_values(client):
    out = post(client, "gradient", {**SEED_3, "values": {"x": 5.0}})
    assert out["gradients"] == {"x": 10.0, "y": 27.0}
    assert out["outputs"] == {"z": 25.0 + 27.0}


def test_tensor_sources_with_broadcasting_get_their_own_shapes(client):
    a, b = np.array([[0.5], [-1.0], [2.0]]), np.array([[0.1, 0.2, -0.3, 0.4]])

    def f(a_: np.ndarray, b_: np.ndarray) -> float:
        return float(np.sum(np.tanh(a_ * b_)))

    body = graph(
        var("a", a.tolist()),
        var("b", b.tolist()),
        op("p", "mul", "a", "b"),
        op("t", "tanh", "p"),
        op("s", "sum", "t"),
    )
    out = post(client, "gradient", body)
    ga, gb = arr(out["gradients"]["a"]), arr(out["gradients"]["b"])
    assert ga.shape == (3, 1) and gb.shape == (1, 4)
    np.testing.assert_allclose(ga, fd_gradient(lambda v: f(v, b), a), atol=1e-7)
    np.testing.assert_allclose(gb, fd_gradient(lambda v: f(a, v), b), atol=1e-7)


def test_inline_constants_in_inputs(client):
    out = post(client, "gradient", graph(var("x", [1.0, 2.0]), op("y", "mul", "x", [3.0, -1.0])))
    assert out["gradients"] == {"x": [3.0, -1.0]}


def test_reduction_attrs_travel(client):
    x = np.arange(6.0).reshape(2, 3)
    body = graph(var("x", x.tolist()), op("m", "mean", "x", axis=1, keepdims=True))
    out = post(client, "evaluate", body)
    np.testing.assert_allclose(arr(out["outputs"]["m"]), x.mean(axis=1, keepdims=True))


def test_expression_with_tensors(client):
    x, w = np.array([[0.5, -1.0]]), np.array([[1.0], [2.0]])
    body = {"expression": "tanh(x) @ w", "values": {"x": x.tolist(), "w": w.tolist()}}
    out = post(client, "gradient", body)
    np.testing.assert_allclose(arr(out["gradients"]["w"]), np.tanh(x).T)
    np.testing.assert_allclose(
        arr(out["gradients"]["x"]),
        fd_gradient(lambda v: float(np.sum(np.tanh(v) @ w)), x),
        atol=1e-7,
    )


# ------------------------------------------------------------ kinks and non-finite numbers


def test_log_of_minus_one_is_nan_with_a_note(client):
    out = post(client, "gradient", graph(var("x", -1.0), op("l", "log", "x")))
    assert out["outputs"] == {"l": "NaN"}
    assert out["gradients"] == {"x": -1.0}
    assert any(n["node"] == "l" for n in notes_for(out, "non_finite"))


def test_non_finite_strings_both_ways(client):
    body = graph(var("x", ["-Infinity", 0.0, "Infinity", "NaN"]), op("e", "exp", "x"))
    out = post(client, "evaluate", body)
    assert out["outputs"]["e"] == [0.0, 1.0, "Infinity", "NaN"]


@pytest.mark.parametrize("endpoint", ["evaluate", "gradient", "jacobian", "hessian"])
@pytest.mark.parametrize("given", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_value_given_is_noted_on_its_leaf(client, endpoint, given):
    # The contract: notes explain every non-finite result, this one's cause too.
    out = post(client, endpoint, {"expression": "x*y + 1", "values": {"x": given, "y": 2.0}})
    assert out["outputs"]["f"] == ("NaN" if given == "NaN" else given)
    noted = [n for n in notes_for(out, "non_finite") if n.get("node")]
    assert [n["node"] for n in noted] == ["x"]
    assert "value given is not finite" in noted[0]["detail"]


def test_a_non_finite_value_given_at_some_points_says_which(client):
    out = post(client, "gradient", {"expression": "2*x", "points": [
        {"x": 1.0}, {"x": "NaN"}, {"x": 3.0}, {"x": "-Infinity"}]})
    assert out["outputs"]["f"] == [2.0, "NaN", 6.0, "-Infinity"]
    (note,) = notes_for(out, "non_finite")
    assert note["node"] == "x" and "(at points 1, 3 of 4)" in note["detail"]


def test_division_by_zero_gives_infinity_not_an_error(client):
    out = post(client, "gradient", graph(var("x", 0.0), op("r", "reciprocal", "x")))
    assert out["outputs"]["r"] == "Infinity"
    assert out["gradients"]["x"] == "-Infinity"
    assert "NaN" not in out["check"].values()


def test_relu_kink_follows_tensorflow_and_is_noted(client):
    out = post(client, "gradient", graph(var("x", [0.0, 1.0]), op("r", "relu", "x")))
    assert out["gradients"] == {"x": [0.0, 1.0]}
    assert any(n["node"] == "r" for n in notes_for(out, "kink"))


def test_maximum_tie_sends_the_gradient_to_the_first_input(client):
    body = graph(var("a", 1.0), var("b", 1.0), op("m", "maximum", "a", "b"))
    assert post(client, "gradient", body)["gradients"] == {"a": 1.0, "b": 0.0}


# ------------------------------------------------------------ the trace


def test_trace_of_a_small_graph(client):
    out = post(client, "gradient", {**SEED_3, "trace": True})
    trace = out["trace"]
    ops = [e["op"] for e in trace["entries"]]
    assert ops == ["pow", "pow", "add"]
    assert [e["index"] for e in trace["entries"]] == [0, 1, 2]
    last = trace["entries"][-1]
    assert last["output"] == "z" and last["shape"] == [] and last["value"] == 31.0
    assert last["grad"] == 1.0
    assert trace["entries"][0]["inputs"][0] == "x"
    assert isinstance(trace["text"], str) and len(trace["text"].splitlines()) >= 3


def test_no_trace_unless_asked(client):
    assert post(client, "gradient", SEED_3)["trace"] is None


@pytest.mark.parametrize("unconnected", ["none", "zero"])
@pytest.mark.parametrize("at_points", [False, True])
def test_a_hessian_source_named_again_repeats_its_rows_and_columns(client, unconnected,
                                                                   at_points):
    """Made once per distinct source, and laid out over the sources as named: the matrix
    is the distinct sources' matrix with their rows and columns taken in that order."""
    body = {"expression": "x**2 * y + sum(sin(v)) * x + w", "check": "none",
            "unconnected_gradients": unconnected}
    values = {"x": 0.7, "y": -1.3, "v": [0.2, 1.1, -0.4], "w": 2.0}
    if at_points:
        body["points"] = [values, {**values, "x": -0.3, "v": [1.0, 0.0, 0.5]}]
    else:
        body["values"] = values
    distinct = post(client, "hessian", {**body, "sources": ["x", "y", "v", "w"]})
    named = ["x", "y", "x", "v", "w", "x"]
    out = post(client, "hessian", {**body, "sources": named})
    width = {"x": [0], "y": [1], "v": [2, 3, 4], "w": [5]}
    at = [k for s in named for k in width[s]]
    full = arr(distinct["matrix"])
    np.testing.assert_array_equal(arr(out["matrix"]), full[..., np.ix_(at, at)[0], at])
    assert out["hessian"] == distinct["hessian"] and out["gradients"] == distinct["gradients"]
