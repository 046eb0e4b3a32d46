"""Send one unpaid request to an endpoint and record what came back (DESIGN.md, "Probe").

Edge module: the only place that talks HTTP to endpoints. It measures and bounds; it never
judges (that is `monitor.assess`). Every network or HTTP problem becomes `ProbeFacts` with an
`error_kind`; only programming errors raise.

Requests are `httpx.Request`s sent straight to an httpx transport (by default
`monitor.probe.http1.Http1Transport`, which enforces the address policy on every connection);
redirects are followed here, at most `max_redirects`, each hop a new request through the same
guarded transport. `httpx.AsyncClient` is not used on this path: its per-request machinery
(cookies, auth, header merging, event hooks) cost more CPU than the exchange itself.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType

import httpx

from monitor.addresses import refusal_reason
from monitor.config import ProbeConfig
from monitor.content_coding import read_decoded
from monitor.models import EndpointSpec, JsonValue, ProbeErrorKind, ProbeFacts
from monitor.probe.errors import MAX_MESSAGE, classify
from monitor.probe.http1 import Http1Transport, Policy, ProxyChoice, Resolver, resolve
from monitor.untrusted import clean_line
from monitor.x402.sampling import sample_request

log = logging.getLogger(__name__)

_QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE"})
_RETRY_AS_POST = frozenset({405, 400, 415, 422})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_URLS_CACHED = 65_536
"""Parsed endpoint URLs kept (about 1 KB each): a fleet of 20,000 endpoints stays parsed."""


def build_transport(
    config: ProbeConfig,
    *,
    policy: Policy = refusal_reason,
    verify: ssl.SSLContext | bool = True,
    resolver: Resolver = resolve,
    max_idle: int | None = None,
    environ: Mapping[str, str] | None = None,
    handshake_offload: bool = True,
) -> Http1Transport:
    """Return the HTTP/1.1 transport probes use, guarded unless private addresses are allowed.

    `policy`, `verify` and `resolver` exist for tests (a looser policy, a private CA, a fixed
    DNS table). Up to `max_idle` (default: `concurrency`) idle keep-alive connections are
    kept; 0 opens a new connection per request (the benchmark's `--keepalive off`). The
    egress proxy is `config.proxy`, else with `config.trust_env` the *_PROXY variables of
    `environ`. Raises ValueError naming the setting when a proxy URL is unusable.
    `handshake_offload=False` checks certificates on the event loop (the benchmark compares).
    """
    context = httpx.create_ssl_context(verify=verify, trust_env=False)
    context.set_alpn_protocols(["http/1.1"])
    proxies = ProxyChoice.from_settings(config.proxy, config.trust_env, environ or {})
    return Http1Transport(
        ssl_context=context,
        policy=None if config.allow_private_addresses else policy,
        resolver=resolver,
        proxies=proxies,
        max_idle=config.concurrency if max_idle is None else max_idle,
        handshake_offload=handshake_offload,
    )


def _headers(response: httpx.Response) -> dict[str, str]:
    """Return the headers with lower-case names, repeated ones joined by ", ".

    Read from the raw bytes: httpx's Headers re-detect their encoding on every access. Values
    are UTF-8 where they decode as such, else Latin-1 (what HTTP allows on the wire).
    """
    joined: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        key = raw_name.decode("latin-1").lower()
        try:
            value = raw_value.decode()
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


@functools.lru_cache(maxsize=_URLS_CACHED)
def _parsed(url: str) -> httpx.URL:
    """Return `url` parsed (httpx.URL is immutable; parsing cost a fifth of a probe's CPU)."""
    return httpx.URL(url)


def host_of(url: str) -> str:
    """Return the URL's host in ASCII (IDNA) form, or the URL itself when it has none."""
    try:
        return _parsed(url).raw_host.decode("ascii", "replace") or url
    except (httpx.InvalidURL, UnicodeError):
        return url


def _redirected(request: httpx.Request, response: httpx.Response) -> httpx.Request | None:
    """Return the request a redirect answer asks for, or None when `response` is no redirect.

    As browsers and httpx do: 301/302 turn POST into GET and 303 turns any method but HEAD
    into GET, dropping the body; 307/308 repeat the method and body. Raises
    httpx.UnsupportedProtocol for a Location that is not http(s).
    """
    if response.status_code not in _REDIRECTS:
        return None
    location = response.headers.get("location")
    if location is None:
        return None
    try:
        url = request.url.join(location)
    except httpx.InvalidURL as exc:
        raise httpx.RemoteProtocolError(f"invalid redirect location: {exc}") from exc
    if url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"redirect to a {url.scheme or 'relative'} URL")
    method = request.method
    keep_body = True
    if (response.status_code == 303 and method != "HEAD") or (
        response.status_code in (301, 302) and method == "POST"
    ):
        method, keep_body = "GET", False
    headers = [
        (name, value)
        for name, value in request.headers.raw
        if name.lower() != b"host" and (keep_body or name.lower() not in _BODY_HEADERS)
    ]
    return httpx.Request(
        method,
        url,
        headers=headers,
        content=request.content if keep_body else None,
        extensions=request.extensions,
    )


_BODY_HEADERS = frozenset({b"content-length", b"content-type", b"transfer-encoding"})


class Prober:
    """Send unpaid probes through one shared transport; use as an async context manager."""

    def __init__(
        self,
        config: ProbeConfig,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._transport = transport if transport is not None else build_transport(config)
        self._headers = httpx.Headers(
            {
                "Accept": "application/json",
                "User-Agent": config.user_agent,
                # Decompression is unbounded per chunk in httpx; ask for plain bytes.
                "Accept-Encoding": "identity",
            }
        )
        self._json_headers = httpx.Headers({**self._headers, "Content-Type": "application/json"})
        self._timeouts = {
            "connect": config.connect_timeout.total_seconds(),
            "read": config.timeout.total_seconds(),
            "write": config.timeout.total_seconds(),
            "pool": config.timeout.total_seconds(),
        }
        self._global = asyncio.Semaphore(config.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Prober:
        """Open the shared transport."""
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the shared transport and its connections."""
        await self._transport.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the shared transport (for use without `async with`)."""
        await self._transport.aclose()

    async def probe_many(
        self,
        specs: Sequence[EndpointSpec],
        on_result: Callable[[ProbeFacts], None] | None = None,
    ) -> list[ProbeFacts]:
        """Probe all `specs` concurrently; return their facts in input order.

        At most `concurrency` probes run at once, and at most `per_host` per host name.
        `on_result` is called with each result as soon as it is known.
        """

        async def one(spec: EndpointSpec) -> ProbeFacts:
            # Host slot first: a task waiting for a busy host must not hold a global slot.
            async with self._host_semaphore(spec.url), self._global:
                facts = await self.probe(spec)
            if on_result is not None:
                on_result(facts)
            return facts

        if len(specs) == 1:
            return [await one(specs[0])]  # the service's path: no gather for one probe
        return list(await asyncio.gather(*(one(spec) for spec in specs)))

    def _host_semaphore(self, url: str) -> asyncio.Semaphore:
        host = host_of(url)
        semaphore = self._per_host.get(host)
        if semaphore is None:
            semaphore = self._per_host[host] = asyncio.Semaphore(self._config.per_host)
        return semaphore

    async def probe(self, spec: EndpointSpec) -> ProbeFacts:
        """Probe one endpoint and return the facts of the last request made; never raises.

        Method: the declared one (`spec.method`, else the input schema's); when none is
        declared, GET and, if that answers 405/400/415/422, one retry as POST. Any failure
        becomes the facts of a check; a failure of the monitor itself is logged with its
        traceback at ERROR and recorded as `ProbeErrorKind.MONITOR`.
        """
        started_at = self._clock()
        try:
            return await self._probe(spec, started_at)
        except Exception as exc:  # a defect of ours, outside the exchange: still one check
            return monitor_failure(spec, exc, started_at)

    async def _probe(self, spec: EndpointSpec, started_at: datetime) -> ProbeFacts:
        sample = sample_request(spec.input_schema)
        declared = spec.method or sample.method
        body: JsonValue = spec.body if spec.has_body else sample.body
        if body is None and not spec.has_body:
            body = {}  # nothing declared: the minimal JSON body is an empty object
        # The check is dated when the probe started, even if a guessed retry followed.
        send = functools.partial(
            self._exchange, spec.url, body=body, query=sample.query, started_at=started_at
        )
        if declared is not None:
            facts = await send(declared.upper(), guessed=False)
        else:
            facts = await send("GET", guessed=True)
            if facts.http_status in _RETRY_AS_POST:
                facts = await send("POST", guessed=True)
        return facts

    def _build_request(
        self, url: str, method: str, body: JsonValue, query: Mapping[str, str]
    ) -> httpx.Request:
        """Build the request: sample query on query methods, JSON body on the others."""
        extensions = {"timeout": self._timeouts}
        target = _parsed(url)
        if method in _QUERY_METHODS:
            for name, value in query.items():
                if name not in target.params:  # values in the URL itself win
                    target = target.copy_add_param(str(name), str(value))
            return httpx.Request(method, target, headers=self._headers, extensions=extensions)
        # Encoded here rather than with `json=`: httpx sends no body for `json=None`, but a
        # configured `null` body must be sent as `null`.
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return httpx.Request(
            method, target, content=content, headers=self._json_headers, extensions=extensions
        )

    async def _send(self, request: httpx.Request, hops: list[httpx.URL]) -> httpx.Response:
        """Send `request`, following at most `max_redirects` redirects; record each URL."""
        while True:
            hops.append(request.url)
            response = await self._transport.handle_async_request(request)
            try:
                following = _redirected(request, response)
            except BaseException:
                await response.aclose()
                raise
            if following is None:
                response.request = request
                return response
            await response.aclose()
            if len(hops) > self._config.max_redirects:
                raise httpx.TooManyRedirects("too many redirects", request=request)
            request = following

    async def _exchange(
        self,
        url: str,
        method: str,
        *,
        body: JsonValue,
        query: Mapping[str, str],
        guessed: bool,
        started_at: datetime,
    ) -> ProbeFacts:
        """Send one request (following redirects) and read its answer within the timeout."""
        hops: list[httpx.URL] = []
        try:
            async with asyncio.timeout(self._config.timeout.total_seconds()):
                request = self._build_request(url, method, body, query)
                started = time.perf_counter()
                response = await self._send(request, hops)
                latency_ms = (time.perf_counter() - started) * 1000
                try:
                    content, truncated, body_error = await self._read_capped(response)
                finally:
                    await response.aclose()
        except Exception as exc:
            failing = hops[-1] if hops else _url_or_none(url)
            kind, message, timeout_s = classify(exc, self._config, failing)
            if kind is ProbeErrorKind.MONITOR:
                log.error("probe of %s failed inside the monitor", url, exc_info=exc)
            return ProbeFacts(
                url=url,
                method=method,
                method_guessed=guessed,
                started_at=started_at,
                final_url=str(hops[-1]) if hops else None,
                redirects=max(len(hops) - 1, 0),
                error_kind=kind,
                error=message,
                timeout_s=timeout_s,
            )
        return ProbeFacts(
            url=url,
            method=method,
            method_guessed=guessed,
            started_at=started_at,
            http_status=response.status_code,
            headers=_headers(response),
            body=content,
            body_truncated=truncated,
            body_error=body_error,
            latency_ms=latency_ms,
            final_url=str(hops[-1]),
            redirects=len(hops) - 1,
        )

    async def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool, str | None]:
        """Read and decode at most `max_body_bytes`; return (body, cut short, why unreadable).

        Raw bytes are decoded here, never by httpx (whose decoders are unbounded): decoded
        bytes count against the cap, a decompression bomb is refused, and a coding that is
        not decoded leaves the body unread (`why unreadable` says so).
        """
        cap = self._config.max_body_bytes
        try:
            content = response.content  # a transport that answered from memory (tests)
        except httpx.ResponseNotRead:
            pass
        else:
            return content[:cap], len(content) > cap, None
        encoding = _header(response, b"content-encoding")
        read = await read_decoded(
            response.aiter_raw(), encoding, limit=cap, pause=functools.partial(asyncio.sleep, 0)
        )
        error = None if read.error is None else clean_line(str(read.error), MAX_MESSAGE)
        return read.body, read.truncated, error


def _header(response: httpx.Response, name: bytes) -> str | None:
    """Return the raw header `name` (lower case) joined with ", ", or None when absent."""
    values = [value for key, value in response.headers.raw if key.lower() == name]
    return b", ".join(values).decode("latin-1") if values else None


def monitor_failure(spec: EndpointSpec, exc: BaseException, started_at: datetime) -> ProbeFacts:
    """Return the facts of a probe that the monitor itself broke; log the traceback once."""
    log.error("probe of %s failed inside the monitor", spec.url, exc_info=exc)
    return ProbeFacts(
        url=spec.url,
        method=(spec.method or "GET").upper(),
        method_guessed=spec.method is None,
        started_at=started_at,
        error_kind=ProbeErrorKind.MONITOR,
        error=clean_line(f"monitor error: {type(exc).__name__}: {exc}", MAX_MESSAGE),
    )


def _url_or_none(url: str) -> httpx.URL | None:
    """Return `url` parsed, or None when it is not a URL at all (for naming its host)."""
    try:
        return _parsed(url)
    except httpx.InvalidURL:
        return None
