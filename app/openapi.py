"""OpenAPI: stable operation ids, problem responses, the committed file.

The examples each route shows are in ``app.examples``.

``python -m app.openapi`` writes ``openapi/openapi.json`` from the app; a test
fails when the committed file and ``app.openapi()`` differ.
"""

from __future__ import annotations

import json
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.problems import PROBLEM_MEDIA_TYPE, Problem

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"

TITLE = "Derivative service"


def package_version() -> str:
    """The installed package's version (pyproject.toml's, when run from a source tree)."""
    try:
        return metadata.version("derivative-service")
    except metadata.PackageNotFoundError:
        project = tomllib.loads((OPENAPI_FILE.parents[1] / "pyproject.toml").read_text())
        return str(project["project"]["version"])


VERSION = package_version()  # info.version: what is deployed, not a separate number
DESCRIPTION = """\
Exact derivatives of a computation graph over HTTP, from a tape-based reverse-mode
autodiff engine with TensorFlow's `GradientTape` semantics, cross-checked by SymPy or
finite differences.

**Conventions** (as a TensorFlow user expects):

* A `variable` is watched automatically, as `tf.Variable`; a `constant` or a
  variable with `"trainable": false` only when listed in `watch`;
  `watch_accessed_variables: false` watches only `watch`.
* The gradient of a source that is not watched, or has no path to the target, is
  `null` with a note (`not_watched`, `unconnected`); with
  `"unconnected_gradients": "zero"` an unconnected source gets zeros of its shape.
* A list `target` is summed, and a non-scalar target is summed (or weighted by
  `output_gradients`), as `tape.gradient` does. Each gradient has its source's shape.
* At kinks and ties the derivative follows TensorFlow (`abs'(0) = 0`, `relu'(0) = 0`,
  a `maximum`/`minimum` tie sends the gradient to the first input); `GET /v1/ops`
  states each op's convention and every response notes the kinks it met.

**Numbers.** Values are float64 JSON numbers or rectangular nested arrays; the
non-finite numbers travel as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` in
requests and responses. A non-finite result is an answer with a `non_finite` note,
never an error.

**Errors** are RFC 9457 problem details (`application/problem+json`) with `type`,
`title`, `status`, `detail`, and `node`, `field` or `errors` naming the culprit:
400 malformed JSON; 413 a body, nesting depth, graph or tensor sent over a configured
limit (a request must shrink to succeed); 415 a body that is not `application/json`;
422 anything invalid in the request or graph, including unknown fields (requests are
strict), a limit on what the graph would compute (type `.../compute-limit`: shapes it
produces, a derivative's entries or order), its estimated work, memory or answer size
(type `.../cost-limit`, with `limit`, `estimate` and the costliest `node`), and a
computation stopped by its time budget (type `.../time-budget`: the request is too
expensive as given, so it is not a retryable 503); 503 with `Retry-After` when the
replica is saturated (type `.../saturated`). Limits are set by `DERIV_*` environment
variables.

**Registered graphs.** `POST /v1/graphs` validates a graph once and answers its id,
`g_` and the SHA-256 of its canonical form (the same on every replica); compute
requests may then send `"graph_id"` instead of `graph` or `expression`. Each process
keeps a bounded cache: a `graph_id` it does not hold is a 404 problem
(type `.../graph-not-found`), and registering the graph again restores the same id.

**Higher derivatives.** `POST /v1/derivative` with `order: k` answers every derivative
of a scalar target up to order k by scalar sources, from k nested tapes.

**Many points.** `evaluate`, `gradient` and `hessian` take `points` (a list of `values`
maps, or a map of arrays with a leading batch axis): the graph is validated once and
run once over the batch, as `jax.vmap` would, and every value gains that axis.

**Sparse Hessians.** With `format: coo` (the default past `DERIV_DENSE_MAX_SOURCES`
source elements), `POST /v1/hessian` detects the Hessian's sparsity pattern from the
graph, evaluates it compressed (columns that share no row share a seed: graph
colouring), and answers its non-zeros as coordinates in `sparse`, with the
`structure` it found.
"""

TAGS = [
    {
        "name": "derivatives",
        "description": "Values, gradients, Jacobians, Hessians and higher derivatives.",
    },
    {"name": "graphs", "description": "Graphs registered once and named by `graph_id`."},
    {"name": "catalogue", "description": "The ops a graph may use."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def operation_id(route: APIRoute) -> str:
    """The route's name: `gradient`, `hessian`, `listOps`... stable across refactors."""
    return route.name


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


COMPUTE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed JSON."),
    404: _problem(
        "`graph_id` is not registered on this replica (never, deleted or evicted; type "
        "`.../graph-not-found`): register the graph again with `POST /v1/graphs`."
    ),
    413: _problem("Body, nesting depth, graph or tensor sent over a configured limit."),
    415: _problem("The body is not application/json."),
    422: _problem(
        "Invalid request or graph (the problem names the node or field); what it would "
        "compute over a limit (`.../compute-limit`) or its estimated cost over one "
        "(`.../cost-limit`, naming `limit`, `estimate` and `node`); or the time budget "
        "ran out (type `.../time-budget`)."
    ),
    503: _problem(
        "The replica is saturated (type `.../saturated`), or the shared graph store is "
        "unreachable and this replica has no copy of `graph_id` (type "
        "`.../store-unavailable`): retry after `Retry-After` seconds."
    ),
    500: _problem("A fault of the service itself, never of the input."),
}

GRAPH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: COMPUTE_PROBLEMS[status] for status in (400, 404, 413, 415, 422, 500, 503)
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The document, with problem responses under ``application/problem+json``."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return schema


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` build (once) the document described here."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    """Write the app's OpenAPI document to ``openapi/openapi.json`` (or the path given)."""
    from app.main import create_app
    from app.settings import Settings

    target = Path(argv[0]) if argv else OPENAPI_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(create_app(Settings()).openapi()), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
