"""Run every benchmark and print one table of targets, PASS or MISS.

``python -m bench [--quick] [--only op request hessian sparse tall registered points cost
big checks redis]``; each part also runs alone (``python -m bench.bench_op_overhead`` and so
on). Ratios are measured within one run; the absolute figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench import (
    bench_big_graph,
    bench_cost,
    bench_hessian,
    bench_op_overhead,
    bench_points,
    bench_registered,
    bench_request,
    bench_shared,
    bench_sparse_hessian,
    bench_tall_jacobian,
)
from bench.common import Target, print_machine, print_targets

PARTS: dict[str, Callable[[bool], list[Target]]] = {
    "op": bench_op_overhead.run,
    "request": bench_request.run,
    "hessian": bench_hessian.run,
    "registered": bench_registered.run,
    "points": bench_points.run,
    "sparse": bench_sparse_hessian.run,
    "tall": bench_tall_jacobian.run,
    "cost": bench_cost.run,
    "big": bench_big_graph.run,
    "checks": bench_shared.run_checks,
    "redis": bench_shared.run_redis,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter runs, fewer rounds")
    p.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS))
    args = p.parse_args(argv)
    print_machine()
    targets: list[Target] = []
    t0 = time.perf_counter()
    for name in args.only:
        targets += PARTS[name](args.quick)
    print_targets(targets, f"all targets ({time.perf_counter() - t0:.0f} s)")
    return 0 if all(t.met is not False for t in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
