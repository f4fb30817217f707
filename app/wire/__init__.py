"""The wire: request and response models and the value codec, described once."""

from app.wire.requests import ComputeRequest, DerivativeRequest, Graph, GraphRequest, Node
from app.wire.responses import (
    DerivativeResponse,
    EvaluateResponse,
    GradientResponse,
    GraphInfo,
    HessianResponse,
    JacobianResponse,
    OpsResponse,
    StoredGraphResponse,
    WireJSON,
)
from app.wire.values import Value, decode, encode, jsonable

__all__ = [
    "ComputeRequest",
    "DerivativeRequest",
    "DerivativeResponse",
    "EvaluateResponse",
    "GradientResponse",
    "Graph",
    "GraphInfo",
    "GraphRequest",
    "HessianResponse",
    "JacobianResponse",
    "Node",
    "OpsResponse",
    "StoredGraphResponse",
    "Value",
    "WireJSON",
    "decode",
    "encode",
    "jsonable",
]
