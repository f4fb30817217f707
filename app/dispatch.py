"""Where a compute request runs: inline on the event loop when provably tiny, else a thread.

A threadpool round trip costs about 100 µs of handoff and GIL ping-pong, which is more
than the whole computation of a seed-sized graph (a few nodes, a few numbers, no
check). Such requests run inline, where blocking the loop for tens of microseconds is
cheaper than the hop. Anything that could take longer (more nodes or elements, a
check that waits on a SymPy worker or runs finite differences, `/v1/derivative`, a
registered graph of unknown size) goes to the threadpool, so ``/healthz`` and other
requests keep being answered while it computes (STYLE item 19).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from app.service import Service
from app.wire.requests import ComputeRequest

# Bounds under which a computation takes well under a millisecond: the seed's third example
# (5 nodes, 2 numbers) answers its gradient in ~0.1 ms; the largest graph allowed here, a
# Hessian of a 128-element source through 16 nodes, in ~0.6 ms (Rosenbrock, n = 100, where
# the threadpool hop was a third of the engine's time).
INLINE_MAX_NODES = 16
INLINE_MAX_ELEMENTS = 128
INLINE_MAX_EXPRESSION = 128
INLINE_KINDS = frozenset({"evaluate", "gradient", "jacobian", "hessian"})


def _elements(value: Any) -> int:
    return int(getattr(value, "size", 1))


def is_tiny(kind: str, request: ComputeRequest) -> bool:
    """Whether ``request`` is small enough to compute on the event loop (see the module)."""
    if (
        kind not in INLINE_KINDS
        or request.check != "none"
        or request.graph_id is not None
        or request.points is not None
    ):
        return False
    elements = sum(_elements(v) for v in request.values.values())
    if request.output_gradients:
        elements += sum(_elements(v) for v in request.output_gradients.values())
    if request.graph is not None:
        nodes = request.graph.nodes
        if len(nodes) > INLINE_MAX_NODES:
            return False
        for node in nodes:
            if node.value is not None:
                elements += _elements(node.value)
            for x in node.inputs:
                if type(x) is not str:
                    elements += _elements(x)
    elif len(request.expression or "") > INLINE_MAX_EXPRESSION:
        return False
    return elements <= INLINE_MAX_ELEMENTS


async def compute(service: Service, kind: str, request: ComputeRequest) -> dict[str, Any]:
    """``service.run(kind, request)``, inline if the request is tiny, else in the threadpool."""
    if is_tiny(kind, request):
        return service.run(kind, request)
    return await run_in_threadpool(service.run, kind, request)
