"""The wire: request and response models and the value codec, described once."""

from app.wire.requests import ComputeRequest, Graph, Node
from app.wire.responses import (
    EvaluateResponse,
    GradientResponse,
    HessianResponse,
    JacobianResponse,
    OpsResponse,
    WireJSON,
)
from app.wire.values import Value, decode, encode, jsonable

__all__ = [
    "ComputeRequest",
    "EvaluateResponse",
    "GradientResponse",
    "Graph",
    "HessianResponse",
    "JacobianResponse",
    "Node",
    "OpsResponse",
    "Value",
    "WireJSON",
    "decode",
    "encode",
    "jsonable",
]
