"""Flatten and rebuild the nested structures ``gradient`` accepts (tensor, list, tuple, dict)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def flatten(tree: Any) -> list[Any]:
    """Leaves of ``tree`` in order; dicts in insertion order, so results match the input."""
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in flatten(v)]
    if isinstance(tree, list | tuple):
        return [leaf for v in tree for leaf in flatten(v)]
    return [tree]


def unflatten(tree: Any, leaves: list[Any]) -> Any:
    """Rebuild ``tree``'s structure around ``leaves``."""
    return _build(tree, iter(leaves))


def _build(node: Any, leaves: Iterator[Any]) -> Any:
    # A module function, not a closure calling itself: that closure is a reference cycle
    # holding the leaves (a gradient, a Hessian) until the cyclic collector runs, and tapes
    # pause the collector while they record, so under load those arrays piled up.
    if isinstance(node, dict):
        return {k: _build(v, leaves) for k, v in node.items()}
    if isinstance(node, list):
        return [_build(v, leaves) for v in node]
    if isinstance(node, tuple):
        return tuple(_build(v, leaves) for v in node)
    return next(leaves)


def summed(targets: list[Any]) -> Any:
    """The value several targets are differentiated as: their sum, as TF sums a list of
    targets (one target is itself, not a copy)."""
    return targets[0] if len(targets) == 1 else sum(targets[1:], targets[0])
