"""Fixtures of the tests that render the service's pages in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import chromium


@pytest.fixture(scope="module", params=["", "/deriv"], ids=["root", "prefix"])
def docs_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of a uvicorn serving app.main:app, at the root and under a prefix (as a
    gateway mounts it), for the tests that render its pages."""
    from tests.gateway.stack import uvicorn_app

    prefix: str = request.param
    log = tmp_path_factory.mktemp("pages") / "server.log"
    with uvicorn_app({"DERIV_ROOT_PATH": prefix}, log) as (url, _proc):
        yield f"{url}{prefix}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b
