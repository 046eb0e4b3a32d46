"""Fetch facilitators' `GET /supported`, bounded in time and bytes and cached (edge: httpx).

The HTTP side of the facilitator check (issue 3, point 5); reading the document is
`monitor.x402.supported_document`, judging offers against it `monitor.x402.facilitator`.
One shared `httpx.AsyncClient`; every failure becomes a `SupportedResult`, never an exception.

No address policy here, unlike `monitor.probe`: a facilitator URL is not a probe target taken in
bulk from public listings, it is the operator's own configuration or the base URL of a catalogue
the operator configured (a Bazaar catalogue is served by the facilitator that settles for its
listings, so "the catalogue that listed the endpoint" names an operator-chosen host). Requests
carry no credentials and only the fixed `/supported` path; answers are parsed, never republished
verbatim. Time, redirects and bytes are still bounded, because the operator's choice can fail.

Outcomes (x402-conformance S0: only a 200 JSON answer is a usable /supported):
  connect/DNS/TLS error, timeout, 5xx, 429 → unreachable (an outage: retried after the short
  negative TTL); 401/403 → reachable, invalid (`supported-auth`: the list needs credentials);
  other non-200 (404: wrong base URL) → reachable, invalid (`supported-http-status`);
  200 over `max_bytes` once decoded → invalid (`supported-too-large`); 200 whose
  Content-Encoding cannot be decoded (`br`, corrupt, a decompression bomb) → invalid
  (`supported-not-json`); 200 → `parse_supported`, whose
  result is invalid when it is not JSON or of a shape the official SDK refuses (grouped
  kinds…). Every invalid answer makes the verdict `invalid` for every offer; unreachable makes
  it `unreachable`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from monitor.discovery.client import MAX_REDIRECTS, AnswerError, JsonClientOwner
from monitor.models import Challenge, FacilitatorVerdict, Finding
from monitor.x402.facilitator import facilitator_verdict
from monitor.x402.supported_document import Supported, parse_supported, unusable

logger = logging.getLogger(__name__)

MAX_SUPPORTED_BYTES = 1024 * 1024
"""Largest /supported body read (x402-conformance reads at most 1 MiB too)."""


@dataclass(frozen=True)
class SupportedResult:
    """One fetch of `{facilitator}/supported`: the parsed document or why there is none.

    `supported` is None exactly when the facilitator was unreachable (`reachable` False, `error`
    says why). A reachable facilitator that answered badly has `supported` with `valid` False
    and a finding naming the problem; `error` then gives the short reason too.
    """

    url: str
    supported: Supported | None
    reachable: bool
    error: str | None
    fetched_at: datetime
    http_status: int | None = None

    def verdict(self, challenge: Challenge | None) -> tuple[FacilitatorVerdict, list[Finding]]:
        """Return the facilitator verdict and findings for a challenge checked against this."""
        return facilitator_verdict(self.supported, challenge, reachable=self.reachable)


def supported_url(base_url: str) -> str:
    """Return the /supported URL of a facilitator base URL (paths are appended, reference §4)."""
    return f"{base_url.strip().rstrip('/')}/supported"


def _redacted(url: str) -> str:
    """Return `url` without user info and query, for logs (configured URLs may hold tokens)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


class FacilitatorClient(JsonClientOwner):
    """Fetch and cache facilitators' /supported through one shared client; async context manager.

    Results are cached per /supported URL: a usable document for `ttl`; anything else
    (unreachable, non-200, oversized, malformed) only for `negative_ttl`, default
    min(ttl, 60 s), so the end of an outage is noticed soon without hammering the facilitator.
    Concurrent calls for one URL share a single request. `clock` dates results and drives
    expiry (tests pass a fake one; nothing here sleeps). The cache holds one entry per
    facilitator URL ever asked for: a handful in practice, so it is never pruned.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        clock: Callable[[], datetime],
        timeout: timedelta = timedelta(seconds=10),
        ttl: timedelta = timedelta(minutes=10),
        negative_ttl: timedelta | None = None,
        max_bytes: int = MAX_SUPPORTED_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._clock = clock
        self._timeout = timeout.total_seconds()
        self._ttl = ttl
        self._negative_ttl = (
            negative_ttl if negative_ttl is not None else min(ttl, timedelta(seconds=60))
        )
        self._max_bytes = max_bytes
        self._cache: dict[str, tuple[SupportedResult, datetime]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        super().__init__(user_agent=user_agent, timeout=timeout, transport=transport)

    async def supported(self, base_url: str) -> SupportedResult:
        """Return the facilitator's /supported, from the cache when fresh; never raises.

        `base_url` is the facilitator URL as configured or listed (`https://x402.org/facilitator`);
        `/supported` is appended after stripping trailing slashes.
        """
        url = supported_url(base_url)
        cached = self._fresh(url)
        if cached is not None:
            return cached
        # One lock per URL: late callers wait for the first request and then hit the cache.
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._fresh(url)
            if cached is not None:
                return cached
            result = await self._fetch(url)
            usable = result.supported is not None and result.supported.usable
            expires = result.fetched_at + (self._ttl if usable else self._negative_ttl)
            self._cache[url] = (result, expires)
            return result

    def _fresh(self, url: str) -> SupportedResult | None:
        entry = self._cache.get(url)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    async def _fetch(self, url: str) -> SupportedResult:
        """GET one /supported within the timeout and byte cap; classify the answer."""
        fetched_at = self._clock()
        shown = _redacted(url)  # findings are stored and published: no userinfo or query

        def unreachable(error: str, status: int | None = None) -> SupportedResult:
            logger.info("facilitator %s unreachable: %s", _redacted(url), error)
            return SupportedResult(url, None, False, error, fetched_at, status)

        def invalid(document: Supported, error: str, status: int) -> SupportedResult:
            logger.info("facilitator %s unusable: %s", _redacted(url), error)
            return SupportedResult(url, document, True, error, fetched_at, status)

        try:
            answer = await self.get_body(url, max_bytes=self._max_bytes)
        except AnswerError as exc:  # a 200 whose body cannot be used
            if exc.reason == "too-large":
                problem = f"{shown} is larger than {self._max_bytes} bytes"
                return invalid(unusable("supported-too-large", problem), "body too large", 200)
            problem = f"{shown} cannot be decoded: {exc.detail}"
            return invalid(unusable("supported-not-json", problem), "undecodable body", 200)
        except (TimeoutError, httpx.TimeoutException):
            return unreachable(f"timeout after {self._timeout:g} s")
        except httpx.TooManyRedirects:
            return unreachable(f"more than {MAX_REDIRECTS} redirects")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return unreachable(f"unusable facilitator URL: {exc}")
        except httpx.HTTPError as exc:  # connect, DNS, TLS, protocol: the peer cannot be used
            return unreachable(f"connection failed: {str(exc) or type(exc).__name__}")
        status = answer.status
        if status >= 500 or status == 429:
            return unreachable(f"HTTP {status}", status)
        if status in (401, 403):
            problem = f"{shown} answered HTTP {status}: it needs credentials the monitor lacks"
            return invalid(unusable("supported-auth", problem), f"HTTP {status}", status)
        if status != 200:
            problem = f"{shown} answered HTTP {status}"
            fix = "check the facilitator base URL: /supported is appended to it"
            document = unusable("supported-http-status", problem, fix)
            return invalid(document, f"HTTP {status}", status)
        document = parse_supported(answer.body or b"")
        error = None if document.valid else "malformed /supported"
        return SupportedResult(url, document, True, error, fetched_at, status)
