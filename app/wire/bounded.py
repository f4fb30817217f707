"""Request bodies whose refusal costs no more than reading them.

Pydantic reports every invalid item, and each report costs microseconds where the
item cost a few bytes: a 1.4 MB body of ``"nodes": [0, 0, ...]`` made 690,000 errors
and took 2 to 3 s to refuse, and a 63 KB one 75 to 150 ms of the event loop. A 422
shows at most ``app.problems.MAX_ERRORS`` of them. So a list or map stops at its first
invalid item (pydantic's ``FailFast``), and an object reads at most
``MAX_UNKNOWN_FIELDS`` of the fields its model does not have.

Valid items cost too: a node's 450,000 inline constants were each decoded (1.3 s) before
the engine counted them against its limit of 1,000. ``check_counts`` measures the lists
a limit bounds on the decoded JSON, before any item is read.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.graphs.graph import Limits, check_count

MAX_UNKNOWN_FIELDS = 20
"""Unknown fields of one object reported (as many as a 422 lists errors)."""

T = TypeVar("T")
FirstError = Field(fail_fast=True)
"""On a list or map: validation stops at its first invalid item (pydantic's ``FailFast``,
as a Field so that it may stand in a union)."""
ListOf = Annotated[list[T], FirstError]
MapOf = Annotated[dict[str, T], FirstError]


class WireModel(BaseModel):
    """A request model: unknown fields refused (TensorFlow refuses unknown keyword
    arguments too), at most ``MAX_UNKNOWN_FIELDS`` of them read."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        """The object without its unknown fields past the first ``MAX_UNKNOWN_FIELDS``, so
        that pydantic makes an error for those only (an object of no more fields than that
        is passed as it is: the usual request, at the cost of one ``len``)."""
        if type(data) is not dict or len(data) <= MAX_UNKNOWN_FIELDS:
            return data
        known = cls.model_fields
        unknown = [key for key in data if key not in known]
        if len(unknown) <= MAX_UNKNOWN_FIELDS:
            return data
        unread = set(unknown[MAX_UNKNOWN_FIELDS:])
        return {key: value for key, value in data.items() if key not in unread}


def check_counts(body: Any, limits: Limits) -> None:
    """A LimitError for a list or map of a request body longer than its limit allows:
    nodes, a node's inputs, points; ``values``, ``output_gradients``, ``points`` (a map,
    or each point of a list) and ``expressions`` name nodes, so they have at most
    ``max_nodes`` entries. The engine checks the same once it reads them."""
    if type(body) is not dict:
        return
    graph = body.get("graph")
    nodes = graph.get("nodes") if type(graph) is dict else None
    if type(nodes) is list:
        check_count(len(nodes), limits.max_nodes, "nodes", field="nodes")
        for node in nodes:
            inputs = node.get("inputs") if type(node) is dict else None
            if type(inputs) is list and len(inputs) > limits.max_inputs:
                nid = node.get("id")
                check_count(len(inputs), limits.max_inputs, "inputs", field="inputs",
                            node=nid if type(nid) is str and len(nid) <= 128 else None)
    points = body.get("points")
    if type(points) is list:
        check_count(len(points), limits.max_points, "points", field="points")
        for point in points:
            if type(point) is dict and len(point) > limits.max_nodes:
                check_count(len(point), limits.max_nodes, "names in a point", field="points")
    for name in ("values", "output_gradients", "points", "expressions"):
        named = body.get(name)
        if type(named) is dict:
            check_count(len(named), limits.max_nodes, f"names in {name}", field=name)
