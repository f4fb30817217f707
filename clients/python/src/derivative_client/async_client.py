"""``AsyncClient``: ``Client``'s methods as coroutines, for asyncio code.

async with AsyncClient("http://127.0.0.1:8000") as client:
    result = await client.gradient("x**2 + y**3", values={"x": 2, "y": 3})
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .calls import Call
from .client import _Endpoints


class AsyncClient(_Endpoints):
    """As ``Client``; every endpoint method returns an awaitable."""

    http_class = httpx.AsyncClient

    async def _run(self, call: Call) -> Any:  # type: ignore[override]
        steps = self._steps(call)
        response: httpx.Response | None = None
        while True:
            try:
                step = steps.send(response)
            except StopIteration as done:
                return done.value
            if isinstance(step, Call):
                response = await self.http.request(step.method, step.path, json=step.json)
            else:
                await asyncio.sleep(step)
                response = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
