"""Large arrays' JSON text kept apart from the body around it, and sent as it is.

The bench's dense Hessian (Rosenbrock, n = 1,000) answers 8 MB: its matrix's 4 MB of
text (mostly zeros), twice. Built
as one ``bytes`` (orjson copying each ``Fragment`` into a buffer it grows), then copied
again a piece at a time into the messages that send it, it took three fresh 8 MB
mappings (``app.memory`` returns every large block to the system), about 6 ms of a 24 ms
request. Here the body around large texts is written alone, with a one-byte hole where
each goes, and the answer is the list of its parts: the texts are sent from the memory
they were written in (``app.sending``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from app.sending import Part

# orjson escapes every control character inside strings and writes none outside them, so
# this byte can only come from a hole.
_HOLE = b"\x00"
_HOLE_FRAGMENT = orjson.Fragment(_HOLE)


class Written:
    """An array's JSON text, written once (whole, or in slabs of rows), in ``parts``."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[Part]) -> None:
        self.parts = parts


class Pieces:
    """A response body kept as its parts (``Response.body``): its length is the body's, for
    ``Content-Length``; ``bytes()`` joins them (tests, and whoever reads a body whole)."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = parts
        self.size = sum(len(p) for p in parts)

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def written(value: Any) -> Written:
    """Encoded data (``app.wire.values.encode_for_response``) written now, to be placed into
    a body as it is: for a body that holds one array twice (a one-source Hessian's block
    and its matrix)."""
    return value if isinstance(value, Written) else Written([dumps(value)])


def body_parts(content: Any) -> list[Part]:
    """``content`` as JSON, in parts: the body around each ``Written`` text, and the text."""
    texts: list[Written] = []

    def hole(obj: Any) -> orjson.Fragment:
        if type(obj) is not Written:
            raise TypeError(f"{type(obj).__name__} is not JSON data")
        texts.append(obj)
        return _HOLE_FRAGMENT

    around = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY, default=hole)
    if not texts:
        return [around]
    view, parts, start = memoryview(around), [], 0
    for text in texts:  # the holes, in the order orjson met them
        hole = around.index(_HOLE, start)
        parts.append(view[start:hole])
        parts += text.parts
        start = hole + 1
    parts.append(view[start:])
    return parts


def to_bytes(content: Any) -> bytes:
    """``content`` as JSON, whole."""
    return b"".join(body_parts(content))
