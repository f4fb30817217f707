"""Notes on numerics: which node first produced a non-finite value and why, and every kink met.

Computed after the fact from the values of the graph's nodes (a tape's run's tensors, read
through ``TensorValues``, or a run with no tape's values), so the hot path pays nothing for
them.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.notes import Note, listed
from engine.ops.binary import pow_nonfinite
from engine.ops.registry import OPS, OpDef
from engine.tensor import Tensor, as_value

if TYPE_CHECKING:
    from engine.graphs.graph import Graph, Node

_VALUE = operator.attrgetter("value")
MAX_NOTES = 20  # a pathological graph must not produce a response of notes
FEW_VALUES = 32  # past this many values, finiteness is tested in one vectorised pass
# Ops whose cause of a non-finite value is read off the values (inputs..., output) -> why;
# the others state one fixed cause (``OpDef.nonfinite``).
REASONS: dict[str, Callable[..., str]] = {"pow": pow_nonfinite}


def input_values(inputs: tuple[Any, ...], values: Mapping[str, Any]) -> list[Any]:
    return [
        values[x] if isinstance(x, str) else as_value(getattr(x, "value", x))
        for x in inputs
    ]


def nonfinite_reason(op: OpDef, inputs: list[Any], output: Any) -> str:
    """Why ``op`` made a non-finite value: from the values where they can tell."""
    reason = REASONS.get(op.name)
    return op.nonfinite if reason is None else reason(*inputs, output)


def _finite(value: Any) -> bool:
    """Whether ``value`` holds no NaN or infinity; a scalar without numpy's machinery (a
    tenth of the time: a seed-sized request asks this of every value)."""
    if type(value) is np.float64 or (type(value) is np.ndarray and not value.ndim):
        return math.isfinite(value)
    return bool(np.isfinite(value).all())


def _all_finite(values: list[Any]) -> bool:
    return all(map(_finite, values))


def _every_value_finite(values: Mapping[str, Any]) -> bool:
    """Whether no value holds a NaN or infinity: one vectorized test over the scalars
    (all of them at once when every value is one, as on a long scalar chain); a few
    values one by one."""
    each = values.values()
    if len(values) <= FEW_VALUES:
        return all(map(_finite, each))
    try:
        every = np.fromiter(each, np.float64, len(values))
        return bool(np.isfinite(every).all())
    except (TypeError, ValueError):  # arrays among them
        pass
    scalars = []
    for v in each:
        if type(v) is np.float64:
            scalars.append(v)
        elif not np.isfinite(v).all():
            return False
    return bool(np.isfinite(np.array(scalars, dtype=np.float64)).all())


class TensorValues(Mapping[str, Any]):
    """The values of a mapping of tensors by id, read as they are asked for: what
    ``numeric_notes`` reads, from a tape's run (a run with no tape has the values alone)."""

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        self._tensors = tensors

    def __getitem__(self, key: str) -> Any:
        return self._tensors[key].value

    def __contains__(self, key: object) -> bool:
        return key in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def values(self) -> Any:  # a list (a Collection, in the mapping's order)
        return list(map(_VALUE, self._tensors.values()))


class OnePoint:
    """How ``numeric_notes`` reads one node's values at a single point; engine.derive.points
    reads them over a batch of points with the same two questions."""

    def starts_non_finite(
        self, node_id: str, output: Any, inputs: list[Any]  # noqa: ARG002 - for points
    ) -> bool:
        """Whether the node made a non-finite value from finite inputs."""
        return not _finite(output) and _all_finite(inputs)

    def kink(
        self, node_id: str, node: Node, inputs: list[Any]  # noqa: ARG002 - for points
    ) -> str | None:
        """None if no kink of the node's op was met, else what to add to the note."""
        op = OPS[node.op]
        return "" if op.kink is not None and np.any(op.kink(*inputs, **node.attrs)) else None

    def where_non_finite(
        self, node_id: str, output: Any, inputs: list[Any]  # noqa: ARG002 - for points
    ) -> str:
        """What to add to a non-finite note: at one point, nothing (over points, which)."""
        return ""

    def where_gradient_non_finite(self, g: Any) -> str:  # noqa: ARG002 - for points
        """What to add to a non-finite gradient's note (over points: at which)."""
        return ""


def numeric_notes(
    graph: Graph,
    values: Mapping[str, Any],
    gradients: Mapping[str, np.ndarray | None] | None = None,
    probe: OnePoint = OnePoint(),  # noqa: B008 - stateless
) -> list[Note]:
    """Non-finite values where they first appear (a leaf given one, or an op's from finite
    inputs), kinks, non-finite gradients;
    ``values``: each node's value by id (``TensorValues`` of a tape's run's tensors)."""
    # With every value finite there is nothing non-finite to locate: only kinks are left
    # to look for, which skips the per-node finiteness tests (most of this walk's cost).
    finite = _every_value_finite(values)
    found = (
        note
        for node_id in (graph.kinked if finite else graph.order) if node_id in values
        for note in _node_notes(node_id, graph.nodes[node_id], values, finite, probe)
    )
    gradient_notes = (
        Note("non_finite", "the gradient is not finite" + probe.where_gradient_non_finite(g),
             source=source)
        for source, g in (gradients or {}).items() if g is not None and not _finite(g)
    )
    notes = list(itertools.islice(itertools.chain(found, gradient_notes), MAX_NOTES + 1))
    if len(notes) > MAX_NOTES:  # a pathological graph must not answer with pages of notes
        notes[MAX_NOTES:] = [Note("truncated", f"more than {MAX_NOTES} notes; the rest omitted")]
    return notes


def _node_notes(
    node_id: str, node: Node, values: Mapping[str, Any], finite: bool, probe: OnePoint
) -> list[Note]:
    """A node's notes: its non-finite value if it is where one starts, its kink if met."""
    value = values[node_id]
    if not node.inputs:  # a leaf: a non-finite value is the caller's, and it may flow on
        if finite or not probe.starts_non_finite(node_id, value, []):
            return []
        where = probe.where_non_finite(node_id, value, [])
        return [Note("non_finite", f"{node.op}: the value given is not finite{where}; what "
                     "is computed from it may not be", node=node_id)]
    op = OPS[node.op]
    if finite and op.kink is None:
        return []
    notes = []
    inputs = input_values(node.inputs, values)
    if not finite and probe.starts_non_finite(node_id, value, inputs):
        why = nonfinite_reason(op, inputs, value)
        where = probe.where_non_finite(node_id, value, inputs)
        notes.append(Note("non_finite", f"{node.op}: {why}{where}", node=node_id))
    met = probe.kink(node_id, node, inputs) if op.kink is not None else None
    if met is not None:
        notes.append(Note("kink", f"{node.op} at a kink: {op.convention}{met}", node=node_id))
    return notes


def non_finite_entries(quantity: str, parts: Iterable[tuple[str, Any]]) -> list[Note]:
    """One note on the parts of a derivative past the gradient (a Jacobian's or a Hessian's
    blocks, a derivative's orders) that hold a NaN or an infinity, and how many each.

    The value notes name the node where a value first stops being finite; these entries
    can be non-finite with every value finite: a reverse sweep through an op whose own
    derivative is infinite at this point (sqrt at 0) multiplies it by every cotangent that
    passes, zeros too, and 0·inf is NaN, as in TensorFlow, JAX and PyTorch."""
    bad = []
    for name, value in parts:
        if value is None:
            continue
        arr = np.asarray(value, dtype=np.float64)
        count = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if count:
            bad.append(f"{name} ({count} of {arr.size})")
    if not bad:
        return []
    return [Note("non_finite", f"{quantity} entries are not finite in {listed(bad)}: infinite "
                 "where a derivative is; and where an op's derivative is infinite at this "
                 "point (sqrt at 0), the reverse sweep's 0·inf can make NaN of entries "
                 "through it whose true derivative is finite, as in TensorFlow, JAX and "
                 "PyTorch")]
