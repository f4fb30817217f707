"""The complete op table: importing this package registers every family, here and only
here. The order below is the order of ``OPS``, which the op catalogue (``GET /v1/ops``)
serves; no family imports another."""

# isort: off
from engine.ops import binary, elementwise, matmul, linalg  # noqa: F401
from engine.ops import slicing, scan, reductions, softmax, shape  # noqa: F401
from engine.ops import logic, gather, indexing, norms, index_attrs  # noqa: F401
# isort: on
from engine.ops.attrs import Attr
from engine.ops.registry import OPS, Case, Domain, OpDef
from engine.tensor import OPS_FN, bind_operators

bind_operators()

__all__ = ["OPS", "OPS_FN", "Attr", "Case", "Domain", "OpDef"]
