"""Per-request overhead over HTTP on loopback (targets 4 and 6).

4. The seed's third example (x = 2, y = 3, z = x**2 + y**3) as a JSON graph to
   ``POST /v1/gradient`` with ``check: "none"`` (and, for information, the default
   ``"auto"``), against a bare FastAPI endpoint (``bench.bare_app``) that validates
   the same body with pydantic and answers by hand, as a ``def`` (the first target's
   baseline, >= 0.8x) and as an ``async def``, as the service runs a tiny request
   (inline): the graph form and the expression form (``x**2 + y**3``, which the bare
   endpoint does not parse) must each reach 0.85x of it. Requests per second, one
   uvicorn worker each (uvloop, httptools), measured side by side in interleaved rounds.
6. The same request with ``check: "auto"`` against ``check: "none"``: the cost
   of verifying every answer, as mean request time.

Run alone: ``python -m bench.bench_request [--quick]``.
"""

from __future__ import annotations

import statistics
from typing import Any

from app.examples import SEED_3  # the example Swagger UI runs
from bench.common import (
    Load,
    Target,
    fmt_ratio,
    fmt_time,
    post_load,
    print_table,
    run_alone,
    serve,
)

RPS_LIMIT = 0.8  # service rps / bare rps, at least
# Each form of a small request, against the bare endpoint run as the service runs a tiny
# request (inline: ``async def``), at least.
FORM_LIMIT = 0.85
CEILING = "service, computation from memory"
SEED_TEXT = {"expression": "x**2 + y**3", "values": {"x": 2.0, "y": 3.0}}


def seed_body(check: str) -> dict[str, Any]:
    return {**SEED_3, "check": check}


def seed_text(check: str) -> dict[str, Any]:
    return {**SEED_TEXT, "check": check}


def verify_answers(service: str, bare: str, ceiling: str) -> dict[str, Any]:
    """Every server must give the seed's answer before it is timed; returns the
    service's ``check`` report for ``check: "auto"``."""
    import httpx

    runs = ((ceiling, "", seed_body("none")),
            (service, "", seed_text("none")), (bare, "-expression-async", seed_text("none")),
            (service, "", seed_body("none")), (bare, "-async", seed_body("none")),
            (bare, "", seed_body("none")), (service, "", seed_body("auto")))
    for url, suffix, body in runs:
        r = httpx.post(url + "/v1/gradient" + suffix, json=body, timeout=60)
        r.raise_for_status()
        grads = r.json()["gradients"]
        assert grads == {"x": 4.0, "y": 27.0}, (url, grads)
    return r.json()["check"]


def rounds_of(
    runs: dict[str, tuple[str, dict[str, Any]]], rounds: int, seconds: float, connections: int
) -> dict[str, list[Load]]:
    """Each (url, body) loaded for ``seconds`` per round, in a rotating order."""
    names = list(runs)
    out: dict[str, list[Load]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            url, body = runs[n]
            load = post_load(url, body, seconds, connections)
            if load.failures:
                raise RuntimeError(f"{n}: {load.failures} failed requests")
            out[n].append(load)
    return out


def run(quick: bool = False) -> list[Target]:
    rounds, seconds = (2, 2.0) if quick else (5, 5.0)
    with (serve("app.main:app") as service, serve("bench.bare_app:app") as bare,
          serve("bench.ceiling_app:app") as ceiling):
        report = verify_answers(service, bare, ceiling)
        runs = {
            "service check=none": (service + "/v1/gradient", seed_body("none")),
            "service check=auto": (service + "/v1/gradient", seed_body("auto")),
            "bare FastAPI + pydantic": (bare + "/v1/gradient", seed_body("none")),
            "bare, async def": (bare + "/v1/gradient-async", seed_body("none")),
            CEILING: (ceiling + "/v1/gradient", seed_body("none")),
            "service, expression, check=none": (service + "/v1/gradient", seed_text("none")),
            "bare, expression, async def": (bare + "/v1/gradient-expression-async",
                                            seed_text("none")),
        }
        for url, body in runs.values():  # warm both up
            post_load(url, body, 1.0)

        # 4: throughput with a few connections open
        tput = rounds_of(runs, rounds, seconds, connections=4)
        # 6: request time, one request at a time
        latency = rounds_of(
            {
                "service check=none": (service + "/v1/gradient", seed_body("none")),
                "service check=auto": (service + "/v1/gradient", seed_body("auto")),
            },
            rounds, seconds, connections=1,
        )

    tool = next(iter(tput.values()))[0].tool
    rps = {n: statistics.median(x.rps for x in loads) for n, loads in tput.items()}
    base = rps["bare FastAPI + pydantic"]
    print_table(
        ["server", "req/s (median)", "rounds", "vs bare"],
        [[n, f"{v:.0f}", " ".join(f"{x.rps:.0f}" for x in tput[n]), fmt_ratio(v / base)]
         for n, v in rps.items()],
        f"4. POST /v1/gradient, seed example 3 (z = x**2 + y**3), {tool}, 4 connections, "
        f"{rounds} interleaved rounds of {seconds:g} s",
    )
    lat = {n: statistics.median(x.latency_s for x in loads) for n, loads in latency.items()}
    none = lat["service check=none"]
    print_table(
        ["request", "mean time (median of rounds)", "req/s", "vs check=none"],
        [[n, fmt_time(v), f"{1 / v:.0f}", fmt_ratio(v / none)] for n, v in lat.items()],
        f"6. the same request, check auto vs none, {tool}, 1 connection, "
        f"{rounds} interleaved rounds of {seconds:g} s; auto's report: "
        f"method={report.get('method')} status={report.get('status')}",
    )
    ratio = rps["service check=none"] / base
    auto = lat["service check=auto"] / none
    strict = rps["bare, async def"]
    text, bare_text = rps["service, expression, check=none"], rps["bare, expression, async def"]
    return [
        Target("4 small request, graph form, vs bare as it runs (async)",
               rps["service check=none"] / strict, FORM_LIMIT, higher_is_better=True,
               detail=f"{rps['service check=none']:.0f} vs {strict:.0f} req/s ({tool})"),
        Target("4 small request, expression form, vs bare as it runs (async)",
               text / bare_text, FORM_LIMIT, higher_is_better=True,
               detail=f"{text:.0f} vs {bare_text:.0f} req/s ({tool}); the bare endpoint "
               "does not parse the text"),
        Target("4 small request, computation from memory, vs bare as it runs (async)",
               rps[CEILING] / strict, None, higher_is_better=True,
               detail=f"{rps[CEILING]:.0f} vs {strict:.0f} req/s: everything but the "
               "computation (bench.ceiling_app); reported, no bound"),
        Target("4 service req/s vs bare", ratio, RPS_LIMIT, higher_is_better=True,
               detail=f"{rps['service check=none']:.0f} vs {base:.0f} req/s ({tool})"),
        Target("4 check=auto req/s vs bare", rps["service check=auto"] / base, None,
               detail=f"{rps['service check=auto']:.0f} vs {base:.0f} req/s; reported, no bound"),
        Target("6 check=auto / check=none", auto, None,
               detail=f"{fmt_time(lat['service check=auto'])} vs {fmt_time(none)} per request; "
               f"auto ran {report.get('method')} ({report.get('status')}); reported, no bound"),
    ]


def main(argv: list[str] | None = None) -> None:
    run_alone(__doc__ or "", run, argv)


if __name__ == "__main__":
    main()
