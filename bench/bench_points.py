"""One graph at many points in one vectorised pass (engine.derive.points), against jax.vmap.

(a) The seed example ``z = x**2 + y**3`` at 10,000 points: the engine's compute time for
    ``gradient`` over points (target < 50 ms), beside a Python loop of one plain gradient
    per point (timed on a few hundred points and scaled up).
(b) A 50-op scalar chain of three variables (sin, mul, add, tanh, exp) at 10,000 points:
    ``gradient`` over points against ``jax.jit(jax.vmap(jax.grad(f)))`` (its compile time
    reported beside it, not in the ratio; target <= 0.5x), the graph as the service keeps
    one sent again (its plan over the points remembered; a graph never seen beside it),
    in a process whose allocator is set up as the service's. For information
    ``torch.func.vmap(torch.func.grad(f))``; forward alone (``evaluate`` over points against
    ``jax.jit(jax.vmap(f))``) for information too. The floor, for information: the same
    chain's forward and reverse sweep written out by hand in numpy, no engine (single
    threaded numpy; what any numpy-based engine can at best reach). All must agree before
    they are timed.

Run alone: ``python -m bench.bench_points [--quick] [--points 10000]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from app.examples import SEED_3
from bench.common import (
    Target,
    Timings,
    fmt_ratio,
    fmt_time,
    interleaved,
    optional,
    print_table,
    run_alone,
    skipped,
)

POINTS = 10_000
SEED_LIMIT_MS = 50.0
CHAIN_LIMIT = 0.5
CHAIN_OPS = 50
CHAIN = ("sin", "mul", "add", "tanh", "exp")  # h = op(h) or op(h, y) / op(h, w), in turn
LOOP_POINTS = 300  # points the per-point Python loop is timed on (then scaled up)

FLOOR_GRAD, FLOOR_FWD = "numpy floor, forward + reverse", "numpy floor, forward"
FORWARD_ONLY = ("engine evaluate(points)", "jax.jit(vmap(f))", FLOOR_FWD)
FIRST_SIGHT = "engine gradient(points), graph never seen"

SEED_GRAPH = SEED_3["graph"]["nodes"]  # the example Swagger UI runs


def chain_graph(n: int = CHAIN_OPS) -> list[dict[str, Any]]:
    """``n`` ops on three variables: h = sin(h), h * y, h + w, tanh(h), exp(h), repeated."""
    nodes: list[dict[str, Any]] = [{"id": v, "op": "variable", "value": 0.5} for v in "xyw"]
    h = "x"
    for i in range(n):
        op = CHAIN[i % len(CHAIN)]
        inputs = [h, "y"] if op == "mul" else [h, "w"] if op == "add" else [h]
        nodes.append({"id": f"h{i}", "op": op, "inputs": inputs})
        h = f"h{i}"
    return nodes


def chain_points(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {v: rng.uniform(-1.0, 1.0, size) for v in "xyw"}


# ------------------------------------------------------------------ competitors


def engine_calls(nodes: list[dict[str, Any]], points: dict[str, np.ndarray],
                 seen: bool = True) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The engine's gradient at every point (outputs and gradients), and its forward alone:
    on the graph as the service keeps one sent again (``seen``: its plan over the points
    remembered, as jax.jit keeps its compiled function), or as one never seen."""
    from engine.derive.derivatives import evaluate, gradient
    from engine.derive.query import Query
    from engine.graphs.build import build_graph
    from engine.graphs.reusable import ReusableGraph

    graph = build_graph(nodes)
    q = Query(graph=ReusableGraph.of(graph) if seen else graph)
    return (lambda: gradient(q, points).gradients), (lambda: evaluate(q, points))


def engine_loop(nodes: list[dict[str, Any]], points: dict[str, np.ndarray], count: int
                ) -> Callable[[], Any]:
    """One plain ``derivatives.gradient`` per point: what points save."""
    from engine.derive import derivatives
    from engine.derive.query import Query
    from engine.graphs.build import build_graph

    graph = build_graph(nodes)
    queries = [Query(graph, values={k: float(v[i]) for k, v in points.items()})
               for i in range(count)]
    return lambda: [derivatives.gradient(q).gradients for q in queries]


def chain_function(unary: dict[str, Callable[[Any], Any]]) -> Callable[..., Any]:
    """The chain for one point, written once for every framework's own ``sin``/``tanh``/``exp``."""

    def f(x: Any, y: Any, w: Any) -> Any:
        h = x
        for i in range(CHAIN_OPS):
            op = CHAIN[i % len(CHAIN)]
            h = h * y if op == "mul" else h + w if op == "add" else unary[op](h)
        return h

    return f


def chain_jax(points: dict[str, np.ndarray]) -> tuple[Callable[[], Any], Callable[[], Any],
                                                       float] | None:
    """Jitted ``vmap(grad(f))`` and ``vmap(f)``, and the gradient's compile (first call) time."""
    jax = optional("jax")
    if jax is None:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    f = chain_function({"sin": jnp.sin, "tanh": jnp.tanh, "exp": jnp.exp})
    args = [jnp.asarray(points[v]) for v in "xyw"]
    grad = jax.jit(jax.vmap(jax.grad(f, argnums=(0, 1, 2))))
    fwd = jax.jit(jax.vmap(f))
    t0 = time.perf_counter()
    jax.block_until_ready(grad(*args))
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(fwd(*args))
    return (lambda: jax.block_until_ready(grad(*args)),
            lambda: jax.block_until_ready(fwd(*args)), compile_s)


def chain_torch(points: dict[str, np.ndarray]) -> Callable[[], Any] | None:
    torch = optional("torch")
    if torch is None:
        return None
    from torch.func import grad, vmap

    f = chain_function({"sin": torch.sin, "tanh": torch.tanh, "exp": torch.exp})
    args = [torch.from_numpy(points[v]) for v in "xyw"]
    g = vmap(grad(f, argnums=(0, 1, 2)))
    return lambda: g(*args)


def chain_numpy(points: dict[str, np.ndarray]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The floor: the chain's forward and reverse sweep written out in numpy by hand, no
    engine (each op's output in a buffer of its own, cotangents updated in place, tanh'
    and exp' from the forward's outputs); and its forward alone."""
    x, y, w = (points[v] for v in "xyw")

    def forward() -> list[np.ndarray]:
        hs = [x]
        for i in range(CHAIN_OPS):
            h, op = hs[-1], CHAIN[i % len(CHAIN)]
            hs.append(np.multiply(h, y) if op == "mul" else np.add(h, w) if op == "add"
                      else getattr(np, op)(h))
        return hs

    def gradient() -> tuple[np.ndarray, ...]:
        hs = forward()
        g, gy, gw, tmp = np.ones_like(x), np.zeros_like(x), np.zeros_like(x), np.empty_like(x)
        for i in reversed(range(CHAIN_OPS)):
            op, h_in, h_out = CHAIN[i % len(CHAIN)], hs[i], hs[i + 1]
            if op == "sin":
                g *= np.cos(h_in, out=tmp)
            elif op == "mul":
                gy += np.multiply(g, h_in, out=tmp)
                g *= y
            elif op == "add":
                gw += g
            elif op == "tanh":
                np.multiply(h_out, h_out, out=tmp)
                g *= np.subtract(1.0, tmp, out=tmp)
            else:
                g *= h_out
        return g, gy, gw

    return gradient, lambda: forward()[-1]


def check_agreement(want: dict[str, np.ndarray], got: dict[str, Any]) -> None:
    for name, grads in got.items():
        if isinstance(grads, dict):  # the engine's, by leaf id
            grads = [grads[v] for v in "xyw"]
        for v, g in zip("xyw", grads, strict=True):
            np.testing.assert_allclose(np.asarray(g), want[v], rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name}, d/d{v}")


# ------------------------------------------------------------------ the run


def bench_seed(size: int, rounds: int) -> tuple[list[list[str]], Target]:
    """(a): the seed example at ``size`` points, against the formula, then timed."""
    points = {"x": np.linspace(-2.0, 2.0, size), "y": np.linspace(3.0, -1.0, size)}
    grad, _ = engine_calls(SEED_GRAPH, points)
    got = grad()
    np.testing.assert_allclose(got["x"], 2 * points["x"], rtol=1e-14)
    np.testing.assert_allclose(got["y"], 3 * points["y"] ** 2, rtol=1e-14)
    loop_n = min(size, LOOP_POINTS)
    res = interleaved({"engine gradient(points)": grad,
                       f"plain gradient per point (x{loop_n})": engine_loop(SEED_GRAPH, points,
                                                                           loop_n)},
                      rounds=rounds, warmup=1)
    eng = res["engine gradient(points)"]
    loop = next(t for n, t in res.items() if n.startswith("plain")).median * size / loop_n
    rows = [
        [f"(a) seed ex. 3, {size} pts", "engine gradient(points)", fmt_time(eng.median),
         fmt_time(eng.best), "-", "-"],
        ["", f"  loop of plain gradient ({loop_n} pts, scaled)", fmt_time(loop), "",
         fmt_ratio(loop / eng.median) + " slower", ""],
    ]
    return rows, Target(f"points: seed ex. 3 at {size} points", eng.median * 1e3,
                        SEED_LIMIT_MS, unit="ms",
                        detail=f"engine compute; a loop per point would take {fmt_time(loop)}")


def bench_chain(size: int, rounds: int) -> tuple[list[list[str]], list[Target]]:
    """(b): the 50-op chain at ``size`` points, engine against jax (and torch)."""
    points = chain_points(size)
    grad, fwd = engine_calls(chain_graph(), points)
    want = grad()
    floor_grad, floor_fwd = chain_numpy(points)
    calls: dict[str, Callable[[], Any]] = {"engine gradient(points)": grad,
                                           FIRST_SIGHT: engine_calls(chain_graph(), points,
                                                                     seen=False)[0],
                                           "engine evaluate(points)": fwd,
                                           FLOOR_GRAD: floor_grad, FLOOR_FWD: floor_fwd}
    j = chain_jax(points)
    compile_s = None
    if j:
        calls["jax.jit(vmap(grad(f)))"], calls["jax.jit(vmap(f))"], compile_s = j
    t = chain_torch(points)
    if t:
        calls["torch.func.vmap(grad(f))"] = t
    check_agreement(want, {n: c() for n, c in calls.items() if "grad" in n and "engine" not in n
                           or n in (FLOOR_GRAD, FIRST_SIGHT)})
    res: dict[str, Timings] = interleaved(calls, rounds=rounds, warmup=2)
    ref_g = res["jax.jit(vmap(grad(f)))"].median if j else None
    ref_f = res["jax.jit(vmap(f))"].median if j else None
    rows = []
    for name, tm in res.items():
        ref = ref_f if name in FORWARD_ONLY else ref_g
        rows.append([f"(b) {CHAIN_OPS}-op chain, {size} pts", name, fmt_time(tm.median),
                     fmt_time(tm.best), fmt_ratio(tm.median / ref) if ref else "-",
                     "forward only" if ref is ref_f else "forward + gradient"])
    if compile_s is not None:
        rows.append(["", "  jax compile (first call)", fmt_time(compile_s), "", "", ""])
    eng = res["engine gradient(points)"].median
    if ref_g is None:
        return rows, [Target(f"points: {CHAIN_OPS}-op chain vs jax vmap", None, CHAIN_LIMIT,
                             detail=skipped("jax"))]
    targets = [Target(
        f"points: {CHAIN_OPS}-op chain at {size} points vs jax vmap", eng / ref_g, CHAIN_LIMIT,
        detail=f"engine {fmt_time(eng)}, jax jit {fmt_time(ref_g)} (+ {fmt_time(compile_s or 0)}"
        f" compile); best-of-{rounds} "
        f"{fmt_ratio(res['engine gradient(points)'].best / res['jax.jit(vmap(grad(f)))'].best)}",
    )]
    floor = res[FLOOR_GRAD].median
    targets.append(Target(f"points: numpy floor vs jax vmap ({CHAIN_OPS}-op chain)",
                          floor / ref_g, None,
                          detail=f"hand-written numpy {fmt_time(floor)}; the engine is "
                          f"{fmt_ratio(eng / floor)} the floor"))
    if t:
        ref_t = res["torch.func.vmap(grad(f))"].median
        targets.append(Target(f"points: {CHAIN_OPS}-op chain vs torch.func.vmap", eng / ref_t,
                              None, detail=f"torch {fmt_time(ref_t)}"))
    return rows, targets


def run(quick: bool = False, size: int = POINTS) -> list[Target]:
    rounds = 5 if quick else 15
    rows_a, target_a = bench_seed(size, rounds)
    rows_b, targets_b = bench_chain(size, rounds)
    print_table(
        ["graph", "competitor", "median", "best", "vs jax", "what"],
        rows_a + rows_b,
        f"Points: one graph at many points in one vectorised pass, {rounds} interleaved rounds "
        "(jax compile time apart)",
    )
    return [target_a, *targets_b]


def main(argv: list[str] | None = None) -> int:
    return run_alone(__doc__ or "", run, argv, size=("--points", POINTS))


if __name__ == "__main__":
    raise SystemExit(main())
