"""The compute endpoints: validate, hand to the service, send the encoded result.

Plain ``def`` on purpose: the engine is CPU-bound, so FastAPI runs these in its
threadpool and the event loop (and ``/healthz``) stays responsive.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from app.dependencies import ServiceDep
from app.openapi import COMPUTE_PROBLEMS, examples
from app.wire.requests import ComputeRequest, DerivativeRequest
from app.wire.responses import (
    DerivativeResponse,
    EvaluateResponse,
    GradientResponse,
    HessianResponse,
    JacobianResponse,
    WireJSON,
)

router = APIRouter(prefix="/v1", tags=["derivatives"], responses=COMPUTE_PROBLEMS)


def _body(kind: str) -> object:
    return Body(openapi_examples=examples(kind))  # type: ignore[arg-type]


@router.post("/evaluate", response_model=EvaluateResponse, name="evaluate", response_class=WireJSON)
def evaluate(
    request: Annotated[ComputeRequest, _body("evaluate")], service: ServiceDep
) -> WireJSON:
    """Forward values of the targets (`outputs`), as the graph computes them."""
    return WireJSON(service.run("evaluate", request))


@router.post("/gradient", response_model=GradientResponse, name="gradient", response_class=WireJSON)
def gradient(
    request: Annotated[ComputeRequest, _body("gradient")], service: ServiceDep
) -> WireJSON:
    """Gradients of the target with respect to each source, as `tape.gradient(target, sources)`.

    A list target is summed and a non-scalar target summed (or weighted by
    `output_gradients`); each gradient has its source's shape. A source that is not
    watched, or not connected to the target, is `null` with a note, or zeros with
    `"unconnected_gradients": "zero"`.
    """
    return WireJSON(service.run("gradient", request))


@router.post("/jacobian", response_model=JacobianResponse, name="jacobian", response_class=WireJSON)
def jacobian(
    request: Annotated[ComputeRequest, _body("jacobian")], service: ServiceDep
) -> WireJSON:
    """Full Jacobians, as `tape.jacobian(target, source)`: `target.shape + source.shape` each.

    With a list target, one Jacobian per target. The number of entries
    (target elements × source elements) is bounded by `DERIV_MAX_DERIVATIVE_WORK`.
    """
    return WireJSON(service.run("jacobian", request))


@router.post("/hessian", response_model=HessianResponse, name="hessian", response_class=WireJSON)
def hessian(request: Annotated[ComputeRequest, _body("hessian")], service: ServiceDep) -> WireJSON:
    """Second derivatives of a scalar target by nested tapes, as TensorFlow computes them.

    `hessian[si][sj]` has shape `si.shape + sj.shape`; `matrix` is the same as one
    2-D array over the flattened sources in `sources` order (an unconnected block is
    zeros there). The gradients come along. The target must be a scalar (a 422
    otherwise), and the matrix size is bounded by `DERIV_MAX_DERIVATIVE_WORK`.
    """
    return WireJSON(service.run("hessian", request))


@router.post(
    "/derivative", response_model=DerivativeResponse, name="derivative", response_class=WireJSON
)
def derivative(
    request: Annotated[DerivativeRequest, _body("derivative")], service: ServiceDep
) -> WireJSON:
    """Every derivative of a scalar target up to `order`, by `order` nested tapes.

    `derivatives[j - 1]` is the j-th derivative: a number for one source, else the
    full symmetric tensor of shape `[n] * j` over `sources` (order 1 the gradient,
    2 the Hessian, ...). Sources must be scalar leaves and the target a scalar (422
    otherwise); `order` is bounded by `DERIV_MAX_DERIVATIVE_ORDER` and the entries
    n + n² + ... + nᵏ by `DERIV_MAX_DERIVATIVE_WORK` (413 beyond). `check` compares
    every order with SymPy, or orders 1 and 2 with finite differences.
    """
    return WireJSON(service.run("derivative", request))
