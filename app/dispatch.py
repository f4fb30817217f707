"""Where a compute request runs: inline on the event loop when provably tiny, else a thread.

A threadpool round trip costs about 100 µs of handoff and GIL ping-pong, which is more
than the whole computation of a seed-sized graph (a few nodes, a few numbers, no
check). Such requests run inline, where blocking the loop for tens of microseconds is
cheaper than the hop. What a request *contains* cannot prove it tiny (one scalar
broadcast to 10^6 elements is a few bytes), so a candidate runs inline only until its
shapes are known: if its estimated work is over ``service.INLINE_MAX_WORK``, the
service says ``NotInline`` before computing anything and it moves to a thread. Its
check (the default ``auto``, or ``sympy``) runs inline only from SymPy's derivative of
its structure compiled in this process (engine.check.shared_checks), a few evaluations;
the first request of a structure, or one whose check needs a SymPy worker, says
``NotInline`` once computed and computes again in a thread (a tiny graph's work, spent
twice), where the check may wait.

A request alone (``app.activity``: nothing else computing, no other client lately) may
spend up to ``service.INLINE_ALONE_MAX_WORK`` there, about 2 ms: nobody waits behind it,
and a single client's round trip (a Rosenbrock Hessian of 100 sources) saves the hop, a
quarter of its time. Under concurrent load, where others would queue behind the loop (a
flood of such Hessians from 16 clients, all inline, took ``/healthz`` from 9 ms to 71 ms
at p99), the small bound holds.

Everything else runs in the threadpool, admitted by the process's memory budget
(``app.admission``), so ``/healthz`` and other requests keep being answered while
it computes (STYLE item 19); its response is encoded there too, and its admitted room
is given back only once the response is sent (an answer of tens of MB is memory too).
A client that disconnects cancels its computation, which stops at the next op boundary
(``off_loop``, which the picture routes run their work with too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from app.activity import Activity
from app.endpoints import Endpoint
from app.service import INLINE_ALONE_MAX_WORK, INLINE_MAX_WORK, NotInline, Service
from app.wire.requests import ComputeRequest
from app.wire.responses import WireJSON
from engine import budget

# Bounds on what a request contains under which it may try to run inline; its shapes
# then decide (see the module docstring).
INLINE_MAX_NODES = 16
INLINE_MAX_ELEMENTS = 128
INLINE_MAX_EXPRESSION = 128
DISCONNECT_POLL_SECONDS = 0.25  # how often a running request asks whether its client is there
R = TypeVar("R")


def _elements(value: Any) -> int:
    return int(getattr(value, "size", 1))


def is_tiny(endpoint: Endpoint, request: ComputeRequest) -> bool:
    """Whether ``request`` may try to compute on the event loop (see the module)."""
    if (
        not endpoint.inline
        or request.check == "numeric"  # finite differences run the graph many times
        or request.graph_id is not None
        or request.points is not None
        or request.trace
        # more values than a tiny request has elements: not summed on the loop (150,000
        # names of a 1.7 MB body took about 100 ms of it)
        or len(request.values) + len(request.output_gradients or ()) > INLINE_MAX_ELEMENTS
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
    elif (
        len(request.expression or "")
        + sum(len(text) for text in (request.expressions or {}).values())
        > INLINE_MAX_EXPRESSION
    ):
        return False
    return elements <= INLINE_MAX_ELEMENTS


async def compute(http: Request, endpoint: Endpoint, request: ComputeRequest) -> Response:
    """``service.run(endpoint, request)`` as a response: inline if tiny, else in the
    threadpool."""
    state = http.app.state
    service: Service = state.service  # not a dependency: ~11 µs less per request
    activity: Activity = state.activity
    alone = activity.start(http.scope.get("client"))
    try:
        if is_tiny(endpoint, request):
            try:
                return WireJSON(service.run(
                    endpoint, request,
                    inline=INLINE_ALONE_MAX_WORK if alone else INLINE_MAX_WORK))
            except NotInline:
                pass
        return await _in_thread(http, service, endpoint, request)
    finally:
        activity.end()


async def _in_thread(http: Request, service: Service, endpoint: Endpoint,
                     request: ComputeRequest) -> Response:
    """``service.run`` in the threadpool, admitted by the memory budget."""
    held: list[float] = []  # the admitted room, given back once the answer is sent

    def work(cancel: budget.Cancel) -> Response:
        try:
            response = WireJSON(service.run(endpoint, request, cancel=cancel, held=held))
        except BaseException:
            service.release(held)
            raise
        response.background = BackgroundTask(service.release, held)
        return response

    return await off_loop(http, work, abandoned=lambda: service.release(held))


async def off_loop(
    http: Request,
    work: Callable[[budget.Cancel], R],
    abandoned: Callable[[], None] | None = None,
) -> R:
    """``work(cancel)`` in the threadpool, its result or its exception.

    While it runs, the client is asked every ``DISCONNECT_POLL_SECONDS`` whether it is
    still there; once it is gone, ``cancel`` is set and the work stops at its next op
    boundary. If this await is itself cancelled (shutdown), no result will be delivered:
    ``cancel`` is set and ``abandoned`` runs once the thread ends (to give back what the
    work held for a response that will not be sent)."""
    cancel = budget.Cancel()
    job = asyncio.ensure_future(run_in_threadpool(work, cancel))
    delivered = False
    try:
        while True:
            done, _ = await asyncio.wait({job}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                delivered = True
                return job.result()
            if await http.is_disconnected():
                cancel.set()
    finally:
        if not delivered:  # cancelled while awaiting: stop the thread
            cancel.set()
            if abandoned is not None:
                job.add_done_callback(lambda _: abandoned())
