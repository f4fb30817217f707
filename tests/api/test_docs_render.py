"""ReDoc and Swagger UI in headless Chromium: they render the whole document, log no
console error or warning about it, and ask nothing of any other origin.

ReDoc logged "Incompatible types in allOf" for a top-level ``oneOf`` next to
``properties`` and fetched its logo from a CDN; both are what this guards against.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

# What each page shows once it has read and laid out the document.
RENDERED = {
    "/redoc": ".api-content [data-section-id='tag/derivatives/operation/gradient']",
    "/docs": "#operations-derivatives-gradient",
}


@pytest.mark.parametrize("page_path", sorted(RENDERED))
def test_docs_render_without_console_errors_or_outside_requests(docs_server, browser, page_path):
    page = browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    complaints: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on(
        "console",
        lambda m: complaints.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else 0,
    )
    page.on("pageerror", lambda e: complaints.append(f"pageerror: {e}"))
    try:
        page.goto(f"{docs_server}{page_path}", wait_until="networkidle")
        page.locator(RENDERED[page_path]).first.wait_for(timeout=30_000)
        page.wait_for_load_state("networkidle")
        text = page.inner_text("body")
    finally:
        page.close()
    assert complaints == [], complaints
    assert "/v1/gradient" in text and "/v1/hessian" in text
    origin = "/".join(docs_server.split("/", 3)[:3]) + "/"
    local = (origin, f"blob:{origin}", "data:")  # ReDoc's worker runs from a blob URL
    outside = [u for u in requests if not u.startswith(local)]
    assert outside == [], outside
    assert f"{docs_server}/openapi.json" in requests
