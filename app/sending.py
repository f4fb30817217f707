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

from starlette.types import Send

PIECE_BYTES = 256 << 10
STALL_SECONDS = 30.0

logger = logging.getLogger("app.sending")


async def send_in_pieces(send: Send, body: bytes) -> None:
    """``body`` as ``http.response.body`` messages of at most ``PIECE_BYTES``, until the
    client takes no piece for ``STALL_SECONDS``."""
    view = memoryview(body)
    for start in range(0, len(body), PIECE_BYTES):
        end = start + PIECE_BYTES
        message = {"type": "http.response.body", "body": bytes(view[start:end]),
                   "more_body": end < len(body)}
        try:
            await asyncio.wait_for(send(message), STALL_SECONDS)
        except TimeoutError:
            logger.warning("the client took no part of the answer for %.0f s (%d of %d bytes "
                           "sent): its connection is closed", STALL_SECONDS, start, len(body))
            return
