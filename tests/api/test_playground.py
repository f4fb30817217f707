"""The playground page in a real headless Chromium: type, see the typeset math and both
pictures, with no console error and no failed or outside request; at the root, under a
configured prefix, and under ``/derive/`` behind the nginx gateway. Screenshots are kept
in ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.gateway.stack import Stack, nginx_binary, uvicorn_app

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed"),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NGINX = nginx_binary()


@pytest.fixture(scope="module", params=["", "/deriv", "gateway"])
def page_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The page's URL: served at the root, under a configured prefix, or behind nginx."""
    if request.param == "gateway":
        if NGINX is None:
            pytest.skip("nginx is not installed (apt-get install nginx)")
        stack = Stack()
        try:
            yield f"{stack.start(NGINX).base}/derive/"
        finally:
            stack.close()
        return
    log = tmp_path_factory.mktemp("playground") / "server.log"
    with uvicorn_app({"DERIV_ROOT_PATH": request.param}, log) as (url, _proc):
        yield f"{url}{request.param}/"


class Watched:
    """A page with every console error, failed request and response status recorded."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.urls: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}")
        )

    def wait_ready(self, generation: int) -> None:
        self.page.wait_for_function(
            "g => Number(document.body.dataset.ready || 0) >= g", arg=generation, timeout=30_000
        )


def _name(url: str) -> str:
    return "gateway" if "/derive/" in url else ("prefix" if "/deriv/" in url else "root")


def test_typing_an_expression_shows_math_and_both_pictures(browser, page_url):
    w = Watched(browser)
    page = w.page
    try:
        page.goto(page_url, wait_until="networkidle")
        w.wait_ready(1)  # the default expression is computed on load
        page.fill("#expression", "x**3 * y + sin(x)")
        page.fill("#point", "x = 1.5, y = 2")
        page.select_option("#order", "2")
        page.focus("#expression")
        page.keyboard.press("Enter")  # keyboard only: Enter submits the form
        w.wait_ready(2)
        value = page.inner_text("#value")
        gradient = page.inner_text("#gradient")
        katex = page.locator("#symbolic .katex")
        math_count = katex.count()
        plot = page.eval_on_selector("#plot", "i => [i.naturalWidth, i.complete, i.hidden]")
        tape = page.eval_on_selector("#tape", "i => [i.naturalWidth, i.complete, i.hidden]")
        verdict = page.inner_text("#check")
        permalink = page.get_attribute("#permalink", "href")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"playground-{_name(page_url)}.png"), full_page=True)
    finally:
        page.close()
    # f = x^3 y + sin x at (1.5, 2): 6.75 + sin 1.5; df/dx = 3x^2 y + cos x; df/dy = x^3
    assert value.startswith("f = 7.7474")
    assert "13.5707" in gradient and "3.375" in gradient
    assert math_count >= 2  # KaTeX typeset each partial derivative
    assert plot[0] > 0 and plot[1] and not plot[2]
    assert tape[0] > 0 and tape[1] and not tape[2]
    assert verdict.startswith("agree")
    state = parse_qs(urlsplit(permalink or "").query)
    assert state["f"] == ["x**3 * y + sin(x)"] and state["order"] == ["2"]
    assert not w.errors, w.errors
    assert not w.failed, w.failed
    origin = "/".join(page_url.split("/", 3)[:3])
    assert all(u.startswith(origin) or u.startswith(("blob:", "data:")) for u in w.urls), w.urls


def test_a_permalink_restores_the_state_and_errors_show_inline(browser, page_url):
    w = Watched(browser)
    page = w.page
    try:
        page.goto(
            f"{page_url}?f=log(x)%20%2B%20q&at=x%3D2%2C%20q%3D1&var=x&from=0.5&to=4&order=1",
            wait_until="networkidle",
        )
        w.wait_ready(1)
        restored = [
            page.input_value("#expression"),
            page.input_value("#point"),
            page.input_value("#from"),
        ]
        variable = page.input_value("#variable")
        value = page.inner_text("#value")
        page.fill("#expression", "x +* 2")
        page.keyboard.press("Enter")
        w.wait_ready(2)
        error = page.inner_text("#compute-error")
        plot_error = page.inner_text("#plot-error")
        visible = page.is_visible("#compute-error")
    finally:
        page.close()
    assert restored == ["log(x) + q", "x=2, q=1", "0.5"]
    assert variable == "x"
    assert value.startswith("f = 1.6931")  # log 2 + 1
    assert visible and "expression" in error.lower()
    assert plot_error  # the problem's detail, shown where the plot was


def test_a_new_computation_clears_old_answers_and_ignores_unused_names(browser, page_url):
    w = Watched(browser)
    page = w.page
    try:
        page.goto(page_url, wait_until="networkidle")
        w.wait_ready(1)  # the default f has an answer on every panel
        before = page.inner_text("#value")
        page.fill("#expression", "x +* 2")
        page.keyboard.press("Enter")
        w.wait_ready(2)
        after_error = {
            sel: page.inner_text(sel) for sel in ("#value", "#gradient", "#hessian", "#check")
        }
        symbolic_after_error = page.locator("#symbolic .katex").count()
        pictures_hidden = [page.is_hidden("#plot"), page.is_hidden("#tape")]
        status_after_error = page.inner_text("#status")
        error = page.inner_text("#compute-error")
        # the default point names y; x^2 sin x does not use it
        page.fill("#expression", "x^2 sin x")
        page.keyboard.press("Enter")
        w.wait_ready(3)
        value = page.inner_text("#value")
        hint = page.inner_text("#variables-hint")
        status = page.inner_text("#status")
        # a tensor variable: the whole Hessian, one labelled row per entry
        page.fill("#expression", "sum(x^2)")
        page.fill("#point", "x = [1, 2, 3]")
        page.keyboard.press("Enter")
        w.wait_ready(4)
        hessian = page.inner_text("#hessian")
        symbolic_count = page.locator("#symbolic .katex").count()
    finally:
        page.close()
    assert before.startswith("f = ")
    assert after_error == {"#value": "", "#gradient": "", "#hessian": "", "#check": ""}
    assert symbolic_after_error == 0 and pictures_hidden == [True, True]
    assert status_after_error != "done" and "expression" in error.lower()
    assert value.startswith("f = 0.84147")  # 1^2 sin 1
    assert "y" in hint and status == "done"
    assert all(label in hessian for label in ("x[0]", "x[1]", "x[2]"))
    assert len([line for line in hessian.splitlines() if line.startswith("x[")]) == 3
    assert symbolic_count == 4  # f = x0^2 + x1^2 + x2^2 and its three partials


def test_a_missing_value_reads_as_one_sentence(browser, page_url):
    w = Watched(browser)
    page = w.page
    try:
        page.goto(page_url, wait_until="networkidle")
        w.wait_ready(1)
        page.fill("#expression", "x * y")
        page.fill("#point", "x = 1")
        page.keyboard.press("Enter")
        w.wait_ready(2)
        error = page.inner_text("#compute-error")
        status = page.inner_text("#status")
    finally:
        page.close()
    assert error == "y has no value: add y to values"
    assert status != "done"
