"""CatalogueCrawler against a loopback facilitator serving a paginated Bazaar catalogue."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.catalogue import CatalogueEntry, Rejection, normalise_item
from monitor.discovery import CatalogueCrawler, CataloguePage, CrawlError, resources_url

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
TEMPLATE: dict[str, Any] = json.loads(
    (FIXTURES / "05-discovery-item-cdp-docs-mixed-v1-v2.json").read_text()
)
USER_AGENT = "x402-monitor-test/1 (+https://example.invalid; catalogue crawl)"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
Reply = tuple[int, dict[str, str], bytes]


def real_item(index: int) -> dict[str, Any]:
    """Return fixture 05 for a distinct resource, with a description."""
    item = copy.deepcopy(TEMPLATE)
    url = f"https://api{index % 7}.example.com/x402/weather/{index}"
    item["resource"] = url
    item["accepts"][0]["resource"] = url
    item["description"] = f"Weather forecast number {index} for any city"
    return item


HOSTILE: list[tuple[object, str]] = [
    ({**TEMPLATE, "resource": "http://10.0.0.5/x"}, "private-target"),
    ({**TEMPLATE, "resource": "http://localhost:8080/"}, "private-target"),
    ({**TEMPLATE, "resource": "javascript:alert(1)"}, "not-http-url"),
    ({**TEMPLATE, "description": "x" * (100 * 1024 + 10)}, "too-long"),
    ({**TEMPLATE, "accepts": "none"}, "malformed"),
    ({**TEMPLATE, "x402Version": "two"}, "malformed"),
    ("just a string", "not-object"),
    ({**TEMPLATE, "resource": None}, "no-resource"),
]


def catalogue(size: int) -> list[object]:
    """Return `size` items: real ones, hostile ones spread through, two duplicate URLs."""
    items: list[object] = [real_item(i) for i in range(size - len(HOSTILE) - 2)]
    for position, (hostile, _) in enumerate(HOSTILE):
        items.insert(position * 31 % len(items), hostile)
    items += [real_item(0), real_item(1)]  # duplicates: one endpoint each, per (url, method)
    return items


class StubCatalogue(ThreadingHTTPServer):
    """Loopback facilitator: serves `items` paginated; `scripted` replies override by offset."""

    daemon_threads = True

    def __init__(self, items: list[object]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.items = items
        self.with_total = True
        self.cap: int | None = None  # serve at most this many items per page
        self.scripted: dict[int, list[Reply]] = collections.defaultdict(list)
        self.always: dict[int, Reply] = {}
        self.lock = threading.Lock()
        self.requests: list[dict[str, list[str]]] = []
        self.headers_seen: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/platform/v2/x402/"

    def reply(self, query: dict[str, list[str]]) -> Reply:
        offset, limit = int(query["offset"][0]), int(query["limit"][0])
        if self.scripted[offset]:
            return self.scripted[offset].pop(0)
        if offset in self.always:
            return self.always[offset]
        served = min(limit, self.cap or limit)
        page: dict[str, Any] = {"x402Version": 2, "items": self.items[offset : offset + served]}
        if self.with_total:
            page["pagination"] = {"limit": limit, "offset": offset, "total": len(self.items)}
        return 200, {"Content-Type": "application/json"}, json.dumps(page).encode()


class _Handler(BaseHTTPRequestHandler):
    server: StubCatalogue

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/platform/v2/x402/discovery/resources":
            self.send_error(404)
            return
        query = parse_qs(parts.query)
        with self.server.lock:
            self.server.requests.append(query)
            self.server.headers_seen = {k.lower(): v for k, v in self.headers.items()}
            status, headers, body = self.server.reply(query)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[StubCatalogue]:
    stub = StubCatalogue(catalogue(250))
    thread = threading.Thread(target=stub.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.shutdown()
        stub.server_close()


class Crawl:
    """Run one crawl to its end, keeping the pages, the error and every requested sleep."""

    def __init__(self, base_url: str, **options: Any) -> None:
        self.sleeps: list[float] = []
        self.pages: list[CataloguePage] = []
        self.error: CrawlError | None = None

        async def sleep(delay: float) -> None:
            self.sleeps.append(delay)

        async def run() -> None:
            start = options.pop("start_offset", 0)
            kind = options.pop("resource_type", "http")
            async with CatalogueCrawler(
                user_agent=USER_AGENT, sleep=sleep, clock=lambda: T0, **options
            ) as crawler:
                try:
                    async for page in crawler.pages(
                        base_url, start_offset=start, resource_type=kind
                    ):
                        self.pages.append(page)
                except CrawlError as exc:
                    self.error = exc

        asyncio.run(run())

    @property
    def offsets(self) -> list[int]:
        return [page.offset for page in self.pages]

    @property
    def items(self) -> list[object]:
        return [item for page in self.pages for item in page.items]


def requested_offsets(server: StubCatalogue) -> list[int]:
    return [int(query["offset"][0]) for query in server.requests]


def test_full_crawl_pages_and_normalises_the_catalogue(server: StubCatalogue) -> None:
    crawl = Crawl(server.base_url)
    assert crawl.error is None
    assert crawl.sleeps == []
    assert crawl.offsets == [0, 100, 200]
    assert [len(page.items) for page in crawl.pages] == [100, 100, 50]
    assert [page.next_offset for page in crawl.pages] == [100, 200, 250]
    assert {page.total for page in crawl.pages} == {250}
    assert requested_offsets(server) == [0, 100, 200]  # total reached: no 4th request
    query = server.requests[0]
    assert query["type"] == ["http"]
    assert query["limit"] == ["100"]
    assert server.headers_seen["user-agent"] == USER_AGENT
    assert server.headers_seen["accept"] == "application/json"

    results = [normalise_item(item, allow_private=False) for item in crawl.items]
    reasons = collections.Counter(r.reason for r in results if isinstance(r, Rejection))
    assert reasons == collections.Counter(reason for _, reason in HOSTILE)
    entries = [r for r in results if isinstance(r, CatalogueEntry)]
    assert len(entries) == 250 - len(HOSTILE)
    assert len({e.key for e in entries}) == len(entries) - 2  # the two duplicates
    first = entries[0]
    assert first.price == "$0.0002"
    assert first.network == "eip155:8453"
    assert first.method == "GET"
    assert first.title == "Weather forecast number 0 for any city"
    assert first.category == "weather"
    assert first.provider == "example.com"


def test_429_with_retry_after_is_waited_for_and_refetched(server: StubCatalogue) -> None:
    server.scripted[100].append((429, {"Retry-After": "2"}, b"slow down"))
    crawl = Crawl(server.base_url)
    assert crawl.error is None
    assert crawl.sleeps == [2.0]
    assert requested_offsets(server) == [0, 100, 100, 200]
    assert crawl.offsets == [0, 100, 200]


def test_503_with_http_date_retry_after(server: StubCatalogue) -> None:
    when = format_datetime(T0 + timedelta(seconds=7), usegmt=True)
    server.scripted[0].append((503, {"Retry-After": when}, b""))
    server.scripted[0].append((503, {"Retry-After": "soon"}, b""))  # junk: back-off instead
    crawl = Crawl(server.base_url)
    assert crawl.error is None
    assert crawl.sleeps == [7.0, 2.0]


def test_failing_page_raises_after_earlier_pages(server: StubCatalogue) -> None:
    server.always[200] = (500, {}, b"boom")
    crawl = Crawl(server.base_url)
    assert crawl.offsets == [0, 100]
    assert crawl.error is not None
    assert (crawl.error.offset, crawl.error.reason) == (200, "http-status")
    assert crawl.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]  # exponential, 5 retries
    assert requested_offsets(server).count(200) == 6


def test_backoff_is_capped_at_32_seconds(server: StubCatalogue) -> None:
    server.always[0] = (502, {}, b"")
    crawl = Crawl(server.base_url, max_retries=8)
    assert crawl.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 32.0, 32.0]


def test_resume_from_start_offset(server: StubCatalogue) -> None:
    crawl = Crawl(server.base_url, start_offset=200)
    assert crawl.error is None
    assert crawl.offsets == [200]
    assert requested_offsets(server) == [200]


def test_max_items_bounds_the_crawl(server: StubCatalogue) -> None:
    crawl = Crawl(server.base_url, max_items=150)
    assert [len(page.items) for page in crawl.pages] == [100, 50]
    assert crawl.pages[-1].next_offset == 150
    assert requested_offsets(server) == [0, 100]


def test_oversize_page_fails_without_retry(server: StubCatalogue) -> None:
    crawl = Crawl(server.base_url, max_page_bytes=20_000)
    assert crawl.error is not None
    assert crawl.error.reason == "too-large"
    assert crawl.error.offset == 0
    assert crawl.sleeps == []
    assert crawl.pages == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "bad-json"),
        (b"\xff\xfe", "bad-json"),
        (b"[" * 100 + b"]" * 100, "bad-json"),  # deeper than the JSON depth bound
        (b"[]", "wrong-shape"),
        (b'{"items": {"a": 1}}', "wrong-shape"),
        (b'{"pagination": {"total": 5}}', "wrong-shape"),
    ],
)
def test_unreadable_pages(server: StubCatalogue, body: bytes, reason: str) -> None:
    server.always[100] = (200, {"Content-Type": "application/json"}, body)
    crawl = Crawl(server.base_url)
    assert crawl.offsets == [0]
    assert crawl.error is not None
    assert (crawl.error.offset, crawl.error.reason) == (100, reason)
    assert crawl.sleeps == []


def test_missing_total_stops_at_an_empty_page(server: StubCatalogue) -> None:
    server.with_total = False
    crawl = Crawl(server.base_url)
    assert crawl.error is None
    assert crawl.offsets == [0, 100, 200]
    assert {page.total for page in crawl.pages} == {None}
    assert requested_offsets(server) == [0, 100, 200, 250]


def test_server_capping_page_size_skips_nothing(server: StubCatalogue) -> None:
    server.cap = 60
    crawl = Crawl(server.base_url)
    assert crawl.offsets == [0, 60, 120, 180, 240]
    assert len(crawl.items) == 250


def test_max_pages_stops_a_server_that_ignores_offsets(server: StubCatalogue) -> None:
    server.with_total = False
    server.always[3] = (200, {}, json.dumps({"items": [TEMPLATE]}).encode())
    server.cap = 1
    crawl = Crawl(server.base_url, start_offset=3, max_pages=4)
    assert crawl.error is None
    assert len(crawl.pages) == 4


def test_long_retry_after_is_not_waited_for(server: StubCatalogue) -> None:
    server.always[0] = (429, {"Retry-After": "3600"}, b"")
    crawl = Crawl(server.base_url)
    assert crawl.error is not None
    assert crawl.error.reason == "rate-limited"
    assert crawl.sleeps == []


def test_not_found_is_not_retried(server: StubCatalogue) -> None:
    crawl = Crawl(server.base_url.replace("/x402/", "/nope/"))
    assert crawl.error is not None
    assert crawl.error.reason == "http-status"
    assert "404" in crawl.error.detail
    assert crawl.sleeps == []


def test_resource_type_none_omits_the_filter(server: StubCatalogue) -> None:
    Crawl(server.base_url, resource_type=None, max_items=1)
    assert "type" not in server.requests[0]


def test_unreachable_facilitator_is_retried_then_fails() -> None:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        crawl = Crawl(f"http://127.0.0.1:{port}", max_retries=2)
    assert crawl.error is not None
    assert crawl.error.reason == "unreachable"
    assert crawl.sleeps == [1.0, 2.0]


def test_resources_url() -> None:
    assert resources_url(" https://x402.org/facilitator/ ") == (
        "https://x402.org/facilitator/discovery/resources"
    )
