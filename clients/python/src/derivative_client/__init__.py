"""A Python client for the derivatives service.

from derivative_client import Client, Graph

g = Graph()
x, y = g.variable("x", 2.0), g.variable("y", 3.0)
z = x**2 + y**3
Client("http://127.0.0.1:8000").gradient(g, target=z).gradients  # {'x': 4.0, 'y': 27.0}
"""

from .async_client import AsyncClient
from .catalogue import OPS, OpSpec
from .client import Client
from .errors import ProblemError
from .graph import Graph, Tensor
from .results import (
    Check,
    DerivativeResult,
    GradientResult,
    GraphInfo,
    HessianResult,
    JacobianResult,
    Note,
    Result,
    SymbolicResult,
)

__all__ = [
    "OPS",
    "AsyncClient",
    "Check",
    "Client",
    "DerivativeResult",
    "GradientResult",
    "Graph",
    "GraphInfo",
    "HessianResult",
    "JacobianResult",
    "Note",
    "OpSpec",
    "ProblemError",
    "Result",
    "SymbolicResult",
    "Tensor",
]
