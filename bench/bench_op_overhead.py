"""Per-op overhead of recording and the reverse sweep (targets 1-3).

1. A long scalar chain, ``x = sin(x) * 0.9 + 0.1`` repeated, forward plus
   gradient, against PyTorch eager autograd on 0-d float64 tensors. Ops are
   counted as recorded primitive ops: each step is three (sin, mul, add), so
   the 100,000-op chain is 33,334 steps (100,002 ops). A minimal pure-Python
   tape on floats is shown as a floor for what Python itself costs.
2. A tensor graph, ``sum(tanh(X @ W1) @ W2)``, against a hand-written numpy
   forward and backward (and PyTorch, for information).
3. Peak RSS of the 100,000-op chain's gradient, measured in a fresh process.

Run alone: ``python -m bench.bench_op_overhead [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench.common import (
    Target,
    fmt_ratio,
    fmt_time,
    interleaved,
    optional,
    peak_rss_mb,
    print_machine,
    print_table,
    print_targets,
    skipped,
)

OPS_PER_STEP = 3  # sin, mul, add
CHAIN_OPS = 100_000
CHAIN_LIMIT = 0.15  # engine time / torch time
TENSOR_LIMIT = 1.2  # engine time / numpy time
MEMORY_LIMIT_MB = 200.0


def steps_for(ops: int) -> int:
    return math.ceil(ops / OPS_PER_STEP)


# ------------------------------------------------------------------ scalar chain


def engine_chain(steps: int, x0: float = 0.5) -> tuple[float, float, float]:
    """(forward seconds, gradient seconds, dx_final/dx0) of the chain on the engine."""
    import engine as tf

    x = tf.Variable(x0)
    t0 = time.perf_counter()
    with tf.GradientTape() as tape:
        y = x
        for _ in range(steps):
            y = tf.sin(y) * 0.9 + 0.1
    t1 = time.perf_counter()
    g = tape.gradient(y, x)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, float(g)


def torch_chain(steps: int, x0: float = 0.5) -> tuple[float, float, float]:
    import torch

    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    t0 = time.perf_counter()
    y = x
    for _ in range(steps):
        y = torch.sin(y) * 0.9 + 0.1
    t1 = time.perf_counter()
    (g,) = torch.autograd.grad(y, x)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, float(g)


def minimal_chain(steps: int, x0: float = 0.5) -> tuple[float, float, float]:
    """A minimal Wengert list on Python floats: the local partials are stored at record
    time, so it cannot give higher orders. A floor for a pure-Python tape, not a target."""
    sin, cos = math.sin, math.cos
    t0 = time.perf_counter()
    vals = [x0]
    tape: list[tuple[int, int, float]] = []  # (output, input, d output / d input)
    append, push = vals.append, tape.append
    i = 0
    for _ in range(steps):
        v = vals[i]
        append(sin(v))
        push((i + 1, i, cos(v)))
        append(vals[i + 1] * 0.9)
        push((i + 2, i + 1, 0.9))
        append(vals[i + 2] + 0.1)
        push((i + 3, i + 2, 1.0))
        i += 3
    t1 = time.perf_counter()
    cts = [0.0] * len(vals)
    cts[-1] = 1.0
    for out, inp, d in reversed(tape):
        cts[inp] += cts[out] * d
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, cts[0]


def check_chain_agreement() -> list[str]:
    """On a short chain the gradients must agree (the long chain's underflows to ~1e-323)."""
    ref = minimal_chain(40)[2]
    rows = [("engine", engine_chain(40)[2])]
    if optional("torch"):
        rows.append(("torch", torch_chain(40)[2]))
    bad = [f"{n}: {g!r} != {ref!r}" for n, g in rows if abs(g - ref) > 1e-12 * abs(ref)]
    return bad


def bench_chain(ops: int, rounds: int) -> Target:
    steps = steps_for(ops)
    n_ops = steps * OPS_PER_STEP
    bad = check_chain_agreement()
    if bad:
        raise AssertionError("chain gradients disagree: " + "; ".join(bad))
    split: dict[str, list[tuple[float, float]]] = {}

    def timed(name: str, fn: Any) -> Any:
        def run() -> None:
            fwd, bwd, _ = fn(steps)
            split.setdefault(name, []).append((fwd, bwd))

        return run

    competitors = {"engine": timed("engine", engine_chain)}
    if optional("torch"):
        competitors["torch eager"] = timed("torch eager", torch_chain)
    competitors["minimal float tape"] = timed("minimal float tape", minimal_chain)
    res = interleaved(competitors, rounds=rounds, warmup=1)

    torch_t = res["torch eager"].median if "torch eager" in res else None
    rows = []
    for name, t in res.items():
        fb = split[name][1:]  # drop the warm-up round
        fwd = sorted(f for f, _ in fb)[len(fb) // 2]
        bwd = sorted(b for _, b in fb)[len(fb) // 2]
        rows.append([
            name,
            fmt_time(t.median),
            fmt_time(t.best),
            f"{fwd / n_ops * 1e6:.2f}",
            f"{bwd / n_ops * 1e6:.2f}",
            f"{t.median / n_ops * 1e6:.2f}",
            fmt_ratio(t.median / torch_t) if torch_t else "-",
        ])
    print_table(
        ["competitor", "median", "best", "fwd us/op", "grad us/op", "total us/op", "vs torch"],
        rows,
        f"1. scalar chain x = sin(x)*0.9 + 0.1: {steps} steps x {OPS_PER_STEP} ops "
        f"= {n_ops} ops, forward + gradient, {rounds} interleaved rounds (medians)",
    )
    if torch_t is None:
        return Target("1 scalar chain vs torch", None, CHAIN_LIMIT, detail=skipped("torch"))
    ratio = res["engine"].median / torch_t
    best_ratio = res["engine"].best / res["torch eager"].best
    return Target(
        "1 scalar chain vs torch", ratio, CHAIN_LIMIT,
        detail=f"{n_ops} ops; median ratio (best-of-{rounds}: {fmt_ratio(best_ratio)})",
    )


# ------------------------------------------------------------------ tensor graph


def tensor_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((256, 512))
    w1 = rng.standard_normal((512, 512)) / math.sqrt(512)
    w2 = rng.standard_normal((512, 10)) / math.sqrt(512)
    return x, w1, w2


def numpy_tensor(x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> tuple[Any, ...]:
    """sum(tanh(X @ W1) @ W2) and its gradient in W1, W2, by hand."""
    h = np.tanh(x @ w1)
    loss = (h @ w2).sum()
    g = np.ones((x.shape[0], w2.shape[1]))
    gw2 = h.T @ g
    gh = g @ w2.T
    gw1 = x.T @ (gh * (1.0 - h * h))
    return loss, gw1, gw2


def engine_tensor(x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> tuple[Any, ...]:
    import engine as tf

    xc, v1, v2 = tf.constant(x), tf.Variable(w1), tf.Variable(w2)
    with tf.GradientTape() as tape:
        loss = tf.sum(tf.tanh(xc @ v1) @ v2)
    g1, g2 = tape.gradient(loss, [v1, v2])
    return loss.value, g1.value, g2.value


def torch_tensor(x: Any, w1: Any, w2: Any) -> tuple[Any, ...]:
    import torch

    v1 = w1.detach().requires_grad_(True)
    v2 = w2.detach().requires_grad_(True)
    loss = torch.tanh(x @ v1).matmul(v2).sum()
    g1, g2 = torch.autograd.grad(loss, [v1, v2])
    return loss, g1, g2


def bench_tensor(rounds: int) -> Target:
    x, w1, w2 = tensor_inputs()
    ref = numpy_tensor(x, w1, w2)
    got = engine_tensor(x, w1, w2)
    for r, e in zip(ref, got, strict=True):
        np.testing.assert_allclose(e, r, rtol=1e-10, atol=1e-10)
    competitors = {
        "engine": lambda: engine_tensor(x, w1, w2),
        "numpy by hand": lambda: numpy_tensor(x, w1, w2),
    }
    torch = optional("torch")
    if torch:
        tx, t1, t2 = (torch.from_numpy(a) for a in (x, w1, w2))
        competitors["torch eager"] = lambda: torch_tensor(tx, t1, t2)
    res = interleaved(competitors, rounds=rounds, warmup=2)
    base = res["numpy by hand"].median
    print_table(
        ["competitor", "median", "best", "vs numpy"],
        [[n, fmt_time(t.median), fmt_time(t.best), fmt_ratio(t.median / base)]
         for n, t in res.items()],
        f"2. tensor graph sum(tanh(X@W1)@W2), X 256x512, W1 512x512, W2 512x10, "
        f"forward + gradient in W1 and W2, {rounds} interleaved rounds",
    )
    ratio = res["engine"].median / base
    best = res["engine"].best / res["numpy by hand"].best
    return Target("2 tensor graph vs numpy", ratio, TENSOR_LIMIT,
                  detail=f"median ratio (best-of-{rounds}: {fmt_ratio(best)})")


# ------------------------------------------------------------------ memory


def memory_child(ops: int) -> None:
    """In a fresh process: peak RSS after imports, then after the chain's gradient."""
    import engine  # noqa: F401 - the import's own footprint is the baseline

    base = peak_rss_mb()
    fwd, bwd, _ = engine_chain(steps_for(ops))
    print(json.dumps({"baseline_mb": base, "peak_mb": peak_rss_mb(), "seconds": fwd + bwd}))


def bench_memory(ops: int) -> Target:
    steps = steps_for(ops)
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_op_overhead", "--memory-child", str(ops)],
        capture_output=True, text=True, check=True,
    )
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print_table(
        ["process", "peak RSS", "of which imports", "chain"],
        [["engine", f"{m['peak_mb']:.1f} MB", f"{m['baseline_mb']:.1f} MB",
          f"{steps * OPS_PER_STEP} ops, {m['seconds']:.2f} s"]],
        "3. peak RSS (VmHWM) of a fresh process recording the chain and taking its gradient",
    )
    return Target(
        "3 chain gradient peak RSS", m["peak_mb"], MEMORY_LIMIT_MB, unit="MB",
        detail=f"{steps * OPS_PER_STEP} ops; imports alone {m['baseline_mb']:.0f} MB",
    )


def run(quick: bool = False) -> list[Target]:
    ops = 20_000 if quick else CHAIN_OPS
    return [
        bench_chain(ops, rounds=3 if quick else 5),
        bench_tensor(rounds=7 if quick else 21),
        bench_memory(CHAIN_OPS),
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a shorter chain and fewer rounds")
    p.add_argument("--memory-child", type=int, metavar="OPS", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return
    print_machine()
    print_targets(run(args.quick))


if __name__ == "__main__":
    main()
