"""Hessian cost as the number of sources grows (target 5): the Rosenbrock function.

    f(x) = sum_i 100 (x[i+1] - x[i]²)² + (1 - x[i])²,   x of n elements

The engine computes its Hessian by nested tapes (``engine.derive.derivatives.hessian``
on a JSON graph never reused and on one seen before, as the service keeps graphs, whose
Hessian is then its coloured sweep; and the whole ``POST /v1/hessian`` request over
loopback, which is a graph seen before after its first round, and the same request to
the service with its computation answered from memory, ``bench.ceiling_app``: the part
of the request no engine could take away),
against ``torch.func.hessian`` and ``jax.hessian`` under ``jax.jit`` (its
compile time reported apart). All of them must agree before they are timed.

PyTorch runs twice, with its own intra-op threads and with one (as the service computes
each request on one): on a shared 2-core machine its second thread can make it several
times slower, not faster. The ratios are against the faster of the two medians.

Run alone: ``python -m bench.bench_hessian [--quick] [--sizes 10 100 1000]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.examples import rosenbrock
from bench.common import (
    SERVER_PIDS,
    Target,
    Timings,
    fmt_ratio,
    fmt_time,
    interleaved,
    interleaved_per_call,
    optional,
    peak_rss_mb,
    post_bytes,
    print_machine,
    print_table,
    print_targets,
    serve,
    skipped,
)
from bench.rosenbrock import exact_hessian

SIZES = (10, 100, 1000)
REQUEST_TARGET_N = 100  # the whole request must be at most REQUEST_RATIO x torch here
REQUEST_RATIO = 0.5
LARGE_N = 1000  # and at most LARGE_RATIO x torch here
LARGE_RATIO = 1.0
LARGE_MB = 1024.0  # and within this much memory
TORCH = "torch.func.hessian"
ENGINE_REUSED = "engine hessian(graph seen before)"
TORCH_ONE = "torch.func.hessian, 1 thread"
HTTP = "engine POST /v1/hessian"
CEILING = "POST /v1/hessian, computation from memory"
# A dense n=1000 Hessian is estimated at ~370 MB of working memory: past the default
# limit of one request (DERIV_MAX_REQUEST_BYTES, 192 MiB), so the server runs with room.
SERVER_ENV = {"DERIV_MAX_REQUEST_BYTES": str(LARGE_MB * 2**20 // 2),
              "DERIV_MEMORY_BUDGET_BYTES": str(LARGE_MB * 2**20 // 2)}


def rosenbrock_graph(n: int) -> dict[str, Any]:
    """f as the wire's JSON graph (the Swagger UI example's): one vector variable, slices
    for x[1:] and x[:-1], at n points evenly spread over [-1.2, 1.2]."""
    graph: dict[str, Any] = rosenbrock(n)["graph"]
    return graph


def start_point(n: int) -> np.ndarray:
    return np.asarray(rosenbrock_graph(n)["nodes"][0]["value"])


# ------------------------------------------------------------------ competitors


def engine_direct(n: int, reused: bool = False) -> Callable[[], np.ndarray]:
    """The engine on the JSON graph: ``reused`` as the service keeps a graph it has seen
    (a registered one, an inline one sent again), whose Hessian after the first is its
    coloured sweep (engine.derive.coloured_hessian: 3 seeds here); else never reused,
    the n-seed sweep every time."""
    from engine.derive import derivatives
    from engine.derive.query import Query
    from engine.graphs.build import build_graph
    from engine.graphs.reusable import ReusableGraph

    graph = build_graph(rosenbrock_graph(n)["nodes"])
    query = Query(graph=ReusableGraph.of(graph) if reused else graph)
    return lambda: derivatives.hessian(query).matrix


def engine_http(url: str, n: int) -> Callable[[], bytes]:
    return post_bytes(url, "/v1/hessian", {"graph": rosenbrock_graph(n), "check": "none"})


def torch_hessian(n: int, threads: int | None = None) -> Callable[[], Any] | None:
    """``torch.func.hessian`` with ``threads`` intra-op threads (None: PyTorch's default,
    as it was when first asked); each call sets its count, as the two variants alternate."""
    torch = optional("torch")
    if torch is None:
        return None
    from torch.func import hessian

    x = torch.from_numpy(start_point(n))
    count = threads or _TORCH_THREADS.setdefault("default", torch.get_num_threads())

    def f(x: Any) -> Any:
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    h = hessian(f)

    def call() -> Any:
        torch.set_num_threads(count)
        return h(x)

    return call


_TORCH_THREADS: dict[str, int] = {}  # PyTorch's own count, read before any call changes it


def jax_hessian(n: int) -> tuple[Callable[[], Any], float] | None:
    """The jitted Hessian and its compile (first call) time."""
    jax = optional("jax")
    if jax is None:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def f(x: Any) -> Any:
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    h = jax.jit(jax.hessian(f))
    x = jnp.asarray(start_point(n))
    t0 = time.perf_counter()
    h(x).block_until_ready()
    compile_s = time.perf_counter() - t0
    return (lambda: h(x).block_until_ready()), compile_s


def check_agreement(n: int, calls: dict[str, Callable[[], Any]]) -> None:
    import json

    want = exact_hessian(start_point(n))
    for name, call in calls.items():
        got = call()
        if isinstance(got, bytes):
            got = np.asarray(json.loads(got)["matrix"], dtype=float)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-9,
                                   err_msg=f"{name}, n={n}")


# ------------------------------------------------------------------ the run


def bench_size(url: str, ceiling: str, n: int, rounds: int
               ) -> tuple[list[list[str]], list[Target]]:
    calls: dict[str, Callable[[], Any]] = {
        "engine hessian(graph)": engine_direct(n),
        ENGINE_REUSED: engine_direct(n, reused=True),
        HTTP: engine_http(url, n),
        CEILING: engine_http(ceiling, n),
    }
    t, one = torch_hessian(n), torch_hessian(n, threads=1)
    if t and one:
        calls[TORCH], calls[TORCH_ONE] = t, one
    j = jax_hessian(n)
    compile_s = None
    if j:
        calls["jax.jit(jax.hessian)"], compile_s = j
    check_agreement(n, calls)
    res: dict[str, Timings]
    if n <= 100:
        res = interleaved_per_call(calls, rounds=rounds, min_time=0.1)
    else:
        res = interleaved(calls, rounds=rounds, warmup=1)
    rows = []
    ref_t = min(res[TORCH].median, res[TORCH_ONE].median) if t else None
    ref_j = res["jax.jit(jax.hessian)"].median if j else None
    for name, tm in res.items():
        rows.append([
            f"n={n}", name, fmt_time(tm.median), fmt_time(tm.best),
            fmt_ratio(tm.median / ref_t) if ref_t else "-",
            fmt_ratio(tm.median / ref_j) if ref_j else "-",
        ])
    if compile_s is not None:
        rows.append([f"n={n}", "  jax compile (first call)", fmt_time(compile_s), "", "", ""])
    eng = res["engine hessian(graph)"].median
    again = res[ENGINE_REUSED].median
    http, around = res[HTTP].median, res[CEILING].median
    targets = []
    for size, bound in ((REQUEST_TARGET_N, REQUEST_RATIO), (LARGE_N, LARGE_RATIO)):
        if n == size:
            targets.append(Target(
                f"5 whole request n={n} vs torch", http / ref_t if ref_t else None, bound,
                detail=f"POST /v1/hessian {fmt_time(http)}, torch.func.hessian in-process "
                f"{fmt_time(ref_t)} (the faster of its default threads and one); all but "
                f"the computation {fmt_time(around)} = {fmt_ratio(around / ref_t)}"
                if ref_t else skipped("torch"),
            ))
    if n == LARGE_N:
        rss = peak_rss_mb(SERVER_PIDS[url])
        targets.append(Target(f"5 server peak RSS after n={n}", rss, LARGE_MB, unit="MB",
                              detail="VmHWM of the server process over every request so far"))
    for ref, label, why in ((ref_t, "torch", "torch"), (ref_j, "jax jit", "jax")):
        if ref is None:
            targets.append(Target(f"5 hessian n={n} vs {label}", None, None, detail=skipped(why)))
            continue
        targets.append(Target(
            f"5 hessian n={n} vs {label}", eng / ref, None,
            detail=f"engine {fmt_time(eng)}, {label} {fmt_time(ref)}; graph seen before "
            f"{fmt_time(again)} = {fmt_ratio(again / ref)}; whole request "
            f"{fmt_time(http)} = {fmt_ratio(http / ref)}",
        ))
    return rows, targets


def run(quick: bool = False, sizes: tuple[int, ...] = SIZES) -> list[Target]:
    rows: list[list[str]] = []
    targets: list[Target] = []
    with serve("app.main:app", env=SERVER_ENV) as url:
        for n in sizes:
            rounds = 3 if quick else 5 if n >= 1000 else 7  # n = 1000: a target, so not 3
            # one body per endpoint is all it remembers, so one ceiling server per size
            with serve("bench.ceiling_app:app", env=SERVER_ENV) as ceiling:
                r, t = bench_size(url, ceiling, n, rounds)
            rows += r
            targets += t
    print_table(
        ["size", "competitor", "median", "best", "vs torch", "vs jax"],
        rows,
        "5. Hessian of Rosenbrock, one vector source of n elements, interleaved rounds "
        "(the request is check=none; jax compile time apart)",
    )
    return targets


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = p.parse_args(argv)
    print_machine()
    print_targets(run(args.quick, tuple(args.sizes)))


if __name__ == "__main__":
    main()
