"""A large answer is sent a piece at a time, its room held until the client has taken it;
a client that stops reading is left after ``STALL_SECONDS`` (app.sending)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from app import sending
from app.wire.responses import WireJSON
from bench.common import serve

BIG = {"values": list(range(200_000))}  # about 1.3 MB of JSON


def _call(response: WireJSON, send) -> None:
    asyncio.run(response({"type": "http"}, None, send))


def test_a_large_answer_is_the_same_bytes_in_pieces_and_its_room_is_given_back_after():
    sent: list[dict] = []
    released: list[int] = []

    async def send(message):
        sent.append(message)

    response = WireJSON(BIG)
    response.background = lambda: _released(released)
    _call(response, send)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) == -(-len(response.body) // sending.PIECE_BYTES) > 1
    assert max(len(m["body"]) for m in bodies) <= sending.PIECE_BYTES
    assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert b"".join(m["body"] for m in bodies) == response.body
    assert json.loads(response.body) == BIG
    assert released == [1]


async def _released(released: list[int]) -> None:
    released.append(1)


def test_a_small_answer_is_one_message():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    _call(WireJSON({"status": "ok"}), send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


def test_a_client_that_takes_nothing_is_left_and_the_room_given_back(monkeypatch, caplog):
    monkeypatch.setattr(sending, "STALL_SECONDS", 0.05)
    taken: list[int] = []
    released: list[int] = []

    async def send(message):
        if message["type"] == "http.response.body" and len(taken) == 2:
            await asyncio.Event().wait()  # the transport stays full: the client reads nothing
        taken.append(len(message.get("body", b"")))

    response = WireJSON(BIG)
    response.background = lambda: _released(released)
    started = time.perf_counter()
    _call(response, send)
    assert time.perf_counter() - started < 5
    assert taken == [0, sending.PIECE_BYTES]  # the start, then the one piece it took
    assert released == [1]
    assert "took no part of the answer" in caplog.text


@pytest.mark.slow
def test_stalled_readers_hold_the_memory_budget_while_small_requests_are_answered():
    """A live server: clients that ask for an 8 MB answer and never read it. While they
    stall, their answers hold the memory budget (a new large request waits, then 503);
    the server keeps answering small requests."""
    body = json.dumps({"graph": {"nodes": [
        {"id": "x", "op": "variable", "value": 0.5},
        {"id": "b", "op": "broadcast_to", "inputs": ["x"], "attrs": {"shape": [600, 1000]}},
        {"id": "s", "op": "sin", "inputs": ["b"]}]}, "check": "none"}).encode()
    request = (b"POST /v1/evaluate HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
               b"content-length: %d\r\n\r\n" % len(body)) + body
    with serve("app.main:app", env={"DERIV_MEMORY_BUDGET_BYTES": str(64 << 20),
                                    "DERIV_ADMISSION_WAIT_SECONDS": "0.5"}) as url:
        host, port = url.rsplit("//", 1)[1].split(":")
        stalled = []
        for _ in range(12):
            s = socket.create_connection((host, int(port)))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(request)
            stalled.append(s)
        time.sleep(2)
        statuses = []
        for s in stalled:  # who was answered at all: the budget let only some compute
            s.setblocking(False)
            try:
                statuses.append(s.recv(12)[9:12])
            except BlockingIOError:
                statuses.append(b"")
        assert b"503" in statuses and b"200" in statuses
        import httpx

        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        for s in stalled:
            s.close()
