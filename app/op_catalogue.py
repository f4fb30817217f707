"""The op table as ``GET /v1/ops`` shows it: the two leaves, then every engine op."""

from __future__ import annotations

from typing import Any

from app.wire.values import jsonable
from engine.ops import OPS

LEAVES = (
    {
        "name": "variable",
        "arity": 0,
        "attrs": {},
        "formula": "a leaf; its value comes from `values` or the node's `value`",
        "convention": "watched automatically, as tf.Variable; `trainable: false` unwatched "
        "unless listed in `watch`",
        "family": "leaf",
    },
    {
        "name": "constant",
        "arity": 0,
        "attrs": {},
        "formula": "a leaf; its value comes from `values` or the node's `value`",
        "convention": "not watched unless listed in `watch`, as tf.constant",
        "family": "leaf",
    },
)


def catalogue() -> list[dict[str, Any]]:
    """The op table as the wire shows it: leaves first, then every op."""
    ops = [
        {
            "name": op.name,
            "arity": op.arity,
            "attrs": {
                name: {
                    "kind": a.kind,
                    "default": jsonable(a.default),
                    "required": a.required,
                    "doc": a.doc,
                }
                for name, a in op.attrs.items()
            },
            "formula": op.formula,
            "convention": op.convention,
            "family": op.family,
        }
        for op in OPS.values()
    ]
    return [*LEAVES, *ops]
