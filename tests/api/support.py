"""Helpers for the API tests: request builders, response decoding, finite differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.endpoints import ENDPOINTS
from app.wire.written import Pieces, body_parts

_NON_FINITE = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


def var(id_: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "op": "variable", "value": value, **extra}


def const(id_: str, value: Any) -> dict[str, Any]:
    return {"id": id_, "op": "constant", "value": value}


def op(id_: str, name: str, *inputs: Any, **attrs: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"id": id_, "op": name, "inputs": list(inputs)}
    if attrs:
        node["attrs"] = attrs
    return node


def graph(*nodes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"graph": {"nodes": list(nodes)}, **fields}


def sines(first: list[dict[str, Any]], links: int) -> list[dict[str, Any]]:
    """``first``, then ``links`` nested sin of its last node, summed as ``t``: work and
    memory that grow with the links and with the size of what ``first`` makes."""
    nodes, prev = list(first), first[-1]["id"]
    for i in range(links):
        nodes.append(op(f"s{i}", "sin", prev))
        prev = f"s{i}"
    return [*nodes, op("t", "sum", prev)]


def broadcast_sines(links: int, shape: list[int]) -> list[dict[str, Any]]:
    """``sines`` of one scalar broadcast to ``shape``: a few bytes that cost like a tensor."""
    return sines([var("x", 0.5), op("b", "broadcast_to", "x", shape=shape)], links)


# The seed article's three examples as graph requests: y = x**2 and y = x**3 at x = 3,
# z = x**2 + y**3 at x = 2, y = 3. Shared, so never mutate them: copy with {**SEED_3, ...}.
SEED_1 = graph(var("x", 3.0), op("y", "pow", "x", 2))
SEED_2 = graph(var("x", 3.0), op("y", "pow", "x", 3))
SEED_3 = graph(
    var("x", 2.0),
    var("y", 3.0),
    op("x2", "pow", "x", 2),
    op("y3", "pow", "y", 3),
    op("z", "add", "x2", "y3"),
)


class ValidatingClient(TestClient):
    """A test client that validates every 200 answer of a compute endpoint with the
    endpoint's response model: the bodies are written by hand (``app.rendering``), the
    models document them, and a renderer that drifts from its model fails the test."""

    def request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        response = super().request(method, url, **kwargs)
        prefix, name = response.url.path.rsplit("/", 1)
        if method.upper() == "POST" and response.status_code == 200 \
                and prefix.endswith("/v1") and name in ENDPOINTS:
            validate_response(ENDPOINTS[name].response, response.content)
        return response


def written_body(content: Any) -> bytes:
    """``content`` as a response writes it (app.wire.written), joined."""
    return bytes(Pieces(body_parts(content)))


def validate_response(model: type[BaseModel], body: bytes) -> None:
    """``body`` is a ``model``: strict types, and no key the models do not describe
    (a model that allows extra keys keeps them)."""
    unknown = _extra_keys(model.model_validate_json(body, strict=True, extra="allow"), "")
    assert not unknown, f"{model.__name__} does not describe {unknown}"


def _extra_keys(value: Any, where: str) -> list[str]:
    if isinstance(value, BaseModel):
        found = [] if value.model_config.get("extra") == "allow" else [
            f"{where}.{key}" for key in value.model_extra or {}
        ]
        for name in type(value).model_fields:
            found += _extra_keys(getattr(value, name), f"{where}.{name}")
        return found
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _extra_keys(v, f"{where}.{key}")]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in _extra_keys(v, f"{where}[{i}]")]
    return []


def post(client: TestClient, kind: str, body: dict[str, Any], status: int = 200) -> Any:
    """POST to ``/v1/<kind>``, assert the status, return the JSON body."""
    r = client.post(f"/v1/{kind}", json=body)
    assert r.status_code == status, r.text
    return r.json()


def arr(value: Any) -> np.ndarray:
    """A response value as float64, reading the non-finite strings."""
    if isinstance(value, str):
        return np.array(_NON_FINITE[value])
    if isinstance(value, list):
        return np.array([arr(v) for v in value], dtype=np.float64).reshape(np.shape(value))
    return np.array(value, dtype=np.float64)


def fd_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar numpy function."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def fd_jacobian(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """d f / d x of shape ``f(x).shape + x.shape``, by central differences."""
    x = np.asarray(x, dtype=np.float64)
    out_shape = np.shape(f(x))
    jac = np.zeros(out_shape + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        jac[(...,) + i] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h)
    return jac


def notes_for(body: dict[str, Any], reason: str) -> list[dict[str, Any]]:
    return [n for n in body["notes"] if n["reason"] == reason]
