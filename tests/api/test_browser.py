"""Swagger UI in a real headless Chromium: the seed's third example runs from the docs page.

Starts uvicorn on a free loopback port and drives the system Chromium through
Playwright (no browser download). Also run under a path prefix, as a gateway
would mount the service, to prove the assets and "Try it out" follow it.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

SEED_3 = "Seed example 3: z = x**2 + y**3 at x = 2, y = 3"


def test_swagger_ui_runs_the_seeds_third_example(docs_server, browser):
    page = browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(f"{docs_server}/docs", wait_until="networkidle")
        block = page.locator("#operations-derivatives-gradient")
        block.locator(".opblock-summary").first.click()
        block.locator("button.try-out__btn").click()
        select = block.locator("select.examples-select-element").first
        select.select_option(label=SEED_3)
        body = block.locator("textarea.body-param__text")
        page.wait_for_function(
            "el => el.value.includes('\"y3\"')", arg=body.element_handle(), timeout=10_000
        )
        block.locator("button.execute").click()
        result = block.locator(".live-responses-table .response-col_description pre").first
        result.wait_for(timeout=30_000)
        text = result.inner_text()
    finally:
        page.close()
    data = json.loads(text)
    assert data["gradients"] == {"x": 4.0, "y": 27.0}
    assert data["outputs"] == {"z": 31.0}
    origin = docs_server.split("/", 3)[:3]
    assert all(u.startswith("/".join(origin)) for u in requests), requests  # nothing external
    assert f"{docs_server}/v1/gradient" in requests
