"""What the cost model adds to a small request (target: at most 3%).

The seed's third example, `check: none`, as the service runs it on the event loop
(``Service.run(..., inline=INLINE_MAX_WORK)``: parse, shapes, estimate, compute, encode), against
the same with the estimate switched off (``engine.derive.setup.charge`` a no-op),
interleaved in one process: their difference is what estimating adds. The ratio is
that time over a whole request: the same body POSTed to a live server on a kept-alive
loopback connection (``post_bytes``), against the same less the estimate.

Run alone: ``python -m bench.bench_cost [--quick]``.
"""

from __future__ import annotations

from collections.abc import Callable

from app.endpoints import GRADIENT
from app.service import INLINE_MAX_WORK, Service
from app.settings import Settings
from app.wire.requests import ComputeRequest
from bench.common import (
    Target,
    fmt_ratio,
    fmt_time,
    interleaved_per_call,
    post_bytes,
    print_table,
    run_alone,
    serve,
)
from engine.derive import setup

TARGET_RATIO = 1.03
SEED = {"expression": "x**2 + y**3", "values": {"x": 2, "y": 3}, "check": "none"}
SEED_GRAPH = {
    "graph": {"nodes": [
        {"id": "x", "op": "variable", "value": 2.0},
        {"id": "y", "op": "variable", "value": 3.0},
        {"id": "x2", "op": "pow", "inputs": ["x", 2]},
        {"id": "y3", "op": "pow", "inputs": ["y", 3]},
        {"id": "z", "op": "add", "inputs": ["x2", "y3"]},
    ]},
    "check": "none",
}


def _no_charge(*_args: object, **_kwargs: object) -> None:
    return None


def _without_estimate(run: Callable[[], object]) -> Callable[[], object]:
    """``run`` with ``engine.derive.setup.charge`` a no-op: swapped by plain assignment, so
    the swap costs the competitor next to nothing."""
    charge = setup.charge

    def call() -> object:
        setup.charge = _no_charge
        try:
            return run()
        finally:
            setup.charge = charge

    return call


def run(quick: bool = False) -> list[Target]:
    service = Service(Settings())
    rounds, min_time = (5, 0.1) if quick else (15, 0.3)
    rows, targets = [], []
    with serve("app.main:app") as url:
        for name, body in (("expression", SEED), ("graph", SEED_GRAPH)):
            request = ComputeRequest.model_validate(body)

            def with_model(request: ComputeRequest = request) -> object:
                return service.run(GRADIENT, request, inline=INLINE_MAX_WORK)

            times = interleaved_per_call(
                {"with": with_model, "without": _without_estimate(with_model),
                 "http": post_bytes(url, "/v1/gradient", body)},
                rounds=rounds, min_time=min_time)
            added = times["with"].median - times["without"].median
            whole = times["http"].median
            ratio = whole / (whole - added)
            rows.append([name, fmt_time(times["with"].median), fmt_time(times["without"].median),
                         fmt_time(added), fmt_time(whole), fmt_ratio(ratio)])
            targets.append(Target(f"cost model on a small request ({name})", ratio,
                                  TARGET_RATIO, detail=f"adds {added * 1e6:.1f} us"))
    print_table(["seed example 3", "service.run", "without estimate", "added",
                 "whole request (HTTP)", "ratio"], rows,
                "== cost model: what estimating adds to a small request (medians)")
    return targets


if __name__ == "__main__":
    run_alone(__doc__, run)
