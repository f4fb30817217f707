"""A tall Jacobian (many target elements, few sources): one seed per source element.

``y = tanh(grid * x) * sum(exp(x))`` with ``x`` of 10 elements and ``grid`` of 2000
rows: a (2000, 10) target. ``tape.jacobian`` takes the transposed route here
(``engine.tape.transposed``: 10 seeds); the direct sweep (``backprop.jacobian_rows``:
20,000 seeds) and ``torch.func.jacfwd`` are timed beside it, all checked equal first.

Run alone: ``python -m bench.bench_tall_jacobian [--quick]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.common import (
    Target,
    fmt_ratio,
    fmt_time,
    interleaved,
    optional,
    print_table,
    run_alone,
)

ROWS, SOURCES = 2000, 10


def inputs() -> tuple[np.ndarray, np.ndarray]:
    return np.linspace(-1, 1, SOURCES), np.linspace(-2, 2, ROWS).reshape(ROWS, 1)


def engine_calls() -> dict[str, Callable[[], Any]]:
    import engine as tf
    from engine.ops.registry import F
    from engine.tape.gradient_tape import jacobian_rows

    xv, gv = inputs()
    x, grid = tf.Variable(xv), tf.constant(gv)
    with tf.GradientTape(persistent=True) as tape:
        y = F.tanh(grid * x) * F.sum(F.exp(x))
    return {
        "engine tape.jacobian (10 seeds)": lambda: tape.jacobian(y, x).numpy(),
        "engine direct sweep (20,000 seeds)": lambda: jacobian_rows(tape, y, [x])[0].numpy(),
    }


def torch_call() -> Callable[[], Any] | None:
    torch = optional("torch")
    if torch is None:
        return None
    from torch.func import jacfwd

    xv, gv = inputs()
    x, grid = torch.from_numpy(xv), torch.from_numpy(gv)
    jac = jacfwd(lambda v: torch.tanh(grid * v) * torch.exp(v).sum())
    return lambda: jac(x).numpy()


def run(quick: bool = False) -> list[Target]:
    calls = engine_calls()
    t = torch_call()
    if t:
        calls["torch.func.jacfwd"] = t
    want = next(iter(calls.values()))()
    for name, call in calls.items():
        np.testing.assert_allclose(call(), want, rtol=1e-12, atol=1e-12, err_msg=name)
    res = interleaved(calls, rounds=3 if quick else 7, warmup=1)
    ours = res["engine tape.jacobian (10 seeds)"].median
    rows = [[name, fmt_time(tm.median), fmt_time(tm.best), fmt_ratio(tm.median / ours)]
            for name, tm in res.items()]
    print_table(["competitor", "median", "best", "vs tape.jacobian"], rows,
                f"5. tall Jacobian, ({ROWS}, {SOURCES}) target by {SOURCES} sources, "
                "interleaved rounds")
    direct = res["engine direct sweep (20,000 seeds)"].median
    return [Target("5 tall jacobian: direct sweep time / transposed", direct / ours, None,
                   higher_is_better=True,
                   detail=f"tape.jacobian {fmt_time(ours)}, direct {fmt_time(direct)}")]


def main(argv: list[str] | None = None) -> None:
    run_alone(__doc__ or "", run, argv)


if __name__ == "__main__":
    main()
