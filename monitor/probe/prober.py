"""Send one unpaid request to an endpoint and record what came back (DESIGN.md, "Probe").

Edge module: the only place that talks HTTP to endpoints. It measures and bounds; it never
judges (that is `monitor.assess`). Every network or HTTP problem becomes `ProbeFacts` with an
`error_kind`; only programming errors raise.

Address policy: unless `allow_private_addresses` is set, every TCP connection (the first
request and each redirect hop) goes through `GuardedBackend`, which resolves the host itself,
refuses the connection when any resolved address is refused by `refusal_reason`, and connects
to the address it checked, so a DNS answer cannot change between check and use (rebinding).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType

import httpcore
import httpx

from monitor.addresses import refusal_reason
from monitor.config import ProbeConfig
from monitor.durations import format_duration
from monitor.models import EndpointSpec, JsonValue, ProbeErrorKind, ProbeFacts
from monitor.x402.sampling import sample_request

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolve (host, port) to IP address strings, in the order to try them."""

_QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE"})
_RETRY_AS_POST = frozenset({405, 400, 415, 422})
_CHUNK = 64 * 1024

# URLs requested by the current exchange (first request, then one per redirect hop), so a
# failure after a redirect still reports where it failed. Event hooks run in the caller's
# task, so a context variable attributes hops to the right probe under concurrency.
_hops: contextvars.ContextVar[list[httpx.URL] | None] = contextvars.ContextVar(
    "x402_probe_hops", default=None
)


class AddressRefusedError(Exception):
    """A connection target was refused by the address policy; `reason` says why."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


async def resolve(host: str, port: int) -> list[str]:
    """Return the distinct addresses `host` resolves to (an IP literal resolves to itself).

    Raises `socket.gaierror` when the name does not resolve.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Wrap an httpcore network backend so that TCP connects obey the address policy.

    `connect_tcp` resolves the host, raises `AddressRefusedError` when ANY address is refused (a
    name that also points inward is not trusted for its outward addresses either), then
    connects to the checked addresses in order. httpcore passes the origin host name to
    `start_tls` itself, so SNI and certificate checks still use the host name, not the IP.
    """

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend | None = None,
        *,
        policy: Callable[[str], str | None] = refusal_reason,
        resolver: Resolver = resolve,
    ) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()
        self._policy = policy
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check and connect; map failures the way httpcore's own backends do."""
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolver(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"DNS lookup for {host} timed out") from exc
        except OSError as exc:  # socket.gaierror: keep it as the cause for DNS detection
            raise httpcore.ConnectError(str(exc)) from exc
        if not addresses:
            raise httpcore.ConnectError(f"no addresses for {host}") from socket.gaierror(host)
        for address in addresses:
            reason = self._policy(address)
            if reason is not None:
                raise AddressRefusedError(host, reason)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc  # try the next address, like happy eyeballs would
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refuse: probes only ever use TCP."""
        raise AddressRefusedError(path, "unix sockets are not probed")

    async def sleep(self, seconds: float) -> None:
        """Delegate to the wrapped backend."""
        await self._inner.sleep(seconds)


def build_transport(
    config: ProbeConfig,
    *,
    policy: Callable[[str], str | None] = refusal_reason,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncHTTPTransport:
    """Return the HTTP/1.1 transport probes use, guarded unless private addresses are allowed.

    `policy`, `network_backend` and `verify` exist for tests (a looser policy, a recording
    backend, a private CA). httpx has no public way to pass a network backend, so the pool is
    rebuilt with httpcore's public constructor and swapped in; the isinstance check makes an
    httpx upgrade that renames `_pool` fail loudly instead of silently dropping the guard.
    """
    limits = httpx.Limits(
        max_connections=config.concurrency,
        max_keepalive_connections=min(config.concurrency, 20),
    )
    transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False, limits=limits)
    if config.allow_private_addresses and network_backend is None:
        return transport
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise RuntimeError("unsupported httpx version: cannot install the address guard")
    backend: httpcore.AsyncNetworkBackend = (
        network_backend  # private addresses allowed: a test backend, unguarded
        if config.allow_private_addresses and network_backend is not None
        else GuardedBackend(network_backend, policy=policy)
    )
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=backend,
    )
    return transport


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """Yield `exc` and its explicit or implicit causes (bounded against cycles)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify(
    exc: Exception, config: ProbeConfig, url: httpx.URL | None
) -> tuple[ProbeErrorKind, str, float | None]:
    """Map an exception from an exchange to (kind, message, timeout seconds); re-raise bugs.

    `url` is the last URL requested (the failing hop), used to name the host in DNS errors.
    """
    chain = list(_causes(exc))
    refused = next((e for e in chain if isinstance(e, AddressRefusedError)), None)
    if refused is not None:
        return ProbeErrorKind.BLOCKED, f"blocked: {refused.reason}", None
    if isinstance(exc, httpx.TooManyRedirects):
        return (
            ProbeErrorKind.TOO_MANY_REDIRECTS,
            f"more than {config.max_redirects} redirects",
            None,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        connect = config.connect_timeout
        message = f"connect timeout after {format_duration(connect)}"
        return ProbeErrorKind.TIMEOUT, message, connect.total_seconds()
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        total = config.timeout
        return (
            ProbeErrorKind.TIMEOUT,
            f"timeout after {format_duration(total)}",
            total.total_seconds(),
        )
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ProbeErrorKind.PROTOCOL, f"unusable URL: {exc}", None
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return ProbeErrorKind.PROTOCOL, f"protocol error: {exc}", None
    if isinstance(exc, httpx.TransportError):
        if any(isinstance(e, socket.gaierror) for e in chain):
            host = url.host if url is not None else "host"
            return ProbeErrorKind.DNS, f"DNS lookup failed for {host}", None
        tls = next((e for e in chain if isinstance(e, ssl.SSLError | ssl.CertificateError)), None)
        if tls is not None:
            # verify_message says what is wrong with a certificate ("Hostname mismatch, ...").
            detail = getattr(tls, "verify_message", None) or getattr(tls, "reason", None)
            detail = detail or str(tls)
            return ProbeErrorKind.TLS, f"TLS error: {detail}", None
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return ProbeErrorKind.CONNECT, "connection refused", None
        if any(isinstance(e, ConnectionResetError) for e in chain):
            return ProbeErrorKind.CONNECT, "connection reset", None
        if isinstance(exc, httpx.ConnectError):
            return ProbeErrorKind.CONNECT, f"connect failed: {exc}", None
        # Read/write errors after connecting: the peer dropped the connection mid-exchange.
        return ProbeErrorKind.CONNECT, f"connection lost: {type(exc).__name__}", None
    raise exc


def _headers(response: httpx.Response) -> dict[str, str]:
    """Return the headers with lower-case names, repeated ones joined by ", "."""
    joined: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


class Prober:
    """Send unpaid probes through one shared HTTP client; use as an async context manager."""

    def __init__(
        self,
        config: ProbeConfig,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        total = config.timeout.total_seconds()
        self._client = httpx.AsyncClient(
            transport=transport if transport is not None else build_transport(config),
            follow_redirects=True,
            max_redirects=config.max_redirects,
            timeout=httpx.Timeout(total, connect=config.connect_timeout.total_seconds()),
            trust_env=False,
            event_hooks={"request": [self._record_hop]},
            headers={
                "Accept": "application/json",
                "User-Agent": config.user_agent,
                # Decompression is unbounded per chunk in httpx; ask for plain bytes.
                "Accept-Encoding": "identity",
            },
        )
        self._global = asyncio.Semaphore(config.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Prober:
        """Open the shared client."""
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the shared client and its connections."""
        await self._client.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the shared client (for use without `async with`)."""
        await self._client.aclose()

    @staticmethod
    async def _record_hop(request: httpx.Request) -> None:
        hops = _hops.get()
        if hops is not None:
            hops.append(request.url)

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

        return list(await asyncio.gather(*(one(spec) for spec in specs)))

    def _host_semaphore(self, url: str) -> asyncio.Semaphore:
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL:
            host = url
        semaphore = self._per_host.get(host)
        if semaphore is None:
            semaphore = self._per_host[host] = asyncio.Semaphore(self._config.per_host)
        return semaphore

    async def probe(self, spec: EndpointSpec) -> ProbeFacts:
        """Probe one endpoint and return the facts of the last request made.

        Method: the declared one (`spec.method`, else the input schema's); when none is
        declared, GET and, if that answers 405/400/415/422, one retry as POST.
        """
        started_at = self._clock()
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
        logger.debug(
            "probe %s %s -> %s %s",
            facts.method,
            facts.url,
            facts.http_status if facts.error_kind is None else facts.error_kind,
            f"{facts.latency_ms:.0f}ms" if facts.latency_ms is not None else "",
        )
        return facts

    def _build_request(
        self, url: str, method: str, body: JsonValue, query: Mapping[str, str]
    ) -> httpx.Request:
        """Build the request: sample query on query methods, JSON body on the others."""
        if method in _QUERY_METHODS:
            target = httpx.URL(url)
            for name, value in query.items():
                if name not in target.params:  # values in the URL itself win
                    target = target.copy_add_param(str(name), str(value))
            return self._client.build_request(method, target)
        # Encoded here rather than with `json=`: httpx sends no body for `json=None`, but a
        # configured `null` body must be sent as `null`.
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return self._client.build_request(
            method, url, content=content, headers={"Content-Type": "application/json"}
        )

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
        token = _hops.set(hops)
        try:
            async with asyncio.timeout(self._config.timeout.total_seconds()):
                request = self._build_request(url, method, body, query)
                started = time.perf_counter()
                response = await self._client.send(request, stream=True)
                latency_ms = (time.perf_counter() - started) * 1000
                try:
                    content, truncated = await self._read_capped(response)
                finally:
                    await response.aclose()
        except Exception as exc:
            kind, message, timeout_s = _classify(exc, self._config, hops[-1] if hops else None)
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
        finally:
            _hops.reset(token)
        return ProbeFacts(
            url=url,
            method=method,
            method_guessed=guessed,
            started_at=started_at,
            http_status=response.status_code,
            headers=_headers(response),
            body=content,
            body_truncated=truncated,
            latency_ms=latency_ms,
            final_url=str(response.url),
            redirects=len(response.history),
        )

    async def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        """Read at most `max_body_bytes`; return (body, whether more was available)."""
        cap = self._config.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                return b"".join(chunks)[:cap], True
        return b"".join(chunks), False
