"""The catalogue crawler against hostile loopback facilitators: bombs, bad codings, odd numbers.

Every page is read through the bounded JSON client, so a bomb page fails as `too-large` (no
retry: the same bytes would come again) within a few MB of memory and without stalling the
event loop; one hostile item (bytes that are not UTF-8, a lone surrogate, an integer Python
refuses to parse) no longer fails its whole page; odd `pagination.total` values and
`Retry-After` headers are ignored as junk; errors quoting the server are one bounded line.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hostile_http import (
    BOMB_IDS,
    BOMBS,
    LIMIT,
    MAX_TICK_GAP_S,
    MIB,
    Body,
    Route,
    Serve,
    Watched,
    assert_bounded,
    watched,
    zero_bomb,
)

from monitor.discovery import CatalogueCrawler, CataloguePage, CrawlError

USER_AGENT = "x402-monitor-test/1 (hostile discovery)"


@dataclass
class Crawled:
    """The pages a crawl yielded, the CrawlError that ended it, and the sleeps it asked for."""

    pages: list[CataloguePage]
    error: CrawlError | None
    sleeps: list[float]


RESOURCES = "/discovery/resources"


def crawl(
    base_url: str, *, start_offset: int = 0, trace_memory: bool = True, **options: Any
) -> Watched:
    """Crawl `base_url` to its end beside the watch; the result is a `Crawled`."""
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    # Made before the watch starts: creating its TLS context is not what is measured.
    client = CatalogueCrawler(
        user_agent=USER_AGENT,
        sleep=sleep,
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        **{"max_page_bytes": LIMIT, **options},
    )

    async def run() -> Crawled:
        pages: list[CataloguePage] = []
        async with client as crawler:
            try:
                async for page in crawler.pages(base_url, start_offset=start_offset):
                    pages.append(page)
            except CrawlError as error:
                return Crawled(pages, error, sleeps)
        return Crawled(pages, None, sleeps)

    return watched(run, trace_memory=trace_memory)


def crawled(outcome: Watched) -> Crawled:
    """Return the crawl's result, failing on any exception other than a CrawlError."""
    assert outcome.error is None, outcome.error
    assert isinstance(outcome.result, Crawled)
    return outcome.result


def failed(outcome: Watched) -> tuple[CrawlError, list[float]]:
    """Return the CrawlError that ended the crawl and the sleeps it asked for."""
    result = crawled(outcome)
    assert result.error is not None, result.pages
    return result.error, result.sleeps


@pytest.mark.parametrize(("coding", "body"), BOMBS, ids=BOMB_IDS)
def test_a_bomb_page_fails_as_too_large_without_retries(
    serve: Serve, coding: str, body: Body
) -> None:
    server = serve({RESOURCES: Route(headers={"Content-Encoding": coding}, body=body)})
    outcome = crawl(server.base_url)
    assert_bounded(outcome)
    error, sleeps = failed(outcome)
    assert (error.offset, error.reason) == (0, "too-large")
    assert error.detail == f"answer larger than {LIMIT} bytes"
    assert sleeps == []


@pytest.mark.parametrize(
    ("coding", "body", "detail"),
    [
        ("br", b"\x1b\x03\x00\xf8%\x14\x82\x8c\x00", "Content-Encoding 'br' is not decoded"),
        ("gzip", b"\x1f\x8b\x08\x00garbage" * 10, "invalid gzip data"),
    ],
    ids=["br", "corrupt-gzip"],
)
def test_an_undecodable_page_fails_without_retries(
    serve: Serve, coding: str, body: bytes, detail: str
) -> None:
    server = serve({RESOURCES: Route(headers={"Content-Encoding": coding}, body=lambda: [body])})
    error, sleeps = failed(crawl(server.base_url))
    assert error.reason == "bad-encoding"
    assert detail in error.detail
    assert sleeps == []
    assert len(server.paths) == 1


def test_a_gzip_page_is_crawled(serve: Serve) -> None:
    page = {"items": [{"resource": "https://a.example.com/x"}], "pagination": {"total": 1}}
    body = gzip.compress(json.dumps(page).encode())
    server = serve({RESOURCES: Route(headers={"Content-Encoding": "gzip"}, body=lambda: [body])})
    result = crawled(crawl(server.base_url))
    assert result.error is None
    assert [page.items for page in result.pages] == [[{"resource": "https://a.example.com/x"}]]


def test_a_redirected_catalogue_never_reads_the_redirects_body(serve: Serve) -> None:
    page = {"items": [{"resource": "https://a.example.com/x"}], "pagination": {"total": 1}}
    routes = {
        RESOURCES: Route(
            "307 Temporary Redirect",
            {"Location": "/v2" + RESOURCES + "?offset=0&limit=100", "Content-Encoding": "gzip"},
            lambda: zero_bomb("gzip"),
        ),
        "/v2" + RESOURCES: Route(body=lambda: [json.dumps(page).encode()]),
    }
    server = serve(routes)
    outcome = crawl(server.base_url)
    assert_bounded(outcome)
    result = crawled(outcome)
    assert result.error is None
    assert len(result.pages) == 1


@pytest.mark.parametrize(
    ("pagination", "total"),
    [
        ({"total": 1e308}, None),
        ({"total": -5}, None),
        ({"total": True}, None),
        ({"total": "2"}, None),
        ({"total": 10**400}, None),  # read as a float (infinity), as 1e400 is
        ({"total": 12345}, 12345),
        (["total", 2], None),
    ],
)
def test_odd_pagination_totals_are_ignored(
    serve: Serve, pagination: object, total: int | None
) -> None:
    page = {"items": [{"n": 1}], "pagination": pagination}
    server = serve({RESOURCES: Route(body=lambda: [json.dumps(page).encode()])})
    result = crawled(crawl(server.base_url, max_pages=2))
    assert result.error is None
    assert [page.total for page in result.pages] == [total, total]  # the server ignores offsets


def test_a_negative_start_offset_starts_at_zero(serve: Serve) -> None:
    server = serve({RESOURCES: Route()})
    result = crawled(crawl(server.base_url, start_offset=-50))
    assert result.error is None
    assert [path.split("offset=")[1] for path in server.paths] == ["0"]


def test_a_page_with_a_hostile_item_keeps_the_others(serve: Serve) -> None:
    good = b'{"resource": "https://a.example.com/x"}'
    hostile = [
        b'{"description": "caf\xe9 \\ud800 \\u0000"}',  # not UTF-8, lone surrogate, NUL
        b'{"n": ' + b"1" * 10_000 + b"}",  # an integer Python refuses to parse
    ]
    body = b'{"items": [' + b", ".join([good, *hostile, good]) + b'], "pagination": {"total": 4}}'
    server = serve({RESOURCES: Route(body=lambda: [body])})
    result = crawled(crawl(server.base_url))
    assert result.error is None
    items = result.pages[0].items
    assert len(items) == 4
    assert items[1] == {"description": "caf\ufffd \ufffd \ufffd"}
    assert items[2] == {"n": float("inf")}


def test_a_page_of_millions_of_tiny_values_is_refused_without_stalling(serve: Serve) -> None:
    size = 16 * MIB  # 2 million objects: parsing them in one go stalls the loop for seconds
    body = b'{"items": [' + b'{"a":1},' * (size // 8) + b'{"a":1}]}'
    server = serve({RESOURCES: Route(body=lambda: [body])})
    outcome = crawl(server.base_url, max_page_bytes=size + 100)
    assert outcome.max_gap_s < MAX_TICK_GAP_S, f"event loop stalled {outcome.max_gap_s:.2f} s"
    error, _ = failed(outcome)
    assert error.reason == "too-large"
    assert error.detail == "answer holds more than 250000 JSON values"


def test_a_page_of_many_values_within_the_bound_is_parsed_beside_the_loop(serve: Serve) -> None:
    count = 120_000  # 240,000 values: just within the bound
    body = b'{"items": [' + b'{"a":1},' * (count - 1) + b'{"a":1}]}'
    server = serve({RESOURCES: Route(body=lambda: [body])})
    outcome = crawl(server.base_url, max_pages=1, max_items=count, trace_memory=False)
    assert outcome.max_gap_s < MAX_TICK_GAP_S, f"event loop stalled {outcome.max_gap_s:.2f} s"
    result = crawled(outcome)
    assert result.error is None
    assert len(result.pages[0].items) == count


@pytest.mark.parametrize(
    "retry_after",
    [
        "Mon, 01 Jan 99999999999 00:00:00 GMT",  # overflows datetime
        "Mon, 32 Jan 2026 99:99:99 GMT",
        "\x01\x7f",
        "-5",
    ],
)
def test_a_hostile_retry_after_is_junk(serve: Serve, retry_after: str) -> None:
    server = serve({RESOURCES: Route("429 Slow Down", {"Retry-After": retry_after})})
    error, sleeps = failed(crawl(server.base_url, max_retries=1))
    assert (error.reason, error.detail) == ("http-status", "HTTP 429")
    assert sleeps == [1.0]  # the back-off, as without Retry-After


def test_a_retry_after_beyond_any_wait_fails_the_page(serve: Serve) -> None:
    server = serve({RESOURCES: Route("503 Busy", {"Retry-After": "9" * 5000})})
    error, sleeps = failed(crawl(server.base_url))
    assert error.reason == "rate-limited"
    assert sleeps == []


def test_a_garbled_answer_gives_a_bounded_one_line_error(serve: Serve) -> None:
    server = serve({RESOURCES: Route("2x0 \x01\x1b[31m" + "x" * 10_000)})
    error, _ = failed(crawl(server.base_url, max_retries=0))
    assert error.reason == "unreachable"
    assert error.detail.startswith("connection failed: illegal status line")
    assert len(error.detail) <= 200
    assert str(error).isprintable()
