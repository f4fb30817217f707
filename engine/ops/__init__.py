"""The complete op table: importing this package registers every family."""

from engine.ops import binary, elementwise, linalg, reductions, shape  # noqa: F401
from engine.ops.registry import OPS, OPS_FN, Attr, Case, Domain, OpDef
from engine.tensor import bind_operators

bind_operators()

__all__ = ["OPS", "OPS_FN", "Attr", "Case", "Domain", "OpDef"]
