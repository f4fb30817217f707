"""Large arrays' JSON text kept apart from the body around it, and never joined into it.

The bench's dense Hessian (Rosenbrock, n = 1,000) answers 8 MB: its matrix's 4 MB of
text (mostly zeros), twice. Built as one ``bytes`` (orjson copying each ``Fragment`` into
a buffer it grows, each step a fresh mapping: ``app.memory`` returns every large block to
the system), it took about 6 ms of a 24 ms request. Here the body around large texts is
written alone, with a one-byte hole where each goes, and the answer is the list of its
parts, which ``app.sending`` sends a piece at a time, each piece copied from them.
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
    view, start = memoryview(around), 0
    parts: list[Part] = []
    for text in texts:  # the holes, in the order orjson met them
        at = around.index(_HOLE, start)
        parts.append(view[start:at])
        parts += text.parts
        start = at + 1
    parts.append(view[start:])
    return parts
