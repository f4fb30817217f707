"""The compute endpoints: validate, hand to the service, send the encoded result.

``async def`` so that ``app.dispatch`` can choose: a provably tiny request computes
inline (cheaper than the threadpool hop), anything else in the threadpool, so the
event loop (and ``/healthz``) stays responsive while the engine works; for the same
reason a large body is decoded and validated in a thread too (``app.offload``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from app.dispatch import compute
from app.offload import OffloadedBodyRoute
from app.openapi import COMPUTE_PROBLEMS, examples
from app.wire.requests import ComputeRequest, DerivativeRequest, HessianRequest
from app.wire.responses import (
    DerivativeResponse,
    EvaluateResponse,
    GradientResponse,
    HessianResponse,
    JacobianResponse,
    WireJSON,
)

# Large bodies are decoded and validated in a worker thread (app.offload).
router = APIRouter(
    prefix="/v1", tags=["derivatives"], responses=COMPUTE_PROBLEMS, route_class=OffloadedBodyRoute
)


def _body(kind: str) -> object:
    return Body(openapi_examples=examples(kind))  # type: ignore[arg-type]


@router.post("/evaluate", response_model=EvaluateResponse, name="evaluate", response_class=WireJSON)
async def evaluate(
    request: Annotated[ComputeRequest, _body("evaluate")], http: Request
) -> Response:
    """Forward values of the targets (`outputs`), as the graph computes them."""
    return await compute(http, "evaluate", request)


@router.post("/gradient", response_model=GradientResponse, name="gradient", response_class=WireJSON)
async def gradient(
    request: Annotated[ComputeRequest, _body("gradient")], http: Request
) -> Response:
    """Gradients of the target with respect to each source, as `tape.gradient(target, sources)`.

    A list target is summed and a non-scalar target summed (or weighted by
    `output_gradients`); each gradient has its source's shape. A source that is not
    watched, or not connected to the target, is `null` with a note, or zeros with
    `"unconnected_gradients": "zero"`.
    """
    return await compute(http, "gradient", request)


@router.post("/jacobian", response_model=JacobianResponse, name="jacobian", response_class=WireJSON)
async def jacobian(
    request: Annotated[ComputeRequest, _body("jacobian")], http: Request
) -> Response:
    """Full Jacobians, as `tape.jacobian(target, source)`: `target.shape + source.shape` each.

    With a list target, one Jacobian per target. The number of entries
    (target elements × source elements) is bounded by `DERIV_MAX_DERIVATIVE_WORK`.
    """
    return await compute(http, "jacobian", request)


@router.post("/hessian", response_model=HessianResponse, name="hessian", response_class=WireJSON)
async def hessian(
    request: Annotated[HessianRequest, _body("hessian")], http: Request
) -> Response:
    """Second derivatives of a scalar target by nested tapes, as TensorFlow computes them.

    `hessian[si][sj]` has shape `si.shape + sj.shape`; `matrix` is the same as one
    2-D array over the flattened sources in `sources` order (an unconnected block is
    zeros there). The gradients come along. The target must be a scalar (a 422
    otherwise), and the matrix size is bounded by `DERIV_MAX_DERIVATIVE_WORK`.

    With `format: coo` (the default beyond `DERIV_DENSE_MAX_SOURCES` source elements)
    the sparsity pattern is detected from the graph, columns that share no row are
    evaluated together (graph colouring, as ADOL-C does), and `sparse` lists the
    non-zeros; `structure` says what was found (e.g. `banded`, bandwidth 1, 3 colours
    for Rosenbrock). `DERIV_MAX_DERIVATIVE_WORK` then bounds the non-zeros.
    """
    return await compute(http, "hessian", request)


@router.post(
    "/derivative", response_model=DerivativeResponse, name="derivative", response_class=WireJSON
)
async def derivative(
    request: Annotated[DerivativeRequest, _body("derivative")], http: Request
) -> Response:
    """Every derivative of a scalar target up to `order`, by `order` nested tapes.

    `derivatives[j - 1]` is the j-th derivative: a number for one source, else the
    full symmetric tensor of shape `[n] * j` over `sources` (order 1 the gradient,
    2 the Hessian, ...). Sources must be scalar leaves and the target a scalar (422
    otherwise); `order` is bounded by `DERIV_MAX_DERIVATIVE_ORDER` and the entries
    n + n² + ... + nᵏ by `DERIV_MAX_DERIVATIVE_WORK` (422 beyond). `check` compares
    every order with SymPy, or orders 1 and 2 with finite differences.
    """
    return await compute(http, "derivative", request)
