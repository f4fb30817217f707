"""``POST /v1/plot``: f and its derivatives over a range, drawn by matplotlib as SVG.

The numbers come from the engine in one batched run (``engine.derive.series``); this
module only lays them out: one curve per order, kinks marked where an op of the graph
meets one, stretches where some curve is not finite shaded, axes and legend labelled.

matplotlib's object API (a ``Figure`` and the SVG canvas, never ``pyplot``) keeps no
global state, but its font and text caches are shared, so renders take turns on one
lock. A render of the largest plot allowed (2001 samples, five curves) takes about
0.5 s; callers run it in a worker thread, never on the event loop. matplotlib is
imported by the first render, so replicas start as fast as before.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from app.turns import Turns
from app.wire.pictures import RANGE_MAX, PlotRequest
from engine import cost
from engine.derive.query import Query
from engine.derive.series import Series, series
from engine.graphs.graph import Graph, Limits

RENDER_WAIT_SECONDS = 5.0  # a render waits this long for the one before it, then 503
RENDER_BYTES = 48 * 2**20  # matplotlib's working memory for one render, for admission
DRAWN_MAX = RANGE_MAX  # |y| past this is shaded with the non-finite: the span would overflow
MAX_SVG_BYTES = 2 * 2**20  # no plot allowed comes near: a bug guard, not a limit users meet
_LABELS = ("f", "f′", "f″", "f‴", "f⁽⁴⁾")
_COLOURS = ("#1f5fa8", "#c2410c", "#15803d", "#7e22ce", "#a16207")
_turns = Turns(1, RENDER_WAIT_SECONDS, "another plot kept the renderer busy",
                "plot_renders")


def compute(
    request: PlotRequest,
    graph: Graph,
    limits: Limits,
    cost_limits: cost.CostLimits,
    max_order: int,
    admit: Callable[[cost.Estimate], None],
) -> Series:
    """The curves: the engine's derivative kind over the sampled points."""
    a, b = request.range
    query = Query(
        graph=graph,
        values=request.values,
        target=request.target,
        limits=limits,
        cost_limits=cost_limits,
        admit=admit,
        max_order=max_order,
    )
    return series(query, request.variable, np.linspace(a, b, request.samples), request.order)


def render(s: Series, title: str) -> bytes:
    """The plot of ``s`` as SVG bytes (text kept as text, so it stays searchable)."""
    with _turns.turn("waiting to plot"):
        import matplotlib  # here, not at start-up: it adds a second to every replica's start

        with matplotlib.rc_context(
            {
                "svg.fonttype": "none",
                "svg.hashsalt": "plot",
                "path.simplify": False,
                "font.size": 10,
            }
        ):
            return _draw(s, title)


def _draw(s: Series, title: str) -> bytes:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 4.2), dpi=100, layout="constrained")
    FigureCanvasSVG(fig)
    ax = fig.add_subplot()
    xs = s.xs
    finite = np.ones(xs.shape, dtype=bool)
    for order, ys in enumerate(s.curves):
        ys = np.asarray(ys, dtype=float).reshape(xs.shape)
        ok = np.isfinite(ys) & (np.abs(ys) <= DRAWN_MAX)
        finite &= ok
        ax.plot(
            xs,
            np.where(ok, ys, np.nan),
            color=_COLOURS[order],
            linewidth=1.6,
            label=f"{_LABELS[order]}({s.variable})",
            gid=f"curve-{order}",
        )
    _shade_non_finite(ax, xs, finite)
    _mark_kinks(ax, s)
    _frame(ax, s, finite)
    ax.set_xlabel(s.variable, parse_math=False)
    ax.set_ylabel(f"{s.target} and its derivatives", parse_math=False)
    ax.set_title(title, parse_math=False, fontsize=10)
    ax.axhline(0, color="#888", linewidth=0.6, zorder=0)
    ax.grid(True, color="#ddd", linewidth=0.5)
    ax.legend(loc="best", fontsize=9, framealpha=0.85)
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    svg = out.getvalue()
    if len(svg) > MAX_SVG_BYTES:  # pragma: no cover - samples and curves keep it far below
        raise RuntimeError(f"the plot's SVG has {len(svg)} bytes")
    return svg


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2] - 1, strict=True))


def _shade_non_finite(ax: Any, xs: np.ndarray, finite: np.ndarray) -> None:
    step = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
    for n, (i, j) in enumerate(_runs(~finite)):
        ax.axvspan(
            xs[i] - step / 2,
            xs[j] + step / 2,
            color="#f43f5e",
            alpha=0.12,
            lw=0,
            label=f"not finite (or |y| > {DRAWN_MAX:g})" if n == 0 else None,
            gid=f"non-finite-{n}",
        )


def _mark_kinks(ax: Any, s: Series) -> None:
    if not s.kinks.any():
        return
    at = s.xs[s.kinks]
    nodes = ", ".join(s.kink_nodes[:3]) + (" ..." if len(s.kink_nodes) > 3 else "")
    for x in at[:20]:  # a line per kink while they are few; the markers say the rest
        ax.axvline(x, color="#444", linestyle=":", linewidth=1)
    ax.plot(
        at,
        np.zeros_like(at),
        linestyle="none",
        marker="v",
        color="#111",
        markersize=6,
        label=f"kink ({nodes})",
        gid="kinks",
    )


def _frame(ax: Any, s: Series, finite: np.ndarray) -> None:
    """Vertical limits that show the curves' shape: a pole (1/x near 0) would otherwise
    squash every curve into a flat line, so far outliers are left off the frame."""
    ax.set_xlim(s.xs[0], s.xs[-1])
    values = np.concatenate([np.asarray(c, dtype=float).reshape(-1)[finite] for c in s.curves])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    lo, hi = float(values.min()), float(values.max())
    p_lo, p_hi = (float(v) for v in np.percentile(values, [2, 98]))
    if hi - lo > 20 * max(p_hi - p_lo, 1e-12):
        lo, hi = p_lo, p_hi
    pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.5
    ax.set_ylim(lo - pad, hi + pad)
