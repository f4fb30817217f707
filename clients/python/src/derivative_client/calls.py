"""What each client method sends and how its answer is read, apart from any I/O.

``Client`` and ``AsyncClient`` share this: a ``Call`` says method, path, body and how
to decode a 2xx; the clients send it (retrying per ``RetryPolicy``) and, for a 404 on a
graph they registered, register it again and resend once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import ProblemError
from .requests import body, graph_id_of
from .results import RESULTS, GraphInfo, SymbolicResult


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: dict[str, Any] | None
    decode: Callable[[httpx.Response], Any]

    @property
    def graph_id(self) -> str | None:
        return (self.json or {}).get("graph_id")


def compute(kind: str, what: Any, fields: dict[str, Any]) -> Call:
    result = RESULTS[kind]
    return Call("POST", f"/v1/{kind}", body(what, fields), lambda r: result.from_json(r.json()))


def symbolic(what: Any, fields: dict[str, Any]) -> Call:
    return Call(
        "POST", "/v1/symbolic", body(what, fields), lambda r: SymbolicResult.from_json(r.json())
    )


def register(what: Any) -> Call:
    return register_body(body(what, {}))


def register_body(json: dict[str, Any]) -> Call:
    return Call("POST", "/v1/graphs", json, lambda r: GraphInfo.from_json(r.json()))


def forget(graph: Any) -> Call:
    return Call("DELETE", f"/v1/graphs/{graph_id_of(graph)}", None, lambda _response: None)


def ops() -> Call:
    return Call("GET", "/v1/ops", None, lambda r: r.json()["ops"])


def answer(call: Call, response: httpx.Response) -> Any:
    """The decoded result of a 2xx, or the problem raised."""
    if response.is_success:
        return call.decode(response)
    raise ProblemError.from_response(response)


def evicted(
    call: Call, response: httpx.Response, registered: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The body to register again when ``call`` named a graph this client registered and
    the replica no longer holds it (a 404), else None."""
    gid = call.graph_id
    if response.status_code != 404 or gid is None or gid not in registered:
        return None
    return registered[gid]
