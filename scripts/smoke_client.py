"""HTTP checks for scripts/container-smoke.sh, standard library only.

python3 scripts/smoke_client.py gradient PORT   the seed's third example: gradients 4 and 27
python3 scripts/smoke_client.py inflight PORT   one request, its body held back: prints
    "sent-head" once the headers are out, waits for a line on stdin (the shutdown has
    begun), then sends the rest and checks the answer.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys

SEED_3 = {
    "graph": {
        "nodes": [
            {"id": "x", "op": "variable", "value": 2.0},
            {"id": "y", "op": "variable", "value": 3.0},
            {"id": "x2", "op": "pow", "inputs": ["x", 2]},
            {"id": "y3", "op": "pow", "inputs": ["y", 3]},
            {"id": "z", "op": "add", "inputs": ["x2", "y3"]},
        ]
    }
}
BODY = json.dumps(SEED_3).encode()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def check_gradients(status: int, raw: bytes) -> None:
    """Exit non-zero unless ``raw`` is a 200 with gradients x=4 and y=27."""
    if status != 200:
        sys.exit(f"FAIL: status {status}: {raw[:500]!r}")
    grads = json.loads(raw)["gradients"]
    if grads != {"x": 4.0, "y": 27.0}:
        sys.exit(f"FAIL: gradients {grads}, expected x=4, y=27")
    say(f"ok: gradients {grads}")


def gradient(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/gradient", BODY, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    check_gradients(resp.status, resp.read())


def inflight(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        "POST /v1/gradient HTTP/1.1\r\nHost: smoke\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
    ).encode()
    half = len(BODY) // 2
    sock.sendall(head + BODY[:half])
    say("sent-head")
    sys.stdin.readline()  # the caller has sent the stop signal
    sock.sendall(BODY[half:])
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    check_gradients(resp.status, resp.read())
    say("ok: the request in flight completed during the shutdown")


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    {"gradient": gradient, "inflight": inflight}[mode](port)


if __name__ == "__main__":
    main()
