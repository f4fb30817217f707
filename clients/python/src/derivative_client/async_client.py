"""``AsyncClient``: ``Client``'s methods as coroutines, for asyncio code.

async with AsyncClient("http://127.0.0.1:8000") as client:
    result = await client.gradient("x**2 + y**3", values={"x": 2, "y": 3})
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from . import calls
from .calls import Call
from .client import DEFAULT_URL, USER_AGENT, _Endpoints


class AsyncClient(_Endpoints):
    """As ``Client``; every endpoint method returns an awaitable."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        max_retry_wait: float = 10.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(retries, max_retry_wait)
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"user-agent": USER_AGENT, **(headers or {})},
            transport=transport,
        )

    async def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            response = await self.http.request(call.method, call.path, json=call.json)
            wait = self.policy.wait_before_retry(response, attempt)
            if wait is None:
                return response
            await asyncio.sleep(wait)
            attempt += 1

    async def _run(self, call: Call) -> Any:  # type: ignore[override]
        response = await self._send(call)
        again = calls.evicted(call, response, self.registered)
        if again is not None:
            await self._run(calls.register_body(again))
            response = await self._send(call)
        result = calls.answer(call, response)
        self._remember(call, result)
        return result

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
