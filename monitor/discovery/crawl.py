"""Page through a facilitator's Bazaar catalogue, bounded and resumable (edge: httpx).

`CatalogueCrawler.pages` walks `GET {base}/discovery/resources?type=http&limit=100&offset=N`
(reference §4.3) and yields one `CataloguePage` of untrusted items at a time; judging the
items is `monitor.catalogue.normalise_item`. Only the page being yielded is held in memory.
Pages are read by `JsonClientOwner.get_json`: decoded within `max_page_bytes` (compressed
answers too), depth-bounded, and with their text already cleaned (no lone surrogates or
control characters), so the items' strings can be stored and shown as they are.

Stops (normally) at an empty page, when `offset + len(items) >= pagination.total`, or at the
`max_items`/`max_pages` bounds. 429, 5xx and transport errors are retried up to `max_retries`
times per page: `Retry-After` (seconds or HTTP date) when the server sends one, else exponential
back-off 1 s → 32 s; all waiting goes through the injected `sleep`. A page that still fails,
or that is oversize, undecodable, not JSON or not a catalogue, raises `CrawlError(offset,
reason)` after the earlier pages were yielded: the caller keeps what it got and resumes later
from `offset` (`start_offset`). A failed page therefore never means "the catalogue is empty".

Like `/supported`, the base URL is operator-configured, so no address policy applies to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from monitor.discovery.client import MAX_DETAIL_CHARS, MAX_REDIRECTS, AnswerError, JsonClientOwner
from monitor.models import JsonValue, MonitorError
from monitor.untrusted import clean_line

logger = logging.getLogger(__name__)

PAGE_LIMIT = 100
"""Items asked for per page: the spec's maximum (1–100)."""
MAX_PAGE_BYTES = 4 * 1024 * 1024
"""Largest page body read: 100 items of up to ~40 KB each."""
MAX_ITEMS = 50_000
MAX_PAGES = 1_000
MAX_RETRIES = 5
BACKOFF_START_S = 1.0
BACKOFF_CAP_S = 32.0
MAX_RETRY_AFTER_S = 300.0
"""A longer `Retry-After` is not waited for: the page fails and the next crawl resumes there."""

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class CrawlError(MonitorError):
    """A catalogue page could not be read; crawl again later from `offset`.

    `detail` is one line of at most MAX_DETAIL_CHARS characters. `reason` is stable:
    "unreachable" (connect/DNS/TLS/timeout after retries), "http-status"
    (a non-200 answer that is not retried or kept failing), "rate-limited" (`Retry-After`
    longer than the crawler waits), "too-large" (over `max_page_bytes` once decoded),
    "bad-encoding" (a Content-Encoding that is not decoded, corrupt data, a decompression
    bomb), "bad-json" (not JSON, or nested too deep), "wrong-shape".
    """

    def __init__(self, offset: int, reason: str, detail: str) -> None:
        # Details can quote the server (httpx puts a bad status line in its message).
        detail = clean_line(detail, MAX_DETAIL_CHARS)
        super().__init__(f"catalogue page at offset {offset} failed ({reason}): {detail}")
        self.offset = offset
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CataloguePage:
    """One page of raw catalogue items, as served (untrusted, not yet normalised).

    `total` is `pagination.total` when the server gave a non-negative integer, else None.
    `next_offset` is where the next page starts: persist it to resume after a crash.
    """

    offset: int
    items: list[JsonValue]
    total: int | None
    next_offset: int


def resources_url(base_url: str) -> str:
    """Return the catalogue URL of a facilitator base URL (paths are appended, reference §4)."""
    return f"{base_url.strip().rstrip('/')}/discovery/resources"


def _now() -> datetime:
    return datetime.now(UTC)


class _PageFailureError(Exception):
    """One attempt at a page failed; `retry_after` is the wait the server asked for, if any."""

    def __init__(
        self, reason: str, detail: str, *, retry: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry = retry
        self.retry_after = retry_after


class CatalogueCrawler(JsonClientOwner):
    """Crawl Bazaar catalogues through one shared `httpx.AsyncClient`; async context manager.

    `sleep` does all waiting between retries (tests pass a fake that records delays); `clock`
    only turns an HTTP-date `Retry-After` into seconds. Bounds: `page_limit` items asked per
    page, `max_items` yielded per crawl, `max_pages` fetched per crawl, `max_page_bytes` read
    per page (decoded), `timeout` per page attempt (whole answer with its redirects, not per
    read).
    """

    def __init__(
        self,
        *,
        user_agent: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = _now,
        timeout: timedelta = timedelta(seconds=30),
        page_limit: int = PAGE_LIMIT,
        max_items: int = MAX_ITEMS,
        max_pages: int = MAX_PAGES,
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_retries: int = MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 1 <= page_limit <= PAGE_LIMIT:
            raise ValueError(f"page_limit must be 1 to {PAGE_LIMIT}")
        self._sleep = sleep
        self._clock = clock
        self._timeout = timeout.total_seconds()
        self._page_limit = page_limit
        self._max_items = max_items
        self._max_pages = max_pages
        self._max_page_bytes = max_page_bytes
        self._max_retries = max_retries
        super().__init__(user_agent=user_agent, timeout=timeout, transport=transport)

    async def pages(
        self, base_url: str, *, start_offset: int = 0, resource_type: str | None = "http"
    ) -> AsyncIterator[CataloguePage]:
        """Yield the non-empty pages from `start_offset`; raise CrawlError on a failing page.

        `resource_type` is the `type` query parameter (None omits it, so servers that honour the
        filter also return `mcp` items). Ending without an exception means the crawl reached
        the end of the catalogue or a bound; pages already yielded stay valid either way.
        """
        url = resources_url(base_url)
        offset = max(0, start_offset)
        seen = 0
        for _ in range(self._max_pages):
            params: dict[str, str | int] = {"limit": self._page_limit, "offset": offset}
            if resource_type is not None:
                params = {"type": resource_type, **params}
            items, total = await self._page(url, params, offset)
            if not items:
                return
            items = items[: self._max_items - seen]
            seen += len(items)
            next_offset = offset + len(items)
            yield CataloguePage(offset, items, total, next_offset)
            # Advance by what was served, not by `limit`: a server capping pages lower than
            # asked would otherwise make the crawl skip items.
            offset = next_offset
            if seen >= self._max_items or (total is not None and offset >= total):
                return
        logger.warning("catalogue %s: stopped after %d pages", url, self._max_pages)

    async def _page(
        self, url: str, params: Mapping[str, str | int], offset: int
    ) -> tuple[list[JsonValue], int | None]:
        """Fetch one page with retries; return (items, total) or raise CrawlError."""
        attempt = 0
        while True:
            try:
                return await self._attempt(url, params)
            except _PageFailureError as failure:
                if not failure.retry or attempt >= self._max_retries:
                    raise CrawlError(offset, failure.reason, failure.detail) from None
                delay = min(BACKOFF_CAP_S, BACKOFF_START_S * 2**attempt)
                if failure.retry_after is not None:
                    if failure.retry_after > MAX_RETRY_AFTER_S:
                        detail = f"Retry-After {failure.retry_after:g} s; {failure.detail}"
                        raise CrawlError(offset, "rate-limited", detail) from None
                    delay = failure.retry_after
                attempt += 1
                logger.info(
                    "catalogue page offset %d: %s; retry %d in %g s",
                    offset,
                    failure.detail,
                    attempt,
                    delay,
                )
                await self._sleep(delay)

    async def _attempt(
        self, url: str, params: Mapping[str, str | int]
    ) -> tuple[list[JsonValue], int | None]:
        """GET one page once within the timeout and byte cap; classify the answer."""
        try:
            answer = await self.get_json(url, params=params, max_bytes=self._max_page_bytes)
        except AnswerError as exc:  # the same bytes would come again: no retry
            raise _PageFailureError(exc.reason, exc.detail, retry=False) from None
        except (TimeoutError, httpx.TimeoutException):
            raise _PageFailureError(
                "unreachable", f"timeout after {self._timeout:g} s", retry=True
            ) from None
        except httpx.TooManyRedirects:
            raise _PageFailureError(
                "http-status", f"more than {MAX_REDIRECTS} redirects", retry=False
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise _PageFailureError(
                "unreachable", f"unusable catalogue URL: {exc}", retry=False
            ) from None
        except httpx.HTTPError as exc:  # connect, DNS, TLS, protocol: maybe transient
            detail = f"connection failed: {str(exc) or type(exc).__name__}"
            raise _PageFailureError("unreachable", detail, retry=True) from None
        if answer.status != 200:
            retry_after = self._retry_after(answer.headers.get("retry-after"))
            retry = answer.status in _RETRY_STATUSES or answer.status >= 500
            raise _PageFailureError(
                "http-status", f"HTTP {answer.status}", retry=retry, retry_after=retry_after
            )
        return _parse_page(answer.document)

    def _retry_after(self, value: str | None) -> float | None:
        """Return the wait a `Retry-After` asks for in seconds (≥ 0), None when absent or junk."""
        if value is None or not value.strip():
            return None
        text = value.strip()
        if text.isascii() and text.isdigit():
            return float(text)
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):  # a year 99999999999 too
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - self._clock()).total_seconds())


def _parse_page(document: JsonValue) -> tuple[list[JsonValue], int | None]:
    """Return (items, pagination.total) of a page document, else raise _PageFailureError."""
    if not isinstance(document, dict):
        raise _PageFailureError("wrong-shape", "page is not a JSON object", retry=False)
    # `items` per the spec; `resources` is what /discovery/search and some forks return.
    items = document.get("items", document.get("resources"))
    if not isinstance(items, list):
        raise _PageFailureError("wrong-shape", "page has no `items` array", retry=False)
    pagination = document.get("pagination")
    total = pagination.get("total") if isinstance(pagination, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        total = None
    return items, total
