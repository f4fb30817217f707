"""The baseline for per-request overhead: a bare FastAPI endpoint, no engine.

It validates the same body as ``POST /v1/gradient`` with pydantic and answers
the seed's third example (z = x**2 + y**3) by hand. ``/v1/gradient`` is a plain
``def`` (run in the threadpool), as the issue's baseline was measured and as the
service runs any request that is not tiny; ``/v1/gradient-async`` is the same
endpoint as ``async def``, which is how the service runs a tiny request (inline),
so the benchmark reports the service against both; ``/v1/gradient-expression-async``
takes the seed as infix text, the service's expression form.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
    op: str
    inputs: list[str | float] = Field(default_factory=list)
    attrs: dict[str, Any] = Field(default_factory=dict)
    value: float | None = None
    trainable: bool = True


class Graph(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodes: list[Node] = Field(min_length=1)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graph: Graph
    values: dict[str, float] = Field(default_factory=dict)
    check: str = "auto"


class ExpressionRequest(BaseModel):
    """The seed as infix text (``x**2 + y**3``): the bare endpoint does not parse it."""

    model_config = ConfigDict(extra="forbid")

    expression: str = Field(max_length=65536)
    values: dict[str, float] = Field(default_factory=dict)
    check: str = "auto"


app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def answer(request: Request | ExpressionRequest) -> dict[str, Any]:
    """The seed's gradient, by hand."""
    values: dict[str, float] = {}
    if isinstance(request, Request):
        values = {n.id: n.value for n in request.graph.nodes if n.value is not None}
    values.update(request.values)
    x, y = values["x"], values["y"]
    return {
        "outputs": {"z": x**2 + y**3},
        "gradients": {"x": 2 * x, "y": 3 * y**2},
        "notes": [],
        "check": {"method": "none", "status": "skipped"},
    }


@app.post("/v1/gradient")
def gradient(request: Request) -> dict[str, Any]:
    return answer(request)


@app.post("/v1/gradient-async")
async def gradient_async(request: Request) -> dict[str, Any]:
    return answer(request)


@app.post("/v1/gradient-expression-async")
async def gradient_expression_async(request: ExpressionRequest) -> dict[str, Any]:
    return answer(request)
