"""A registered graph against sending it each time (target: registered >= 3x faster than a
graph the service has not seen before).

The graph is a 10,000-node scalar chain, ``x = sin(x) * w + 0.1`` repeated, with
two variables. Each round POSTs ``/v1/gradient`` over loopback HTTP to one uvicorn
worker three ways: with ``graph_id`` from ``POST /v1/graphs``; inline, a graph never
sent before (the same chain with its ids renamed, so nothing is cached for it); and
inline, the same graph sent again. All send the same ``values`` and compute the same
gradient. Registration saves sending, decoding, checking and building the graph: the
target compares it with the first inline road. A graph sent again finds its plan in
the service's cache (keyed by a digest of its JSON), so only sending and decoding the
body are left to save: that ratio is information. The headline uses ``check: none``;
``check: auto`` (here finite differences, several forward runs) is shown for
information.

Run alone: ``python -m bench.bench_registered [--quick] [--nodes N]``.
"""

from __future__ import annotations

import json
from typing import Any

from bench.common import (
    Target,
    fmt_ratio,
    fmt_time,
    interleaved,
    print_table,
    run_alone,
    serve,
)

TARGET_RATIO = 3.0


def chain(n: int, prefix: str = "") -> list[dict[str, Any]]:
    """``n`` nodes: two variables, then ``sin``, ``mul`` by ``w``, ``add`` 0.1, repeated;
    ``prefix`` renames every computed node (the same function, a graph not seen before)."""
    nodes: list[dict[str, Any]] = [
        {"id": "x", "op": "variable", "value": 0.5},
        {"id": "w", "op": "variable", "value": 0.9},
    ]
    prev, k = "x", 0
    while len(nodes) < n:
        for nid, op, inputs in ((f"{prefix}s{k}", "sin", [prev]),
                                (f"{prefix}m{k}", "mul", [f"{prefix}s{k}", "w"]),
                                (f"{prefix}a{k}", "add", [f"{prefix}m{k}", 0.1])):
            if len(nodes) < n:
                nodes.append({"id": nid, "op": op, "inputs": inputs})
                prev = nid
        k += 1
    return nodes


def gradient(client: Any, body: str) -> Any:
    """POST one gradient request; its gradients."""
    resp = client.post("/v1/gradient", content=body, headers={"content-type": "application/json"})
    resp.raise_for_status()
    return resp.json()["gradients"]


def run(quick: bool = False, n: int = 10_000) -> list[Target]:
    """Time both requests over HTTP; print the table; the target (for ``bench.run_all``)."""
    import httpx

    rounds = 5 if quick else 15
    nodes = chain(n)
    values = {"x": 0.25, "w": 0.95}
    targets: list[Target] = []
    rows: list[list[str]] = []
    with serve("app.main:app") as url, httpx.Client(base_url=url, timeout=120) as client:
        r = client.post("/v1/graphs", json={"graph": {"nodes": nodes}})
        r.raise_for_status()
        gid = r.json()["graph_id"]
        for check in ("none", "auto"):
            def body(nodes: list[dict[str, Any]], check: str = check) -> str:
                return json.dumps({"graph": {"nodes": nodes}, "values": values, "check": check})

            inline = body(nodes)
            fresh = iter([body(chain(n, f"r{i}_")) for i in range(rounds + 3)])
            by_id = json.dumps({"graph_id": gid, "values": values, "check": check})
            same = gradient(client, inline), gradient(client, by_id), gradient(client, next(fresh))
            assert same[0] == same[1] == same[2], same
            t = interleaved({"first sight": lambda f=fresh: gradient(client, next(f)),
                             "again": lambda b=inline: gradient(client, b),
                             "registered": lambda b=by_id: gradient(client, b)},
                            rounds=rounds, warmup=2)
            reg = t["registered"].median
            rows.append([f"check={check}", fmt_time(t["first sight"].median),
                         fmt_time(t["again"].median), fmt_time(reg),
                         fmt_ratio(t["first sight"].median / reg),
                         fmt_ratio(t["again"].median / reg),
                         f"{len(inline) // 1024} KiB vs {len(by_id)} B"])
            if check == "none":
                targets.append(Target(
                    f"registered {n}-node gradient vs inline, a graph not seen before",
                    t["first sight"].median / reg, TARGET_RATIO, higher_is_better=True,
                    detail="median over interleaved rounds, loopback HTTP",
                ))
                targets.append(Target(
                    f"registered {n}-node gradient vs inline, the same graph again",
                    t["again"].median / reg, None,
                    detail="its plan is cached: sending and decoding the body are left",
                ))
    print_table(["request", "inline, first sight", "inline, again", "registered",
                 "speed-up vs first sight", "vs again", "body"], rows,
                f"POST /v1/gradient, {n} nodes, medians of {rounds} rounds")
    return targets


def main(argv: list[str] | None = None) -> int:
    return run_alone(__doc__ or "", run, argv, size=("--nodes", 10_000))


if __name__ == "__main__":
    raise SystemExit(main())
