"""``deriv``: one expression's value and derivatives at a point, as a readable table.

    deriv "x**2 + y**3" --at x=2,y=3 [--hessian] [--symbolic] [--url URL] [--json]

Exit status: 0 answered, 1 the service refused (its problem on stderr), 2 bad usage,
3 the service could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx

from .client import DEFAULT_URL, Client
from .errors import ProblemError


def parse_point(text: str) -> dict[str, float]:
    """``x=2,y=3`` -> ``{"x": 2.0, "y": 3.0}``."""
    point: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"{part!r} is not name=value")
        try:
            point[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    return point


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deriv", description="Value and exact derivatives of an expression at a point."
    )
    p.add_argument("expression", help='infix text, e.g. "x**2 + y**3" or "sin(x) * y"')
    p.add_argument("--at", type=parse_point, default={}, metavar="x=2,y=3", help="the point")
    p.add_argument("--hessian", action="store_true", help="also the second derivatives")
    p.add_argument("--symbolic", action="store_true", help="also the derivatives as formulas")
    p.add_argument(
        "--url",
        default=os.environ.get("DERIV_URL", DEFAULT_URL),
        help=f"the service (default: $DERIV_URL or {DEFAULT_URL})",
    )
    p.add_argument("--json", action="store_true", help="print the service's JSON answers")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    return p


def number(value: Any) -> str:
    if value is None:
        return "none (no path)"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value).replace("\n", " ")


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render(expression: str, point: dict[str, float], answers: dict[str, Any]) -> str:
    at = ", ".join(f"{name} = {value:g}" for name, value in point.items())
    lines = [f"{expression}" + (f"  at  {at}" if at else ""), ""]
    main = answers["hessian"] if "hessian" in answers else answers["gradient"]
    one = len(main.outputs) == 1
    rows = [["value" if one else f"value ({n})", number(v)] for n, v in main.outputs.items()]
    rows += [[f"d/d{name}", number(v)] for name, v in main.gradients.items()]
    lines += table(rows)
    if "hessian" in answers and main.matrix is not None:
        names = list(main.gradients)
        matrix = [[float(v) for v in row] for row in main.matrix]
        if len(matrix) == len(names):  # scalar sources: one row and column each
            lines += ["", f"Hessian (rows and columns: {', '.join(names)})"]
            rows = [[n, *map(number, r)] for n, r in zip(names, matrix, strict=True)]
            lines += table([["", *names], *rows])
        else:
            lines += ["", "Hessian (flattened sources)", *table([[number(r)] for r in matrix])]
    if "symbolic" in answers:
        sym = answers["symbolic"]
        lines += ["", "Symbolic", *table([["f", str(sym.function)]] + _formulas(sym, point))]
    check = main.check
    error = "" if check.max_abs_error is None else f", max abs error {number(check.max_abs_error)}"
    lines += ["", f"check: {check.method} {check.status}{error}"]
    lines += [f"note: {note.reason}: {note.detail}" for note in main.notes]
    return "\n".join(lines) + "\n"


def _formulas(sym: Any, point: dict[str, float]) -> list[list[str]]:
    first = sym.derivatives[0] if sym.derivatives else None
    names = sorted(point)
    if isinstance(first, str):
        return [[f"d/d{names[0]}" if len(names) == 1 else "df", first]]
    if isinstance(first, list) and len(first) == len(names):
        return [[f"d/d{n}", str(f)] for n, f in zip(names, first, strict=True)]
    return [["derivatives", json.dumps(sym.derivatives)]]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    fields: dict[str, Any] = {"values": args.at or None}
    answers: dict[str, Any] = {}
    try:
        with Client(args.url, timeout=args.timeout) as client:
            if args.hessian:
                answers["hessian"] = client.hessian(args.expression, **fields)
            else:
                answers["gradient"] = client.gradient(args.expression, **fields)
            if args.symbolic:
                sources = sorted(args.at) or None
                answers["symbolic"] = client.symbolic(args.expression, sources=sources, **fields)
    except ProblemError as problem:
        sys.stderr.write(f"deriv: {problem}\n")
        return 1
    except httpx.TransportError as exc:
        sys.stderr.write(f"deriv: cannot reach {args.url}: {exc}\n")
        return 3
    if args.json:
        sys.stdout.write(json.dumps({k: v.raw for k, v in answers.items()}, indent=2) + "\n")
    else:
        sys.stdout.write(render(args.expression, args.at, answers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
