"""Replicas sharing a Redis: what the shared graph store and check cache cost or save.

``checks``: the seed's third example with the default ``check: "auto"`` (SymPy) against
a bare FastAPI endpoint (``bench.bare_app``), requests per second, the service using the
shared store (the derivative is derived once, then evaluated in the request's thread).
Target: at least 0.5x the bare ceiling.

``redis``: ``POST /v1/gradient`` by ``graph_id`` on a 1,000-node graph, ``check: "none"``,
one server keeping graphs in-process, one in Redis (a hit is this replica's decoded copy
plus one round trip renewing the TTL). Target: Redis at most 1.2x the in-process time.

Both start ``redis-server`` on a free loopback port (Debian's package) and skip, saying
so, without it. Run alone: ``python -m bench.bench_shared [--quick]``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from contextlib import contextmanager

from app.examples import SEED_3
from bench.bench_registered import chain
from bench.common import (
    Target,
    fmt_ratio,
    fmt_time,
    interleaved,
    post_load,
    print_table,
    run_alone,
    serve,
)
from tests.redis_server import REDIS_MISSING, RedisServer, redis_binary

CHECK_RPS_LIMIT = 0.5
REDIS_TIME_LIMIT = 1.2


@contextmanager
def redis_url() -> Iterator[str | None]:
    binary = redis_binary()
    if binary is None:
        print(f"SKIPPED: {REDIS_MISSING}")  # noqa: T201
        yield None
        return
    server = RedisServer(binary).start()
    try:
        yield server.url
    finally:
        server.close()


def run_checks(quick: bool = False) -> list[Target]:
    rounds, seconds = (2, 2.0) if quick else (5, 5.0)
    auto = {**SEED_3, "check": "auto"}
    with redis_url() as url:
        if url is None:
            return [
                Target(
                    "check=auto req/s vs bare (Redis)",
                    None,
                    CHECK_RPS_LIMIT,
                    higher_is_better=True,
                    detail=REDIS_MISSING,
                )
            ]
        env = {"DERIV_GRAPH_STORE_URL": url, "DERIV_GRAPH_STORE_SECRET": "bench-secret"}
        with serve("app.main:app", env=env) as service, serve("bench.bare_app:app") as bare:
            import httpx

            report = httpx.post(service + "/v1/gradient", json=auto, timeout=60).json()["check"]
            assert (report["method"], report["status"]) == ("sympy", "agree"), report
            post_load(service + "/v1/gradient", auto, 1.0)  # warm both up
            post_load(bare + "/v1/gradient", SEED_3, 1.0)
            runs = {
                "service check=auto": (service + "/v1/gradient", auto),
                "bare FastAPI + pydantic": (bare + "/v1/gradient", SEED_3),
            }
            loads: dict[str, list] = {n: [] for n in runs}
            names = list(runs)
            for r in range(rounds):
                for n in names[r % 2 :] + names[: r % 2]:
                    load = post_load(*runs[n], seconds, 4)
                    if load.failures:
                        raise RuntimeError(f"{n}: {load.failures} failed requests")
                    loads[n].append(load)
    rps = {n: statistics.median(x.rps for x in v) for n, v in loads.items()}
    base = rps["bare FastAPI + pydantic"]
    tool = loads[names[0]][0].tool
    print_table(
        ["server", "req/s (median)", "rounds", "vs bare"],
        [
            [n, f"{v:.0f}", " ".join(f"{x.rps:.0f}" for x in loads[n]), fmt_ratio(v / base)]
            for n, v in rps.items()
        ],
        f"POST /v1/gradient, seed example 3, check=auto with a shared Redis, {tool}, "
        f"4 connections, {rounds} interleaved rounds of {seconds:g} s",
    )
    value = rps["service check=auto"] / base
    return [
        Target(
            "check=auto req/s vs bare (Redis)",
            value,
            CHECK_RPS_LIMIT,
            higher_is_better=True,
            detail=f"{rps['service check=auto']:.0f} vs {base:.0f} req/s ({tool})",
        )
    ]


def run_redis(quick: bool = False, n: int = 1_000) -> list[Target]:
    import httpx

    rounds = 10 if quick else 40
    nodes = chain(n)
    body = {"values": {"x": 0.25, "w": 0.95}, "check": "none"}
    with redis_url() as url:
        if url is None:
            return [
                Target(
                    f"graph_id {n} nodes, Redis / in-process",
                    None,
                    REDIS_TIME_LIMIT,
                    detail=REDIS_MISSING,
                )
            ]
        with (
            serve("app.main:app") as local,
            serve("app.main:app", env={"DERIV_GRAPH_STORE_URL": url}) as shared,
            httpx.Client(timeout=60) as client,
        ):
            posts = {}
            for name, base in (("in-process", local), ("Redis", shared)):
                r = client.post(base + "/v1/graphs", json={"graph": {"nodes": nodes}})
                r.raise_for_status()
                text = json.dumps({**body, "graph_id": r.json()["graph_id"]})
                posts[name] = (base + "/v1/gradient", text)

            def call(name: str) -> dict:
                u, text = posts[name]
                resp = client.post(u, content=text, headers={"content-type": "application/json"})
                resp.raise_for_status()
                return resp.json()["gradients"]

            assert call("in-process") == call("Redis")
            t = interleaved(
                {name: lambda name=name: call(name) for name in posts}, rounds=rounds, warmup=3
            )
    ratio = t["Redis"].median / t["in-process"].median
    print_table(
        ["store", "median request", "vs in-process"],
        [
            [name, fmt_time(x.median), fmt_ratio(x.median / t["in-process"].median)]
            for name, x in t.items()
        ],
        f"POST /v1/gradient by graph_id, {n}-node chain, check=none, medians of "
        f"{rounds} interleaved rounds",
    )
    return [
        Target(
            f"graph_id {n} nodes, Redis / in-process",
            ratio,
            REDIS_TIME_LIMIT,
            detail=f"{fmt_time(t['Redis'].median)} vs {fmt_time(t['in-process'].median)}",
        )
    ]


def run(quick: bool = False) -> list[Target]:
    return run_checks(quick) + run_redis(quick)


def main(argv: list[str] | None = None) -> None:
    run_alone(__doc__ or "", run, argv)


if __name__ == "__main__":
    main()
