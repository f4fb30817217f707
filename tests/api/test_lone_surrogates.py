"""A lone surrogate (``"\\ud800"``: valid JSON, no UTF-8 form) in any name a request gives.

Where a problem quotes such a name back (an unknown value name, a node id, a key of
``output_gradients`` or ``points``), its body was encoded as UTF-8 and failed: a 500, and
the connection dropped. Every such request must be a 4xx problem, or an answer.
"""

from __future__ import annotations

import pytest

LONE = '"\\ud800"'
BODIES = [body.replace("@", LONE) for body in [  # @: where the name goes
    '{"expression": "x", "values": {@: 1}}',
    '{"expression": "x", "values": {"x": 1}, "sources": [@]}',
    '{"expression": "x", "values": {"x": 1}, "target": @}',
    '{"expression": "x", "values": {"x": 1}, "watch": [@]}',
    '{"expression": "x", "values": {"x": 1}, "output_gradients": {@: 1}}',
    '{"expressions": {@: "x"}, "values": {"x": 1}}',
    '{"expression": @, "values": {"x": 1}}',
    '{"expression": "x", "points": [{@: 1}]}',
    '{"expression": "x", "points": {@: [1]}}',
    '{"expression": "x", "values": {"x": 1}, @: 1}',
    '{"graph": {"nodes": [{"id": @, "op": "variable", "value": 1}]}}',
    '{"graph": {"nodes": [{"id": "x", "op": @, "value": 1}]}}',
    '{"graph": {"nodes": [{"id": "x", "op": "variable", "value": 1}, '
    '{"id": "y", "op": "sum", "inputs": [@]}]}}',
    '{"graph": {"nodes": [{"id": "x", "op": "variable", "value": 1}, '
    '{"id": "y", "op": "sum", "inputs": ["x"], "attrs": {@: 1}}]}}',
    '{"graph": {"nodes": [{"id": "x", "op": "variable", "value": 1}, '
    '{"id": "y", "op": "norm", "inputs": ["x"], "attrs": {"ord": @}}]}}',
    '{"graph_id": @}',
]]
PATHS = ["/v1/evaluate", "/v1/gradient", "/v1/jacobian", "/v1/hessian", "/v1/derivative",
         "/v1/symbolic", "/v1/graphs"]


@pytest.mark.parametrize("path", PATHS)
def test_a_lone_surrogate_is_a_problem_or_an_answer(client, path):
    for body in BODIES:
        r = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
        assert r.status_code < 500, (body, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), body
            assert r.json()["status"] == r.status_code
    assert client.get("/healthz").json() == {"status": "ok"}


def test_the_quoted_name_comes_back_escaped(client):
    r = client.post("/v1/gradient", content=BODIES[0].encode(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert b"\\ud800" in r.content  # as the client wrote it: JSON that any parser reads
    assert r.json()["node"] == "\ud800"
