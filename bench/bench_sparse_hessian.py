"""Sparse Hessian of Rosenbrock (tridiagonal) as n grows: detection, colouring, one sweep.

The graph is ``bench_hessian.rosenbrock_graph(n)`` through ``engine.graphs.build.build_graph``;
``engine.sparse_hessian`` records it on nested tapes, detects the pattern, colours it
and evaluates the whole Hessian in one compressed reverse sweep. Each result is
checked against the exact Hessian's entries before it is timed. The phases are timed
apart too (detection and colouring alone, on a tape recorded beforehand).

The whole ``POST /v1/hessian`` at n = 10,000 is timed on loopback too (target < 2 s).

Run alone: ``python -m bench.bench_sparse_hessian [--quick] [--sizes 1000 10000 100000]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.bench_hessian import rosenbrock_graph, start_point
from bench.common import (
    Target,
    fmt_time,
    interleaved,
    post_bytes,
    print_machine,
    print_table,
    print_targets,
    serve,
)
from bench.rosenbrock import exact_entries

SIZES = (1000, 10_000, 100_000)
REQUEST_N = 10_000
REQUEST_SECONDS = 2.0  # the whole request must answer within this


def median_time(fn: Callable[[], Any], rounds: int) -> float:
    """One competitor's median over ``rounds`` calls, after a warm-up call."""
    return interleaved({"fn": fn}, rounds=rounds, warmup=1)["fn"].median


def bench_size(n: int, rounds: int) -> list[str]:
    from engine import GradientTape, Variable, sparse_hessian
    from engine.derive.colouring import colour_rows
    from engine.derive.pattern import hessian_pattern
    from engine.graphs.build import build_graph

    t0 = time.perf_counter()
    graph = build_graph(rosenbrock_graph(n)["nodes"])
    build_s = time.perf_counter() - t0
    x = Variable(start_point(n), name="x")

    def fn() -> Any:
        return graph.run({"x": x})[graph.last]

    h = sparse_hessian(fn, [x])
    np.testing.assert_allclose(h.values, exact_entries(x.numpy(), h.rows, h.cols),
                               rtol=1e-12, atol=1e-9)
    assert h.nnz == 3 * n - 2, h.nnz
    total = median_time(lambda: sparse_hessian(fn, [x]), rounds)

    with GradientTape() as tape:
        target = fn()
    detect = median_time(lambda: hessian_pattern(tape.raw_entries, [target], [x]), rounds)
    rows, cols, _ = hessian_pattern(tape.raw_entries, [target], [x])
    colour = median_time(lambda: colour_rows(rows, cols, (n, n)), rounds)
    s = h.structure
    return [
        f"{n:,}", fmt_time(total), fmt_time(detect), fmt_time(colour), str(h.colours),
        f"{s.kind}, bandwidth {s.bandwidth}", f"{h.nnz:,}", fmt_time(build_s),
    ]


def bench_request(url: str, n: int, rounds: int) -> tuple[list[str], Target]:
    """The whole ``POST /v1/hessian`` at n (``format: auto``, so sparse past 1000 sources)."""
    call = post_bytes(url, "/v1/hessian", {"graph": rosenbrock_graph(n), "check": "none"})
    body = json.loads(call())
    sparse = body["sparse"]
    rows, cols = np.asarray(sparse["rows"]), np.asarray(sparse["cols"])
    np.testing.assert_allclose(np.asarray(sparse["values"]),
                               exact_entries(start_point(n), rows, cols), rtol=1e-12, atol=1e-9)
    took = median_time(call, rounds)
    s = body["structure"]
    detail = f"{s['kind']}, bandwidth {s['bandwidth']}, {s['colours']} colours, nnz {s['nnz']}"
    return (
        [f"{n:,}", "POST /v1/hessian", fmt_time(took), detail],
        Target(f"5 sparse hessian request n={n:,}", took, REQUEST_SECONDS, unit="s",
               detail=detail),
    )


def run(quick: bool = False, sizes: tuple[int, ...] = SIZES, rounds: int = 5) -> list[Target]:
    rounds = 3 if quick else rounds
    rows = [bench_size(n, rounds) for n in sizes]
    print_table(
        ["n", "sparse_hessian", "detection", "colouring", "colours", "structure", "nnz",
         "build_graph"],
        rows,
        "5. Sparse Hessian of Rosenbrock, engine only (median of rounds; sparse_hessian = "
        "record on nested tapes + detection + colouring + one compressed sweep + recovery)",
    )
    with serve("app.main:app") as url:
        row, target = bench_request(url, REQUEST_N, rounds)
    print_table(["n", "what", "median", "structure"], [row],
                "5. Sparse Hessian, the whole request on loopback (JSON in, coordinates out)")
    return [target]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    print_machine()
    print_targets(run(args.quick, tuple(args.sizes), args.rounds))


if __name__ == "__main__":
    main()
