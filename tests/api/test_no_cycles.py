"""A request leaves nothing of ours in reference cycles, on every road through the app.

Tapes pause the cyclic collector while they record, so under load a cycle lives on long
after its request (tests.cycles): each must be freed by reference counting.
"""

from __future__ import annotations

import pytest

from app.endpoints import ENDPOINTS, SYMBOLIC
from app.examples import graph_examples, rosenbrock
from tests.api.support import graph, op, var
from tests.cycles import ours_in_cycles

EXAMPLES = [
    (f"/v1/{endpoint.name}", {**example["value"], "check": check, "trace": trace}, 200)
    for endpoint in ENDPOINTS.values()
    for example in endpoint.examples.values()
    for check, trace in (("none", False), ("numeric", True))
]
OTHERS = [
    ("/v1/hessian", {**rosenbrock(300), "check": "none"}, 200),  # coloured, in a thread
    ("/v1/hessian", {**rosenbrock(300), "format": "coo", "check": "none"}, 200),
    ("/v1/gradient", {"expression": "log(x)", "values": {"x": -1.0}}, 200),  # non-finite
    ("/v1/gradient", {"expression": "x +* y", "values": {"x": 1.0}}, 422),
    ("/v1/gradient", graph(var("x", 1.0), op("y", "nope", "x")), 422),
    ("/v1/gradient", graph(var("x", [[1.0, 2.0], [3.0]] + [[1.0, 1.0]] * 1000)), 422),  # ragged
    ("/v1/gradient", b'{"expression": ', 400),  # malformed, decoded on the loop
    ("/v1/gradient", b'{"values": {"x": [' + b"1.0," * 40_000 + b"]", 400),  # in a thread
    ("/v1/symbolic", next(iter(SYMBOLIC.examples.values()))["value"], 200),
]


@pytest.mark.parametrize(("path", "body", "status"), EXAMPLES + OTHERS,
                         ids=[p for p, _, _ in EXAMPLES + OTHERS])
def test_a_request_leaves_nothing_in_a_cycle(client, path, body, status):
    def send():
        if isinstance(body, bytes):
            return client.post(path, content=body, headers={"content-type": "application/json"})
        return client.post(path, json=body)

    assert send().status_code == status  # plans and checks are now cached
    assert ours_in_cycles(send) == []


def test_a_registered_graph_leaves_nothing_in_a_cycle(client):
    registered = client.post("/v1/graphs", json=next(iter(graph_examples().values()))["value"])
    by_id = {"graph_id": registered.json()["graph_id"], "values": {"x": 2.0, "y": 3.0}}
    assert client.post("/v1/gradient", json=by_id).status_code == 200
    assert ours_in_cycles(lambda: client.post("/v1/gradient", json=by_id)) == []

