"""How a tape stores what it records: one flat tuple per op.

An entry is ``(op, output, attrs, *inputs)``, a single allocation per recorded op:
a nested tuple of inputs would be a second one, and on a long scalar chain each
allocation costs about as much as the op's arithmetic. Readers that are not on a
hot path take the named view, ``Entry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from engine.ops.registry import OpDef
    from engine.tensor import Tensor

# (op, output, attrs, *inputs)
RawEntry = tuple[Any, ...]
INPUTS = 3  # where the inputs start in a RawEntry

# The attrs an entry of an op without attrs records: one shared, read-only mapping
# (``attrs is NO_ATTRS`` lets the sweep call the rule without ``**``).
NO_ATTRS: Mapping[str, Any] = MappingProxyType({})


class Entry(NamedTuple):
    """One recorded op: its definition, input tensors, output tensor and attrs."""

    op: OpDef
    inputs: tuple[Tensor, ...]
    output: Tensor
    attrs: dict[str, Any]

    @classmethod
    def of(cls, raw: RawEntry) -> Entry:
        return cls(raw[0], raw[INPUTS:], raw[1], raw[2])


def entries(raw: Iterable[RawEntry]) -> Iterator[Entry]:
    """The named view of each stored entry, in order."""
    return map(Entry.of, raw)
