"""The bench's ceiling (bench.ceiling_app): the service answering from memory must give the
service's own bytes, so that what the bench times around it is the service's path."""

from __future__ import annotations

from typing import Any

from app.examples import SEED_3, rosenbrock
from app.main import create_app
from bench.ceiling_app import remembering
from tests.api.support import ValidatingClient
from tests.conftest import make_settings


def test_each_endpoint_computes_once_and_answers_the_service_s_bytes(client):
    app = create_app(make_settings())
    service = app.state.service
    computed: list[str] = []
    compute = service.run

    def counted(endpoint: Any, request: Any, **how: Any) -> dict[str, Any]:
        computed.append(endpoint.name)
        return compute(endpoint, request, **how)

    service.run = counted
    remembering(service)
    remembered = ValidatingClient(app)
    bodies = {"gradient": {**SEED_3, "check": "none"},
              "hessian": {**rosenbrock(20), "check": "none"}}
    for _ in range(3):
        for kind, body in bodies.items():
            got = remembered.post(f"/v1/{kind}", json=body)
            want = client.post(f"/v1/{kind}", json=body)
            assert got.status_code == want.status_code == 200
            assert got.content == want.content
    assert sorted(computed) == ["gradient", "hessian"]
