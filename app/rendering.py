"""A computed result and its check report as the JSON data of a compute response.

Every number goes through the value codec. The fields every kind shares are written
here once; the fields of one kind come from its ``Quantities`` (``app.endpoints``).
Each body must validate against the kind's response model in ``app.wire.responses``:
the API tests check that on every response they get.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from app.wire.values import encode_for_response, jsonable
from app.wire.written import written
from engine.check.agreement import CheckReport
from engine.derive.query import Result

Quantities = Callable[[Result], dict[str, Any]]
"""The response fields one kind adds to the shared ones, from its result."""

_CHECK_FIELDS = tuple(f.name for f in fields(CheckReport))


def render(quantities: Quantities, result: Result, report: CheckReport) -> dict[str, Any]:
    """A result and its check report as JSON data: the outputs, the kind's own
    ``quantities``, then the notes, the check, the trace and the number of points."""
    wire = encode_for_response
    body: dict[str, Any] = {"outputs": {k: wire(v) for k, v in result.outputs.items()}}
    body.update(quantities(result))
    body["notes"] = [note(n) for n in result.notes]
    body["check"] = {name: jsonable(getattr(report, name)) for name in _CHECK_FIELDS}
    body["trace"] = None if result.trace is None else _trace(result.trace)
    if result.points is not None:
        body["points"] = result.points
    return body


def outputs_only(_result: Result) -> dict[str, Any]:
    """``evaluate``: nothing beyond the outputs."""
    return {}


def gradients(result: Result) -> dict[str, Any]:
    wire = encode_for_response
    return {"gradients": {k: wire(v) for k, v in (result.gradients or {}).items()}}


def jacobian(result: Result) -> dict[str, Any]:
    wire = encode_for_response
    return {"jacobian": {
        t: {s: wire(v) for s, v in row.items()} for t, row in (result.jacobian or {}).items()
    }}


def hessian(result: Result) -> dict[str, Any]:
    """The gradients, then the Hessian: coordinates and structure when sparse, else the
    blocks and the matrix."""
    wire = encode_for_response
    body = gradients(result)
    h = result.sparse
    if h is not None:
        body["sparse"] = {"shape": list(h.shape), "rows": h.rows, "cols": h.cols,
                          "values": wire(h.values)}
        body["structure"] = asdict(h.structure)
    else:
        rows = result.hessian or {}
        # a block that is the matrix is written once; only a lone source's can be
        is_matrix = _same_numbers(result.matrix if len(rows) == 1 else None)
        matrix = written(wire(result.matrix))
        body["hessian"] = {
            a: {b: matrix if is_matrix(v) else wire(v) for b, v in row.items()}
            for a, row in rows.items()
        }
        body["matrix"] = matrix
    return body


def _same_numbers(matrix: np.ndarray | None) -> Callable[[Any], bool]:
    """Whether a block is ``matrix`` itself: the same memory read the same way (one source
    of one axis, ``engine.derive.hessian.assemble``), so its JSON is the matrix's."""
    if not isinstance(matrix, np.ndarray):
        return lambda _v: False
    where = (matrix.__array_interface__["data"][0], matrix.shape, matrix.strides, matrix.dtype)

    def is_matrix(v: Any) -> bool:
        return (isinstance(v, np.ndarray)
                and (v.__array_interface__["data"][0], v.shape, v.strides, v.dtype) == where)

    return is_matrix


def derivatives(result: Result) -> dict[str, Any]:
    wire = encode_for_response
    found = result.derivatives or ()
    return {"sources": list(result.sources), "order": len(found),
            "derivatives": [wire(d) for d in found]}


def note(item: Any) -> dict[str, Any]:
    """An engine ``Note`` as the wire's ``Note``: empty members left out."""
    out: dict[str, Any] = {}
    if item.source is not None:
        out["source"] = item.source
    if item.node is not None:
        out["node"] = item.node
    out["reason"] = item.reason
    out["detail"] = item.detail
    return out


def _trace(trace: Any) -> dict[str, Any]:
    wire = encode_for_response
    return {
        "entries": [
            {
                "index": e.index,
                "op": e.op,
                "inputs": list(e.inputs),
                "output": e.output,
                "shape": list(e.shape),
                "value": wire(e.value),
                "grad": wire(e.grad),
                "attrs": jsonable(e.attrs),
            }
            for e in trace.entries
        ],
        "text": trace.text,
        "leaves": [
            {"name": c.name, "kind": c.kind, "shape": list(c.shape), "value": wire(c.value),
             "grad": wire(c.grad)}
            for c in trace.leaves
        ],
    }
