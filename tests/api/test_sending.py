"""A large answer is sent a piece at a time, its room held until the client has taken it;
a client that stops reading is left after ``STALL_SECONDS`` (app.sending)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import numpy as np
import orjson
import pytest

from app import sending
from app.examples import rosenbrock
from app.wire.responses import WireJSON
from app.wire.written import Written
from bench.common import serve
from bench.rosenbrock import exact_hessian
from tests.api.support import written_body

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
    assert b"".join(m["body"] for m in bodies) == bytes(response.body)
    assert json.loads(bytes(response.body)) == BIG
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


@pytest.mark.parametrize("seed", range(5))
def test_pieces_are_the_parts_cut_to_size_each_a_copy(seed):
    rng = np.random.default_rng(seed)
    parts = [bytes(rng.integers(0, 256, n, dtype=np.uint8))
             for n in rng.choice([0, 1, 7, 64, 100, 333], size=12)]
    parts[3] = memoryview(parts[3])[1:]
    parts.insert(0, bytes(200))  # three pieces inside one part, then one across parts
    cut = list(sending.pieces(parts, size=64))
    assert b"".join(cut) == b"".join(parts)
    assert all(len(p) == 64 for p in cut[:-1]) and 0 < len(cut[-1]) <= 64
    # a view would keep its whole part alive in a transport that holds the piece (uvloop)
    assert all(type(p) is bytes for p in cut)


def test_an_answer_with_written_texts_is_sent_from_them_with_its_length():
    """The body around written arrays and the arrays' own text (app.wire.written): the
    same bytes as the whole, ``Content-Length`` theirs, no message over a piece."""
    text = orjson.dumps(np.arange(100_000.0), option=orjson.OPT_SERIALIZE_NUMPY)
    matrix = Written([text])
    content = {"name": "a\x00b", "hessian": {"x": {"x": matrix}}, "matrix": matrix}
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    response = WireJSON(content)
    _call(response, send)
    whole = b"".join(m["body"] for m in sent if m["type"] == "http.response.body")
    assert whole == written_body(content) == bytes(response.body)
    assert json.loads(whole) == {"name": "a\x00b", "hessian": {"x": {"x": list(range(100_000))}},
                                 "matrix": list(range(100_000))}
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(whole)).encode()
    assert max(len(m.get("body", b"")) for m in sent) <= sending.PIECE_BYTES


def test_a_small_answer_with_a_written_text_is_one_message_of_bytes():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    _call(WireJSON({"m": Written([b"[1.0,", memoryview(b"[2.0]")[1:]])}), send)
    assert [type(m.get("body")) for m in sent] == [type(None), bytes]
    assert sent[1]["body"] == b'{"m":[1.0,2.0]}'


@pytest.mark.parametrize("loop, http", [("uvloop", "httptools"), ("asyncio", "h11")])
def test_a_large_hessian_goes_through_uvicorn_whole(loop, http):
    """An answer sent a piece at a time from its written text, through both of uvicorn's
    HTTP protocols and event loops: the answer is whole, its numbers exact."""
    import httpx

    body = {**rosenbrock(300), "check": "none"}
    with serve("app.main:app", loop=loop, http=http) as url:
        r = httpx.post(f"{url}/v1/hessian", json=body, timeout=60)
    assert r.status_code == 200 and len(r.content) > 2 * sending.PIECE_BYTES
    assert int(r.headers["content-length"]) == len(r.content)
    answer = r.json()
    x = np.asarray(body["graph"]["nodes"][0]["value"])
    np.testing.assert_allclose(answer["matrix"], exact_hessian(x), rtol=1e-13, atol=1e-12)
    assert answer["hessian"]["x"]["x"] == answer["matrix"]


def test_a_client_that_stops_reading_pins_no_written_text_once_its_room_is_back(monkeypatch):
    """uvloop's transport keeps the object each piece was sent as while the socket is full:
    after the stall, with the answer's room given back, no view may keep a written array's
    megabytes alive (the pieces are copies)."""
    import gc
    import threading

    import uvicorn

    from app.main import create_app

    monkeypatch.setattr(sending, "STALL_SECONDS", 0.5)
    left = threading.Event()  # the sender gave up on the client (its warning)
    monkeypatch.setattr(sending.logger, "warning", lambda *_args: left.set())
    app = create_app()
    # the kernel grows a socket's send buffer up to net.ipv4.tcp_wmem's last figure (4 MB
    # here), which can take the whole answer in without a stall: an accepted socket keeps
    # its listener's small one
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, loop="uvloop", http="httptools",
                                           log_level="critical"))
    serving = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    serving.start()
    port = listener.getsockname()[1]
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and serving.is_alive()
            time.sleep(0.05)
        body = json.dumps({**rosenbrock(600), "check": "none"}).encode()  # a 2.9 MB answer
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", port))
        client.sendall(b"POST /v1/hessian HTTP/1.1\r\nhost: t\r\ncontent-type: application/"
                       b"json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        admission = app.state.service.admission
        assert left.wait(30)  # computed, then stalled past STALL_SECONDS
        while admission.load().bytes or admission.load().running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        gc.collect()
        pinned = [len(v.obj) for v in gc.get_objects()
                  if isinstance(v, memoryview) and v.obj is not None and len(v.obj) > 1 << 20]
        assert pinned == []
        client.close()
    finally:
        server.should_exit = True
        serving.join(10)
