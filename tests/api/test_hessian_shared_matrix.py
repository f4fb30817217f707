"""A one-source Hessian's block is its matrix (engine.derive.hessian.assemble): the response
writes those numbers once and places them at both fields, byte for byte as before."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest

from app import rendering
from app.examples import rosenbrock
from app.wire import values
from app.wire import written as writer
from app.wire.values import encode_for_response
from app.wire.written import written
from bench.rosenbrock import exact_hessian
from tests.api.support import graph, op, post, var, written_body


@pytest.fixture
def one_source() -> dict:
    return {**rosenbrock(7), "check": "none"}


def test_the_block_and_the_matrix_are_the_same_numbers(client, one_source):
    answer = post(client, "hessian", one_source)
    x = np.asarray(one_source["graph"]["nodes"][0]["value"])
    np.testing.assert_allclose(answer["matrix"], exact_hessian(x), rtol=1e-13, atol=1e-12)
    assert answer["hessian"]["x"]["x"] == answer["matrix"]


def test_the_body_is_the_bytes_written_twice(client, one_source, monkeypatch):
    shared = client.post("/v1/hessian", json=one_source)
    monkeypatch.setattr(rendering, "_same_numbers", lambda _matrix: lambda _v: False)
    apart = client.post("/v1/hessian", json=one_source)
    assert shared.status_code == apart.status_code == 200
    assert shared.content == apart.content
    matrix = orjson.dumps(json.loads(shared.content)["matrix"])
    assert shared.content.count(matrix) == 2  # at "hessian" and at "matrix"


def test_a_block_that_is_not_the_matrix_is_written_on_its_own(client):
    """Two sources: each block is a part of the matrix, and each keeps its own numbers."""
    body = graph(
        var("x", [1.0, 2.0]),
        var("y", 3.0),
        op("p", "mul", "x", "y"),
        op("q", "mul", "p", "x"),
        op("s", "sum", "q"),
        check="none",
    )
    answer = post(client, "hessian", body)
    h = np.asarray(answer["matrix"])
    assert h.shape == (3, 3)
    np.testing.assert_array_equal(np.asarray(answer["hessian"]["x"]["x"]), h[:2, :2])
    np.testing.assert_array_equal(np.asarray(answer["hessian"]["x"]["y"]), h[:2, 2])
    np.testing.assert_array_equal(h, [[6.0, 0.0, 2.0], [0.0, 6.0, 4.0], [2.0, 4.0, 0.0]])


@pytest.mark.parametrize("slabs", [True, False])
@pytest.mark.parametrize("shape", [(1000, 1000), (70_000,), (3, 70_000), (300, 300, 3),
                                   (2, 1, 65_537), (65_537, 1), (1, 2, 140_000), (5, 0)])
def test_a_large_array_written_in_slabs_is_the_same_text(monkeypatch, shape, slabs):
    """A large array of much text is written a slab of rows at a time (the event loop gets
    the interpreter lock between slabs): the bytes are those of one ``orjson.dumps``,
    mostly zeros or not."""
    monkeypatch.setattr(values, "SLAB_MIN_TEXT", 0 if slabs else 10**12)
    value = np.random.default_rng(7).standard_normal(shape)
    for finite in (value, np.where(np.abs(value) > 2.5, value, 0.0)):
        whole = orjson.dumps(finite, option=orjson.OPT_SERIALIZE_NUMPY)
        assert written_body({"m": written(encode_for_response(finite))}) == b'{"m":' + whole + b"}"


@pytest.mark.parametrize("shape", [(1000, 1000), (70_000,), (2, 1, 65_537), (1, 2, 140_000)])
def test_a_large_array_with_non_finite_numbers_is_written_in_slabs_as_the_codec_writes_it(
        monkeypatch, shape):
    """Non-finite numbers are strings (the codec's nested lists): in pieces, never the whole
    array as Python objects at once, and the same text as the whole written by ``encode``."""
    value = np.random.default_rng(3).standard_normal(shape)
    flat = value.reshape(-1)
    flat[::9_999], flat[1::10_007], flat[2::30_011] = np.nan, np.inf, -np.inf
    encoded = values.encode(value)
    calls = _calls(monkeypatch)
    text = written_body({"m": encode_for_response(value)})
    assert text == orjson.dumps({"m": encoded})
    assert calls and max(math.prod(c) for c in calls) <= values.PIECE_ELEMENTS


def _calls(monkeypatch) -> list[tuple[int, ...]]:
    """The shapes ``orjson.dumps`` is given by the codec from now on."""
    calls: list[tuple[int, ...]] = []
    dumps = orjson.dumps

    def counted(value, *args, **kwargs):
        calls.append(np.shape(value))
        return dumps(value, *args, **kwargs)

    monkeypatch.setattr(writer.orjson, "dumps", counted)
    return calls


def test_only_an_array_of_much_text_is_written_in_slabs(monkeypatch):
    calls = _calls(monkeypatch)
    tridiagonal = np.diag(np.full(1000, 2.0)) + np.diag(np.full(999, -1.0), 1)
    assert isinstance(encode_for_response(tridiagonal), np.ndarray)  # 4 MB, mostly "0.0"
    assert calls == []
    encode_for_response(np.random.default_rng(1).standard_normal((1000, 1000)))  # ~20 MB
    assert len(calls) == 16 and calls[0] == (65, 1000)


@pytest.mark.parametrize("path", ["evaluate", "gradient", "jacobian"])
def test_every_large_answer_is_written_in_slabs(client, monkeypatch, path):
    """Outputs, gradients, Jacobians and traces, not only Hessians: each piece at most
    ``PIECE_ELEMENTS`` (here 64), with the numbers the engine computed."""
    monkeypatch.setattr(values, "SLAB_MIN_TEXT", 0)
    monkeypatch.setattr(values, "PIECE_ELEMENTS", 64)
    x = np.linspace(0.1, 1.0, 400)
    body = graph(var("x", x.tolist()), op("c", "reshape", "x", shape=[400, 1]),
                 op("o", "mul", "c", "x"), op("s", "sin", "o"),
                 *([op("f", "sum", "s")] if path == "gradient" else []), check="none",
                 trace=path == "gradient")
    if path == "jacobian":
        body = graph(var("x", x.tolist()), op("s", "sin", "x"), op("f", "mul", "s", "x"),
                     check="none")
    calls = _calls(monkeypatch)
    answer = post(client, path, body)
    assert len(calls) > 1 and max(math.prod(c) for c in calls) <= 64
    outer = np.outer(x, x)
    if path == "evaluate":
        np.testing.assert_allclose(answer["outputs"]["s"], np.sin(outer), rtol=1e-15)
    elif path == "gradient":
        np.testing.assert_allclose(answer["gradients"]["x"],
                                   2 * np.cos(outer) @ x, rtol=1e-12)
        assert len(calls) > 2 * 400 * 400 // 64  # the trace's s and o too, value and grad
        entry = {e["output"]: e for e in answer["trace"]["entries"]}["s"]
        np.testing.assert_allclose(entry["value"], np.sin(outer), rtol=1e-15)
        np.testing.assert_allclose(entry["grad"], np.ones_like(outer), rtol=0)
        assert answer["trace"]["leaves"][0]["value"] == x.tolist()
    else:
        np.testing.assert_allclose(answer["jacobian"]["f"]["x"],
                                   np.diag(np.cos(x) * x + np.sin(x)), rtol=1e-15)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself
def test_a_matrix_subclass_is_written_as_a_plain_array(monkeypatch):
    """``np.matrix`` keeps two dimensions when indexed: written as its plain array."""
    monkeypatch.setattr(values, "PIECE_ELEMENTS", 4)
    monkeypatch.setattr(values, "SLAB_MIN_TEXT", 0)
    m = np.matrix(np.arange(10.0).reshape(2, 5))
    m[0, 0] = np.nan
    assert written_body(written(encode_for_response(m))) == orjson.dumps(values.encode(m))
