"""The rendered site in a real browser: Debian's chromium driven by Playwright's Python package.

Never `playwright install`: the browser is the system's (`apt-get install chromium`, done by
.ci/run). Without chromium or the playwright package these tests skip with the reason; with the
`CI` environment variable set they fail instead (a missing tool there is a broken set-up).
Screenshots of the index and an endpoint page are saved under each test's tmp dir.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_site import BASE_URL, SEED_SLUG, SEED_TITLE, many, sample
from tools import in_ci, require_tool

from monitor.site import render_site
from monitor.web import WebServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BULK = 450
"""Extra endpoints, so the static index has three pages and search must look beyond page 1."""


def _sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "the playwright Python package is not installed (pip install playwright)"
        if in_ci():
            pytest.fail(f"{message}, and CI is set: browser tests must run in CI")
        pytest.skip(message)
    return sync_playwright


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    snapshot, details = sample()
    bulk_snapshot, bulk = many(BULK)
    snapshot = type(snapshot)(
        taken_at=snapshot.taken_at, endpoints=snapshot.endpoints + bulk_snapshot.endpoints
    )
    site = tmp_path_factory.mktemp("browser") / "site"
    render_site(snapshot, [*details, *bulk], site, base_url=BASE_URL)
    return site


@pytest.fixture(scope="module")
def served(rendered: Path) -> Iterator[str]:
    site = rendered
    server = WebServer(
        "127.0.0.1:0",
        metrics=lambda: (b"", "text/plain"),
        health=lambda: (200, {"status": "ok"}),
        site_dir=site,
    )
    server.start()
    try:
        yield f"http://{server.address}/"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_tool("chromium")
    sync_playwright = _sync_playwright()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Console:
    """Collects console errors and uncaught exceptions of one page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            self.errors.append(f"{message.type}: {message.text}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(60_000)  # every wait and navigation: generous, CI is busy
    try:
        yield opened
    finally:
        context.close()


def _open_index(page: Page, url: str) -> Console:
    console = Console(page)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return console


def _rows(page: Page) -> list[str]:
    texts: list[str] = page.locator("#endpoints tbody tr").all_inner_texts()
    return texts


def _statuses(page: Page) -> list[str]:
    texts: list[str] = page.locator("#endpoints tbody tr td:first-child").all_inner_texts()
    return [text.strip() for text in texts]


def test_index_loads_without_console_errors(page: Page, served: str, tmp_path: Path) -> None:
    console = _open_index(page, served + "index.html")
    assert page.locator("#filters").is_visible()
    assert len(_rows(page)) == 200  # the static first page until a filter is set
    assert page.locator("nav.pager").is_visible()
    page.screenshot(path=str(tmp_path / "index.png"), full_page=False)
    assert (tmp_path / "index.png").stat().st_size > 0
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=str(tmp_path / "index-phone.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1
    assert console.errors == []


def test_typing_in_search_filters_the_rows(page: Page, served: str) -> None:
    console = _open_index(page, served + "index.html")
    page.locator("#f-q").press_sequentially("seedream", delay=10)
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 1")
    assert SEED_TITLE in _rows(page)[0]
    assert "q=seedream" in page.url
    assert page.locator("#result-count").inner_text().startswith("1 of 456 endpoints match")
    assert not page.locator("nav.pager").is_visible()
    page.locator("#f-q").fill("bulk 00449")  # on the third static page: search sees them all
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 1")
    assert "Bulk 00449" in _rows(page)[0]
    page.locator("#f-q").fill("")
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 200")
    assert page.url == served + "index.html"
    assert console.errors == []


def test_status_filter_and_price_range(page: Page, served: str) -> None:
    console = _open_index(page, served + "index.html")
    page.select_option("#f-status", "down")
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 1")
    assert _statuses(page) == ["down"]
    page.select_option("#f-status", "degraded")
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 2")
    assert _statuses(page) == ["degraded", "degraded"]
    page.locator("#f-min").fill("2")
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 1")
    assert SEED_TITLE in _rows(page)[0]  # $5.00; the other one costs "$1<script>..."
    page.select_option("#f-category", "media/images")
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 1")
    assert "category=media%2Fimages" in page.url
    assert console.errors == []


def test_url_state_round_trips_and_headers_sort(page: Page, served: str) -> None:
    console = _open_index(page, served + "index.html?status=healthy&sort=p50_ms&dir=desc")
    assert page.locator("#f-status").input_value() == "healthy"
    assert page.locator("th[data-key='p50_ms']").get_attribute("aria-sort") == "descending"
    rows = _rows(page)
    assert len(rows) == 200  # 452 healthy, the first 200 shown
    assert "Beta search" in rows[0]  # the slowest healthy one (1200 ms)
    assert page.locator("#more").is_visible()
    page.locator("#more").click()
    page.wait_for_function("document.querySelectorAll('#endpoints tbody tr').length === 400")
    page.locator("th[data-key='title'] button").click()
    page.wait_for_function("location.search.includes('sort=title')")
    assert "dir=asc" in page.url
    assert "Alpha weather" in _rows(page)[0]
    shared = page.url
    page.goto(shared)
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("th[data-key='title']").get_attribute("aria-sort") == "ascending"
    assert "Alpha weather" in _rows(page)[0]
    page.locator("#f-reset").click()
    page.wait_for_function("location.search === ''")
    assert len(_rows(page)) == 200
    assert page.locator("#f-status").input_value() == ""
    assert page.locator("th[aria-sort]").count() == 0
    assert console.errors == []


def test_endpoint_page_shows_its_charts(page: Page, served: str, tmp_path: Path) -> None:
    console = Console(page)
    page.goto(f"{served}endpoints/{SEED_SLUG}.html")
    chart = page.locator("svg.chart").first
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert box["height"] > 50
    assert page.locator("svg.chart path.line").first.get_attribute("d")
    assert page.locator("svg.uptime rect").count() == 30
    assert page.locator("svg.uptime").is_visible()
    assert page.locator("button[data-copy='badge-md']").is_visible()
    assert page.locator("img.badge").evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(tmp_path / "endpoint.png"), full_page=True)
    assert (tmp_path / "endpoint.png").stat().st_size > 0
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(tmp_path / "endpoint-dark.png"))
    assert console.errors == []


def test_the_site_works_from_file_urls(page: Page, rendered: Path) -> None:
    console = Console(page)
    page.goto((rendered / "page" / "2.html").as_uri())
    page.wait_for_selector("body[data-ready='0']")
    assert len(_rows(page)) == 200  # the static table, styled, without the search
    assert page.locator("#filters").is_hidden()
    background = page.locator("thead th").first.evaluate(
        "th => getComputedStyle(th).backgroundColor"
    )
    assert background not in {"", "rgba(0, 0, 0, 0)"}  # the stylesheet loaded (relative link)
    page.locator("#endpoints tbody a").first.click()
    page.wait_for_selector("svg.chart")
    assert page.url.startswith(rendered.as_uri() + "/endpoints/")
    assert console.errors == []
