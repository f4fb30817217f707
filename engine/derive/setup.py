"""The one set-up step of every kind, at one point or many: resolve the ids, make the
leaf tensors, know every shape, so that limits and costs are settled before any run.

What differs between one point and many (``engine.derive.points``) is answered here
once: how the graph runs, the shape of outputs and seeds, and where notes come from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import cost
from engine.derive import points as points_mod
from engine.derive.numeric_notes import TensorValues, numeric_notes
from engine.derive.points import Batch, Points
from engine.derive.query import (
    Query,
    Result,
    charge,
    check_leaf_ids,
    seed_values,
    source_ids,
    target_ids,
)
from engine.errors import GraphError, ShapeError
from engine.graphs.graph import LEAF_OPS
from engine.notes import Note
from engine.tensor import Tensor

SHOWN_TARGETS = 10  # a summed_targets note names this many targets at most

Shape = tuple[int, ...]


@dataclass
class Setup:
    """A query made ready to record. ``shapes`` are at one point; with ``batch``, values
    carry a leading axis of ``batch.size`` points on the nodes ``batch.batched``."""

    query: Query
    targets: list[str]
    sources: list[str]
    leaves: dict[str, Tensor]
    shapes: dict[str, Shape]
    batch: Batch | None = None

    @property
    def points(self) -> int:
        """How many points every value stands for (1 without a batch)."""
        return 1 if self.batch is None else self.batch.size

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading axes a per-point answer carries: ``(B,)`` over points, else none."""
        return () if self.batch is None else (self.batch.size,)

    def what(self, name: str, over_points: str = "") -> str:
        """How errors and estimates name this computation (``over_points``: its name with
        points, when "<name> over points" does not read well)."""
        if self.batch is None:
            return name
        return over_points or f"{name} over points"

    def elements(self, ids: Sequence[str]) -> int:
        """Elements of the named nodes together, over every point (an empty tensor's rows
        count: they are written out)."""
        return self.points * sum(cost.cells(self.shapes[i]) for i in ids)

    def trace_names(self) -> float:
        """The bytes of names a trace of this query writes (``cost.trace_names``); none
        without a trace, which is then not walked for them."""
        return cost.trace_names(self.query.graph) if self.query.trace else 0.0

    def charge(self, what: str, price: Callable[[cost.GraphCost], cost.Estimate]
               ) -> cost.GraphCost | None:
        """``query.charge`` with batched nodes costing B times one point's, and the ids the
        request names paid for."""
        batched = () if self.batch is None else self.batch.batched
        return charge(self.query, what, self.shapes,
                      lambda g: cost.with_ids(price(g), self.ids), batched, self.points)

    @property
    def ids(self) -> int:
        """The ids the request names (target, sources, watch): each is paid for."""
        return len(self.targets) + len(self.sources) + len(self.query.watch)

    def run(self) -> dict[str, Tensor]:
        """Every node's tensor, once for all points; tapes open around it record it."""
        if self.batch is None:
            return self.query.graph.run(self.leaves)
        return points_mod.run(self.query.graph, self.batch)

    def rerun(self, into: dict[str, Tensor]) -> Callable[[], list[Tensor]]:
        """What nested tapes re-run: the graph, every tensor kept in ``into``, the targets
        returned."""
        def run_graph() -> list[Tensor]:
            into.update(self.run())
            return [into[t] for t in self.targets]

        return run_graph

    def watched(self) -> list[Tensor]:
        return [self.leaves[w] for w in self.query.watch]

    def seeds(self) -> list[Any] | None:
        """``output_gradients`` checked against one point's shapes, for every point."""
        seeds = seed_values(self.query, self.targets, self.shapes)
        if seeds is None or self.batch is None:
            return seeds
        return [g if g is None or t not in self.batch.batched
                else np.broadcast_to(g, (*self.batch_shape, *np.shape(g)))
                for t, g in zip(self.targets, seeds, strict=True)]

    def outputs(self, tensors: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
        """Each target (at every point: the same value repeated where no point changes it)."""
        out = {t: tensors[t].numpy() for t in self.targets}
        if self.batch is not None:
            out = {t: v if t in self.batch.batched else np.repeat(v[None], self.points, axis=0)
                   for t, v in out.items()}
        return out

    def notes(self, tensors: Mapping[str, Tensor],
              gradients: Mapping[str, np.ndarray | None] | None = None) -> list[Note]:
        """Several targets summed, then non-finite values and kinks met (at some point,
        over points)."""
        if self.batch is None:
            return self.notes_at(TensorValues(tensors), gradients)
        summed = self.summed_targets() if gradients is not None else []
        return summed + points_mod.point_notes(self.query.graph, self.batch, tensors, gradients)

    def notes_at(self, values: Mapping[str, Any],
                 gradients: Mapping[str, np.ndarray | None] | None = None) -> list[Note]:
        """``notes`` at one point, from each node's value by id (a run with no tape has
        values, no tensors)."""
        summed = self.summed_targets() if gradients is not None else []
        return summed + numeric_notes(self.query.graph, values, gradients)

    def summed_targets(self) -> list[Note]:
        """A derivative of several targets is of their sum (tf.GradientTape with a list
        target): said, since nothing else in the answer shows it."""
        if len(self.targets) < 2:
            return []
        shown = ", ".join(self.targets[:SHOWN_TARGETS])
        extra = len(self.targets) - SHOWN_TARGETS
        more = f" and {extra} more" if extra > 0 else ""
        return [Note("summed_targets",
                     f"the derivatives are of the sum of the targets {shown}{more}, as "
                     "tf.GradientTape gives for a list target; ask one target for its own")]

    def result(self, tensors: Mapping[str, Tensor], notes: list[Note], **fields: Any) -> Result:
        return Result(self.targets, self.sources, self.outputs(tensors), notes=notes,
                      points=None if self.batch is None else self.points, **fields)


def set_up(
    q: Query,
    points: Points | None = None,
    *,
    sources: bool = True,
    scalar_target: str = "",
    leaf_sources: str = "",
    scalar_sources: str = "",
) -> Setup:
    """Resolve and check ``q``'s ids, then make its leaves at one point or at ``points``.

    A kind states what it needs by naming itself in the messages of the checks it
    wants: ``scalar_target="the Hessian needs"``, ``leaf_sources="Hessian"``,
    ``scalar_sources="derivative"``; ``sources=False`` (evaluate) resolves none.
    """
    targets = target_ids(q)
    ids: list[str] = []
    if sources:
        check_leaf_ids(q, q.watch, "watch")
        ids = source_ids(q)
    if leaf_sources:
        for s in ids:
            if q.graph.nodes[s].op not in LEAF_OPS:
                raise GraphError(f"{leaf_sources} sources must be leaves; {s!r} is not",
                                 node=s, field="sources")
    if points is None:
        values = q.graph.leaf_values(q.values)
        shapes = q.graph.infer_shapes(values, q.limits)
        setup = Setup(q, targets, ids, q.graph.make_leaves(values), shapes)
    else:
        batch = points_mod.batch_points(q, points, ids)
        setup = Setup(q, targets, ids, batch.leaves, batch.shapes, batch)
    at = "" if points is None else " at each point"
    for t in targets if scalar_target else ():
        if setup.shapes[t]:
            raise ShapeError(f"{scalar_target} a scalar target{at}; {t!r} has shape "
                             f"{list(setup.shapes[t])}", node=t, field="target")
    for s in ids if scalar_sources else ():
        if setup.shapes[s]:
            raise ShapeError(f"{scalar_sources} sources must be scalars; {s!r} has shape "
                             f"{list(setup.shapes[s])}", node=s, field="sources")
    return setup
