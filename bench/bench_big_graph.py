"""A 100,000-op graph end to end: sent as graph JSON, and by ``graph_id``, against PyTorch.

The graph is the registered part's chain (``x = sin(x) * w + 0.1`` repeated, two
variables) at 100,002 nodes. One uvicorn worker, its limits raised by the operator's
settings so that the graph is allowed, answers ``POST /v1/gradient`` (``check: none``)
with the graph inline and by the id ``POST /v1/graphs`` gave it; PyTorch eager computes
the same gradient in this process. The bodies are encoded once and sent over one
kept-alive connection (``bench.common.post_bytes``), so the client is not timed. The
three are timed in interleaved rounds; the targets are ratios of medians. The server's
peak RSS is read after those rounds. Then, in rounds of their own against PyTorch, a
graph the server has not seen before (for information: its cache of inline graphs misses).

Run alone: ``python -m bench.bench_big_graph [--quick] [--nodes N]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bench.bench_registered import chain
from bench.common import (
    SERVER_PIDS,
    Target,
    fmt_ratio,
    fmt_time,
    interleaved,
    optional,
    peak_rss_mb,
    post_bytes,
    print_table,
    run_alone,
    serve,
    skipped,
)

NODES = 100_002
INLINE_LIMIT = 0.5  # inline graph JSON, whole request / torch eager
BY_ID_LIMIT = 0.2  # by graph_id / torch eager
RSS_LIMIT_MB = 300.0
VALUES = {"x": 0.25, "w": 0.95}


def settings_for(nodes: int) -> dict[str, str]:
    """The operator's settings that let a graph of ``nodes`` nodes in (the defaults refuse it)."""
    return {
        "DERIV_MAX_NODES": str(nodes),
        "DERIV_MAX_BODY_BYTES": str(64 * 2**20),
        "DERIV_TIME_BUDGET_SECONDS": "120",
        "DERIV_GRAPH_CACHE_NODES": str(4 * nodes),
        "DERIV_PLAN_CACHE_NODES": str(nodes),  # one such graph kept built
    }


def torch_gradient(nodes: list[dict[str, Any]]) -> Callable[[], dict[str, float]]:
    """The chain's gradient in PyTorch eager, written from the same node list."""
    import torch

    steps = [(n["op"], n["inputs"]) for n in nodes if n["op"] not in ("variable", "constant")]

    def run() -> dict[str, float]:
        x = torch.tensor(VALUES["x"], dtype=torch.float64, requires_grad=True)
        w = torch.tensor(VALUES["w"], dtype=torch.float64, requires_grad=True)
        y = x
        for op, _inputs in steps:
            y = torch.sin(y) if op == "sin" else y * w if op == "mul" else y + 0.1
        gx, gw = torch.autograd.grad(y, (x, w))
        return {"x": float(gx), "w": float(gw)}

    return run


def first_sight(url: str, nodes: list[dict[str, Any]], calls: int) -> Callable[[], bytes]:
    """POSTs the graph inline as a graph the server has not seen: each call's ``x`` has
    another ``value`` (``values`` overrides it: the same gradient), so the server's
    cache of inline graphs misses and it validates and builds the graph afresh."""
    bodies = iter(
        [
            post_bytes(
                url,
                "/v1/gradient",
                {
                    "graph": {"nodes": [{**nodes[0], "value": 1.0 + k}, *nodes[1:]]},
                    "values": VALUES,
                    "check": "none",
                },
            )
            for k in range(calls)
        ]
    )
    return lambda: next(bodies)()


def run(quick: bool = False, n: int = NODES) -> list[Target]:
    """Time them; print the table; the targets (for ``bench.run_all``)."""
    if not optional("torch"):
        return [Target("big graph vs torch", None, INLINE_LIMIT, detail=skipped("torch"))]
    rounds = 3 if quick else 7
    nodes = chain(n)
    reference = torch_gradient(nodes)
    with serve("app.main:app", env=settings_for(n), timeout=120) as url:
        import httpx

        registered = httpx.post(url + "/v1/graphs", json={"graph": {"nodes": nodes}}, timeout=300)
        registered.raise_for_status()
        inline = post_bytes(
            url, "/v1/gradient", {"graph": {"nodes": nodes}, "values": VALUES, "check": "none"}
        )
        by_id = post_bytes(
            url,
            "/v1/gradient",
            {"graph_id": registered.json()["graph_id"], "values": VALUES, "check": "none"},
        )
        want = reference()
        for call in (inline, by_id):
            got = json.loads(call())["gradients"]
            assert all(abs(got[k] - want[k]) <= 1e-9 * (1 + abs(want[k])) for k in want), (
                got,
                want,
            )
        t = interleaved(
            {"inline graph JSON": inline, "by graph_id": by_id, "torch eager": reference},
            rounds=rounds,
            warmup=1,
        )
        rss = peak_rss_mb(SERVER_PIDS[url])
        # a graph not seen before, in rounds of its own: it would push the graph sent
        # again out of the server's cache of inline graphs (which holds one of this size)
        cold = interleaved(
            {"inline, first sight": first_sight(url, nodes, rounds + 1), "torch eager": reference},
            rounds=rounds,
            warmup=1,
        )
    torch_t = t["torch eager"].median
    first_ratio = cold["inline, first sight"].median / cold["torch eager"].median
    rows = [
        [name, fmt_time(x.median), fmt_time(x.best), fmt_ratio(x.median / torch_t)]
        for name, x in t.items()
    ]
    first = cold["inline, first sight"]
    rows.append(
        [
            "inline, first sight (own rounds)",
            fmt_time(first.median),
            fmt_time(first.best),
            fmt_ratio(first_ratio),
        ]
    )
    print_table(
        ["competitor", "median", "best", "vs torch"],
        rows,
        f"gradient of a {n}-node chain, check=none, {rounds} interleaved rounds",
    )
    return [
        Target(
            f"{n}-node chain, inline graph JSON vs torch eager",
            t["inline graph JSON"].median / torch_t,
            INLINE_LIMIT,
            detail="the same graph each round, pre-encoded body",
        ),
        Target(
            f"{n}-node chain, inline, a graph not seen before, vs torch eager",
            first_ratio,
            None,
            detail="validated and built afresh",
        ),
        Target(
            f"{n}-node chain by graph_id vs torch eager",
            t["by graph_id"].median / torch_t,
            BY_ID_LIMIT,
            detail="whole request on loopback",
        ),
        Target(
            "server peak RSS after the big graph",
            rss,
            RSS_LIMIT_MB,
            unit="MB",
            detail="VmHWM of the one worker",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return run_alone(__doc__ or "", run, argv, size=("--nodes", NODES))


if __name__ == "__main__":
    raise SystemExit(main())
