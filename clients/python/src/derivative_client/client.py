"""``Client``: the service's endpoints as Python methods, over one kept-alive connection.

    with Client("http://127.0.0.1:8000") as client:
        client.gradient("x**2 + y**3", values={"x": 2, "y": 3}).gradients
        # {'x': 4.0, 'y': 27.0}

The first argument says what to compute (see ``derivative_client.requests``); the
request's other fields are keywords, named as on the wire. Problems raise
``ProblemError``; a saturated replica's 503 is retried after its ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import httpx

from . import calls
from .calls import Call
from .results import (
    DerivativeResult,
    GradientResult,
    GraphInfo,
    HessianResult,
    JacobianResult,
    Result,
    SymbolicResult,
)
from .retrying import RetryPolicy

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "derivative-client/0.1"
# what ``_Endpoints._steps`` yields (a Call to send, or seconds to wait) and returns
Steps = Generator["Call | float", Any, Any]


class _Endpoints:
    """The methods both clients offer; ``_run`` sends a ``Call`` (and is awaitable in
    ``AsyncClient``)."""

    http_class: type[httpx.Client] | type[httpx.AsyncClient]  # what sends, in each client

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        max_retry_wait: float = 10.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = RetryPolicy(retries=retries, max_wait=max_retry_wait)
        # graph_id -> the body that registered it, to register again after an eviction
        self.registered: dict[str, dict[str, Any]] = {}
        self.http = self.http_class(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"user-agent": USER_AGENT, **(headers or {})},
            transport=transport,  # type: ignore[arg-type]  # the class's own kind
        )

    def _run(self, call: Call) -> Any:
        raise NotImplementedError

    def evaluate(self, what: Any = None, **fields: Any) -> Result:
        """``outputs`` of the targets."""
        return self._run(calls.compute("evaluate", what, fields))

    def gradient(self, what: Any = None, **fields: Any) -> GradientResult:
        """``gradients`` of the (summed) target by each source, as ``tape.gradient``."""
        return self._run(calls.compute("gradient", what, fields))

    def jacobian(self, what: Any = None, **fields: Any) -> JacobianResult:
        """``jacobian[target][source]``."""
        return self._run(calls.compute("jacobian", what, fields))

    def hessian(self, what: Any = None, **fields: Any) -> HessianResult:
        """``hessian`` blocks and ``matrix`` (or ``sparse`` with ``format="coo"``)."""
        return self._run(calls.compute("hessian", what, fields))

    def derivative(self, what: Any = None, *, order: int, **fields: Any) -> DerivativeResult:
        """Every derivative up to ``order`` of a scalar target by scalar sources."""
        return self._run(calls.compute("derivative", what, {"order": order, **fields}))

    def symbolic(self, what: Any = None, **fields: Any) -> SymbolicResult:
        """The derivatives as formulas (``sources``, ``order``, ``simplify``, ``values``)."""
        return self._run(calls.symbolic(what, fields))

    def register(self, what: Any) -> GraphInfo:
        """Validate a graph once; pass the answer where a graph goes (sends ``graph_id``)."""
        return self._run(calls.register(what))

    def forget(self, graph: GraphInfo | str) -> None:
        """Delete a registered graph on the replica that answers (a 404 if it has none)."""
        return self._run(calls.forget(graph))

    def ops(self) -> list[dict[str, Any]]:
        """The op catalogue the service serves (``GET /v1/ops``)."""
        return self._run(calls.ops())

    def _steps(self, call: Call) -> Steps:
        """One call's exchange, free of I/O so both clients drive the same logic: yields
        a ``Call`` to send (and is sent its response) or seconds to sleep; returns the
        answer. A 503 with ``Retry-After`` is sent again; a graph the replica evicted is
        registered again from the body that registered it, then the call repeated."""
        response = yield from self._sent_with_retries(call)
        again = calls.evicted(call, response, self.registered)
        if again is not None:
            yield from self._steps(calls.register_body(again))
            response = yield from self._sent_with_retries(call)
        result = calls.answer(call, response)
        self._remember(call, result)
        return result

    def _sent_with_retries(self, call: Call) -> Generator[Call | float, Any, httpx.Response]:
        attempt = 0
        while True:
            response = yield call
            wait = self.policy.wait_before_retry(response, attempt)
            if wait is None:
                return response
            yield wait
            attempt += 1

    def _remember(self, call: Call, result: Any) -> None:
        if isinstance(result, GraphInfo) and call.json is not None:
            self.registered[result.graph_id] = call.json
        elif call.method == "DELETE":
            self.registered.pop(call.path.rsplit("/", 1)[-1], None)


class Client(_Endpoints):
    """A blocking client. ``timeout`` (seconds) bounds each send; ``retries`` bounds how
    often a 503 with ``Retry-After`` is sent again, each wait at most ``max_retry_wait``."""

    http_class = httpx.Client

    def _run(self, call: Call) -> Any:
        steps = self._steps(call)
        response: httpx.Response | None = None
        while True:
            try:
                step = steps.send(response)
            except StopIteration as done:
                return done.value
            if isinstance(step, Call):
                response = self.http.request(step.method, step.path, json=step.json)
            else:
                time.sleep(step)
                response = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
