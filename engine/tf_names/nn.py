"""``tf.nn``: the names TensorFlow has there that map onto the engine's ops."""

# TF's signatures: ``name`` (and a few TF-only arguments) are accepted and unused.
# ruff: noqa: ARG001

from __future__ import annotations

from typing import Any

from engine.tensor import Tensor
from engine.tf_names._ops import op
from engine.tf_names.core import gather


def relu(features: Any, name: str | None = None) -> Tensor:
    return op("relu", features)


def sigmoid(x: Any, name: str | None = None) -> Tensor:
    return op("sigmoid", x)


def tanh(x: Any, name: str | None = None) -> Tensor:
    return op("tanh", x)


def softplus(features: Any, name: str | None = None) -> Tensor:
    return op("softplus", features)


def softmax(logits: Any, axis: int | None = None, name: str | None = None) -> Tensor:
    return op("softmax", logits, axis=-1 if axis is None else axis)


def log_softmax(logits: Any, axis: int | None = None, name: str | None = None) -> Tensor:
    """logits - logsumexp(logits) over ``axis`` (the last by default)."""
    ax = -1 if axis is None else axis
    return op("sub", logits, op("logsumexp", logits, axis=ax, keepdims=True))


def l2_loss(t: Any, name: str | None = None) -> Tensor:
    """sum(t ** 2) / 2."""
    return op("mul", op("sum", op("square", t)), 0.5)


def softmax_cross_entropy_with_logits(
    labels: Any, logits: Any, axis: int = -1, name: str | None = None
) -> Tensor:
    """-sum(labels * log_softmax(logits)) over ``axis``: differentiable in both, as TF 2's."""
    return op("neg", op("sum", op("mul", labels, log_softmax(logits, axis)), axis=axis))


def embedding_lookup(
    params: Any, ids: Any, max_norm: Any = None, name: str | None = None
) -> Tensor:
    """Rows of ``params`` at ``ids``: ``gather`` along axis 0 (one params tensor)."""
    if max_norm is not None:
        raise NotImplementedError("embedding_lookup with max_norm is not supported")
    return gather(params, ids)


__all__ = [
    "embedding_lookup",
    "l2_loss",
    "log_softmax",
    "relu",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy_with_logits",
    "softplus",
    "tanh",
]
