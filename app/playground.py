"""The playground page at ``/``: type an expression, pick a point, see every answer at once.

Plain HTML, CSS and JavaScript from ``app/static`` (no build step), KaTeX vendored
there too (its MIT licence beside it): nothing is fetched from another origin. The page
names every URL relative to a ``<base href>`` written from the request's root path, so
it works alike at ``/`` and under a gateway's prefix (``/derive/``).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/static"
PAGE_URL = "/"
SYMBOLIC_PATH = "/v1/symbolic"


def install(app: FastAPI) -> None:
    """Mount ``app/static`` and serve the page at ``/`` (left out of the OpenAPI document)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    template = (STATIC_DIR / "playground.html").read_text(encoding="utf-8")

    @app.get(PAGE_URL, include_in_schema=False)
    async def playground(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        # The LaTeX comes from POST /v1/symbolic where this service has it, else from the
        # check's `latex` field; the page asks only for what exists (no 404 in its console).
        symbolic = SYMBOLIC_PATH in app.openapi().get("paths", {})  # built once, cached
        page = template.replace("{{BASE}}", escape(root + "/", quote=True)).replace(
            "{{SYMBOLIC}}", "true" if symbolic else "false"
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})
