"""Retries, on a scripted transport: a saturated replica's 503 is sent again after its
``Retry-After`` (bounded in count and wait); anything else is answered as it is."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from derivative_client import AsyncClient, Client, ProblemError

OK = {"outputs": {"f": 1.0}, "gradients": {"x": 2.0}, "notes": [], "check": None}
SATURATED = {
    "type": "tag:derivative-service,2025:problem/saturated",
    "title": "Saturated",
    "status": 503,
    "detail": "no room within 2 s",
}


def scripted(*answers: tuple[int, dict, dict]) -> tuple[list[httpx.Request], httpx.MockTransport]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        status, body, headers = answers[min(len(sent), len(answers)) - 1]
        return httpx.Response(status, json=body, headers=headers)

    return sent, httpx.MockTransport(handle)


def busy(retry_after: str | None = "0") -> tuple[int, dict, dict]:
    return 503, SATURATED, {} if retry_after is None else {"retry-after": retry_after}


def test_a_503_with_retry_after_is_sent_again():
    sent, transport = scripted(busy(), busy(), (200, OK, {}))
    with Client("http://service", retries=2, transport=transport) as client:
        assert client.gradient("x**2", values={"x": 1}).gradients == {"x": 2.0}
    assert len(sent) == 3
    assert [json.loads(r.content) for r in sent] == [{"expression": "x**2", "values": {"x": 1}}] * 3


def test_retries_are_bounded_and_the_last_503_is_raised():
    sent, transport = scripted(busy())
    with Client("http://service", retries=2, transport=transport) as client:
        with pytest.raises(ProblemError) as saturated:
            client.gradient("x")
    assert len(sent) == 3
    assert saturated.value.status == 503 and saturated.value.slug == "saturated"


def test_the_wait_is_capped():
    sent, transport = scripted(busy("3600"), (200, OK, {}))
    start = time.monotonic()
    with Client("http://service", retries=1, max_retry_wait=0.2, transport=transport) as client:
        client.gradient("x")
    assert 0.2 <= time.monotonic() - start < 5 and len(sent) == 2


@pytest.mark.parametrize("answer", [busy(None), (500, {"title": "Internal"}, {}),
                                    (422, {"title": "Invalid", "field": "x"}, {})])  # fmt: skip
def test_other_failures_are_not_retried(answer):
    sent, transport = scripted(answer, (200, OK, {}))
    with Client("http://service", retries=3, transport=transport) as client:
        with pytest.raises(ProblemError) as problem:
            client.gradient("x")
    assert len(sent) == 1 and problem.value.status == answer[0]


def test_a_non_problem_error_body_still_raises_a_problem():
    transport = httpx.MockTransport(lambda _request: httpx.Response(502, text="<html>bad gateway"))
    with Client("http://service", transport=transport) as client:
        with pytest.raises(ProblemError) as problem:
            client.gradient("x")
    assert problem.value.status == 502 and "bad gateway" in problem.value.detail


def test_the_async_client_retries_too():
    sent, transport = scripted(busy(), (200, OK, {}))

    async def main() -> dict:
        async with AsyncClient("http://service", retries=1, transport=transport) as client:
            return (await client.gradient("x")).gradients

    assert asyncio.run(main()) == {"x": 2.0} and len(sent) == 2


def test_negative_bounds_are_refused():
    with pytest.raises(ValueError):
        Client("http://service", retries=-1)
