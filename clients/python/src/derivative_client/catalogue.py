"""The op catalogue the ``Graph`` builder offers as methods: name, inputs and attrs.

Kept here, not fetched, so a graph is built offline and methods exist for editors and
``help()``; a test checks it equals what the service serves at ``GET /v1/ops``.
``arity`` is the number of inputs (``None``: any number, as ``concat`` and ``stack``).
"""

from __future__ import annotations

from typing import NamedTuple


class OpSpec(NamedTuple):
    name: str
    arity: int | None
    attrs: tuple[str, ...]


LEAVES = ("variable", "constant")

OPS: tuple[OpSpec, ...] = (
    OpSpec("variable", 0, ()),
    OpSpec("constant", 0, ()),
    OpSpec("add", 2, ()),
    OpSpec("sub", 2, ()),
    OpSpec("mul", 2, ()),
    OpSpec("div", 2, ()),
    OpSpec("pow", 2, ()),
    OpSpec("maximum", 2, ()),
    OpSpec("minimum", 2, ()),
    OpSpec("atan2", 2, ()),
    OpSpec("xlogy", 2, ()),
    OpSpec("div_no_nan", 2, ()),
    OpSpec("add_n", None, ()),
    OpSpec("neg", 1, ()),
    OpSpec("identity", 1, ()),
    OpSpec("stop_gradient", 1, ()),
    OpSpec("abs", 1, ()),
    OpSpec("sign", 1, ()),
    OpSpec("relu", 1, ()),
    OpSpec("floor", 1, ()),
    OpSpec("ceil", 1, ()),
    OpSpec("square", 1, ()),
    OpSpec("reciprocal", 1, ()),
    OpSpec("sqrt", 1, ()),
    OpSpec("exp", 1, ()),
    OpSpec("expm1", 1, ()),
    OpSpec("log", 1, ()),
    OpSpec("log1p", 1, ()),
    OpSpec("sin", 1, ()),
    OpSpec("cos", 1, ()),
    OpSpec("tan", 1, ()),
    OpSpec("asin", 1, ()),
    OpSpec("acos", 1, ()),
    OpSpec("atan", 1, ()),
    OpSpec("sinh", 1, ()),
    OpSpec("cosh", 1, ()),
    OpSpec("tanh", 1, ()),
    OpSpec("asinh", 1, ()),
    OpSpec("acosh", 1, ()),
    OpSpec("atanh", 1, ()),
    OpSpec("sigmoid", 1, ()),
    OpSpec("softplus", 1, ()),
    OpSpec("matmul", 2, ()),
    OpSpec("inv", 1, ()),
    OpSpec("det", 1, ()),
    OpSpec("solve", 2, ()),
    OpSpec("slice", 1, ("begin", "end", "step")),
    OpSpec("pad_slice", 1, ("shape", "begin", "end", "step")),
    OpSpec("cumprod", 1, ("axis", "exclusive", "reverse")),
    OpSpec("cumsum", 1, ("axis", "exclusive", "reverse")),
    OpSpec("linrec", 2, ("axis", "reverse")),
    OpSpec("sum", 1, ("axis", "keepdims")),
    OpSpec("mean", 1, ("axis", "keepdims")),
    OpSpec("prod", 1, ("axis", "keepdims")),
    OpSpec("max", 1, ("axis", "keepdims")),
    OpSpec("min", 1, ("axis", "keepdims")),
    OpSpec("logsumexp", 1, ("axis", "keepdims")),
    OpSpec("softmax", 1, ("axis",)),
    OpSpec("reshape", 1, ("shape",)),
    OpSpec("broadcast_to", 1, ("shape",)),
    OpSpec("transpose", 1, ("perm",)),
    OpSpec("expand_dims", 1, ("axis",)),
    OpSpec("squeeze", 1, ("axis",)),
    OpSpec("stack", None, ("axis",)),
    OpSpec("concat", None, ("axis",)),
    OpSpec("less", 2, ()),
    OpSpec("greater", 2, ()),
    OpSpec("less_equal", 2, ()),
    OpSpec("greater_equal", 2, ()),
    OpSpec("equal", 2, ()),
    OpSpec("not_equal", 2, ()),
    OpSpec("logical_and", 2, ()),
    OpSpec("logical_or", 2, ()),
    OpSpec("logical_not", 1, ()),
    OpSpec("where", 3, ()),
    OpSpec("gather", 1, ("indices", "axis")),
    OpSpec("scatter_add", 1, ("shape", "indices", "axis")),
    OpSpec("tile", 1, ("multiples",)),
    OpSpec("strided_slice", 1, ("index",)),
    OpSpec("strided_slice_grad", 1, ("shape", "index")),
    OpSpec("norm", 1, ("ord", "axis", "keepdims")),
)

BY_NAME = {spec.name: spec for spec in OPS}
