"""Sending a large answer to a client that may read it slowly, or never.

uvicorn takes a body message whole into its transport's buffer and returns at once, so a
client that stops reading kept its whole answer in the process (tens of MB each, past 1 GiB
from a few dozen stalled connections) while the answer's admitted room was already given
back. Sent a piece at a time, each ``send`` waits while the transport is full: the answer
stays counted in the memory budget until its last piece is taken, and a client that takes
no piece for ``STALL_SECONDS`` is left (its connection is closed with at most a piece and
the transport's buffer pending).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence

from starlette.types import Send

PIECE_BYTES = 256 << 10
Part = bytes | memoryview  # of a body
STALL_SECONDS = 30.0

logger = logging.getLogger("app.sending")


async def send_in_pieces(send: Send, parts: Sequence[Part]) -> None:
    """The body made of ``parts`` as ``http.response.body`` messages of at most
    ``PIECE_BYTES``, until the client takes no piece for ``STALL_SECONDS``."""
    total = sum(len(p) for p in parts)
    sent = 0
    for piece in pieces(parts):
        sent += len(piece)
        message = {"type": "http.response.body", "body": piece, "more_body": sent < total}
        try:
            await asyncio.wait_for(send(message), STALL_SECONDS)
        except TimeoutError:
            logger.warning("the client took no part of the answer for %.0f s (%d of %d bytes "
                           "sent): its connection is closed", STALL_SECONDS,
                           sent - len(piece), total)
            return


def pieces(parts: Sequence[Part], size: int = PIECE_BYTES) -> Iterator[bytes]:
    """``parts`` cut into pieces of ``size`` bytes (the last one shorter), each a copy.

    Why copies: uvloop's transport keeps the very object it is given while the socket is
    full, and a view would keep its whole part (megabytes of one array's text) alive for a
    client that stopped reading, after the answer's room was given back; a copy keeps a
    piece."""
    pending: list[Part] = []
    filled = 0
    for part in parts:
        view = memoryview(part)
        while len(view):
            if not filled and len(view) >= size:
                yield bytes(view[:size])
                view = view[size:]
                continue
            taken = view[: size - filled]
            pending.append(taken)
            filled += len(taken)
            view = view[len(taken):]
            if filled == size:
                yield b"".join(pending)
                pending, filled = [], 0
    if filled:
        yield b"".join(pending)
