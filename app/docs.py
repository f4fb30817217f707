"""Swagger UI and ReDoc served with their scripts and styles from the service, never a CDN.

The assets come from the ``fastapi-offline`` package's static folder; every URL
in the pages is built from the request's root path, so the docs work as well
behind a gateway that mounts the service under a prefix. ReDoc's script is served
with its one outside fetch (the Redocly logo from a CDN) replaced by an inline image.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs-assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
SWAGGER_UI_PARAMETERS = {"displayOperationId": True, "defaultModelsExpandDepth": 0}
REDOC_SCRIPT = "redoc.standalone.js"
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# A plain mark in place of the CDN's logo: a data URL costs the browser no request.
REDOC_LOCAL_LOGO = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Ccircle cx='8' cy='8' r='6' fill='%2332329f'/%3E%3C/svg%3E"
)


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


@cache
def redoc_script() -> bytes:
    """ReDoc's bundle without its CDN fetch (read once per process: about 1 MB); fails
    loudly if a new bundle no longer has the URL to replace."""
    script = (ASSETS_DIR / REDOC_SCRIPT).read_text(encoding="utf-8")
    if REDOC_CDN_LOGO not in script:
        raise RuntimeError(f"{REDOC_SCRIPT} no longer references {REDOC_CDN_LOGO}")
    return script.replace(REDOC_CDN_LOGO, REDOC_LOCAL_LOGO).encode("utf-8")


def install(app: FastAPI) -> None:
    """Mount the assets and add ``/docs``, ``/redoc`` (FastAPI's own docs are turned off)."""
    redoc_js = redoc_script()

    @app.get(f"{ASSETS_URL}/{REDOC_SCRIPT}", include_in_schema=False)
    async def redoc_bundle() -> Response:  # added before the mount, so it wins the path
        return Response(
            redoc_js,
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_SCRIPT}",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
