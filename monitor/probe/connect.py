"""Open one probe connection: resolve, check every address, race them (Happy Eyeballs), TLS.

Part of the probe edge, used by `monitor.probe.http1.Http1Transport`.

Address policy: the host is resolved here, the connection is refused when ANY resolved
address is refused (a name that also points inward is not trusted for its outward addresses
either), and only checked addresses are connected to, so DNS cannot change between check and
use (rebinding). Through an egress proxy the same holds: the proxy is asked to `CONNECT` to a
checked address, never to a name it would resolve itself.

Happy Eyeballs (RFC 8305 §4-5): addresses are interleaved by family (the first answer's family
first), the next attempt starts `ATTEMPT_DELAY` after the previous one or as soon as it fails,
the first connection wins and the others are closed. Resolution, the race and the TLS
handshake share one connect budget, so a blackholed address costs 250 ms, not a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast
from urllib.parse import unquote

import httpx

from monitor.probe.connection import HttpConnection
from monitor.probe.dns import resolve
from monitor.probe.tls import TlsSession

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolve (host, port) to IP address strings, in the order to try them."""
Policy = Callable[[str], str | None]
"""An IP address -> why it may not be probed, or None when it may."""
Opener = Callable[..., Awaitable[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]]
"""`loop.create_connection(factory, address, port)`; tests pass a recording one."""

T = TypeVar("T")

ATTEMPT_DELAY = 0.25
"""RFC 8305's recommended Connection Attempt Delay."""
_TARGET_UNREACHABLE = frozenset({"502", "503", "504"})
"""Proxy answers to CONNECT that mean it could not reach the target (RFC 9110 §15.6)."""
MAX_PROXY_HEAD = 8 * 1024
"""The proxy's answer to CONNECT: status line and headers, at most this long."""


class AddressRefusedError(Exception):
    """A connection target was refused by the address policy; `reason` says why."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


@dataclass(frozen=True)
class ProxyRoute:
    """An HTTP egress proxy: where it listens and the Proxy-Authorization it needs, if any."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)
    """The Proxy-Authorization value: a secret, kept out of reprs and logs."""

    @classmethod
    def from_url(cls, url: str) -> ProxyRoute:
        """Return the route of an `http://[user:password@]host[:port]` proxy URL.

        Raises ValueError naming the problem (the URL itself is never repeated: it may hold
        a password).
        """
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ValueError("the proxy URL is not a valid URL") from None
        if parsed.scheme != "http":
            raise ValueError("the proxy URL must start with http:// (TLS to the proxy is not used)")
        if not parsed.host:
            raise ValueError("the proxy URL has no host")
        authorization = None
        if parsed.userinfo:
            credentials = parsed.userinfo.decode("ascii", "replace")
            user, _, password = credentials.partition(":")
            token = f"{unquote(user)}:{unquote(password)}".encode()
            authorization = "Basic " + base64.b64encode(token).decode("ascii")
        return cls(parsed.host, parsed.port or 80, authorization)


@dataclass(frozen=True)
class ProxyChoice:
    """Which egress proxy, if any, carries a connection to (scheme, host)."""

    routes: Mapping[str, ProxyRoute]
    """Target scheme ("http", "https") -> the proxy for it."""
    bypass: tuple[str, ...] = ()
    """NO_PROXY entries: host names (a leading dot or not: subdomains too) and IP literals."""

    @classmethod
    def from_settings(
        cls, proxy: str | None, trust_env: bool, environ: Mapping[str, str]
    ) -> ProxyChoice | None:
        """Return the choice the config makes: `proxy` for every target, else (with
        `trust_env`) the *_PROXY variables as curl reads them. Raises ValueError naming the
        variable when one holds an unusable URL (its value is never repeated).
        """
        if proxy is not None:
            route = ProxyRoute.from_url(proxy)
            return cls({"http": route, "https": route})
        if not trust_env:
            return None
        routes: dict[str, ProxyRoute] = {}
        for scheme in ("http", "https"):
            for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
                if scheme == "http" and name == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
                    continue  # CGI sets HTTP_PROXY from a request header (httpoxy)
                if environ.get(name):
                    try:
                        routes[scheme] = ProxyRoute.from_url(environ[name])
                    except ValueError as exc:
                        raise ValueError(f"{name}: {exc}") from None
                    break
        if not routes:
            return None
        no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
        bypass = tuple(e.strip().lower().lstrip(".") for e in no_proxy.split(",") if e.strip())
        return cls(routes, bypass)

    def route_for(self, scheme: str, host: str) -> ProxyRoute | None:
        """Return the proxy for a target, or None to connect directly (NO_PROXY)."""
        route = self.routes.get(scheme)
        if route is None:
            return None
        host = host.strip("[]").lower()
        for entry in self.bypass:
            if entry == "*" or host == entry or host.endswith("." + entry):
                return None
        return route


def interleave(addresses: list[str]) -> list[str]:
    """Return `addresses` alternating families, starting with the first one's (RFC 8305 §4)."""
    if not addresses:
        return []
    first_v6 = ":" in addresses[0]
    same = [a for a in addresses if (":" in a) == first_v6]
    other = [a for a in addresses if (":" in a) != first_v6]
    ordered: list[str] = []
    for index in range(max(len(same), len(other))):
        ordered += same[index : index + 1] + other[index : index + 1]
    return ordered


async def checked_addresses(
    host: str, port: int, resolver: Resolver, policy: Policy | None
) -> list[str]:
    """Resolve `host` and return its addresses in connection order; refuse any refused one."""
    try:
        addresses = await resolver(host, port)
    except (OSError, UnicodeError) as exc:  # socket.gaierror: kept as the cause for DNS errors
        cause = exc if isinstance(exc, OSError) else socket.gaierror(str(exc))
        raise httpx.ConnectError(str(exc) or type(exc).__name__) from cause
    if not addresses:
        raise httpx.ConnectError(f"no addresses for {host}") from socket.gaierror(host)
    if policy is not None:
        for address in addresses:
            reason = policy(address)
            if reason is not None:
                raise AddressRefusedError(host, reason)
    return interleave(addresses)


async def race(
    addresses: list[str],
    port: int,
    factory: Callable[[], asyncio.Protocol],
    opener: Opener,
    delay: float = ATTEMPT_DELAY,
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    """Connect to the first of `addresses` that answers, starting one attempt per `delay`.

    An attempt that fails starts the next one at once. The winner is returned; every other
    attempt is cancelled or closed. Raises httpx.ConnectError (caused by the first attempt's
    error) when all fail; the caller bounds the whole race with its connect budget.
    """
    attempts = [functools.partial(opener, factory, address, port) for address in addresses]
    try:
        return await _staggered(attempts, delay, lambda pair: pair[0].close())
    except _AllFailedError as failed:
        first = failed.errors[0]
        raise httpx.ConnectError(str(first) or type(first).__name__) from first


class _AllFailedError(Exception):
    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__(f"{len(errors)} attempts failed")
        self.errors = errors


async def _staggered(
    attempts: Sequence[Callable[[], Awaitable[T]]], delay: float, discard: Callable[[T], None]
) -> T:
    """Return the first attempt to succeed; start one per `delay`, or at once after a failure.

    Every other attempt is cancelled, or `discard`ed when it succeeded too. Raises
    _AllFailedError with the errors in the order they came when every attempt failed.
    """
    waiting = list(reversed(attempts))
    running: set[asyncio.Future[T]] = set()
    errors: list[BaseException] = []
    try:
        while True:
            if waiting:
                running.add(asyncio.ensure_future(waiting.pop()()))
            done, _ = await asyncio.wait(
                running, timeout=delay if waiting else None, return_when=asyncio.FIRST_COMPLETED
            )
            winners: list[T] = []
            for attempt in done:
                running.discard(attempt)
                error = attempt.exception()
                if error is not None:
                    errors.append(error)
                else:
                    winners.append(attempt.result())
            if winners:
                for extra in winners[1:]:
                    discard(extra)  # two at once: keep one
                return winners[0]
            if not running and not waiting:
                raise _AllFailedError(errors)
    finally:
        for attempt in running:
            attempt.cancel()
        for outcome in await asyncio.gather(*running, return_exceptions=True):
            if not isinstance(outcome, BaseException):
                discard(outcome)  # it succeeded as it was cancelled


class _TunnelProtocol(asyncio.Protocol):
    """Read a proxy's answer to CONNECT; hand the connection over once it says 2xx."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            if end + 4 < len(self._buffer):  # bytes from the target before we spoke: refuse
                self._settle(httpx.ProxyError("the proxy sent data after its CONNECT answer"))
            else:
                self.answer.set_result(self._buffer[:end])
        elif len(self._buffer) > MAX_PROXY_HEAD:
            self._settle(httpx.ProxyError("the proxy's CONNECT answer is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(httpx.ProxyError("the proxy closed the connection during CONNECT"))

    def _settle(self, error: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(error)


async def open_connection(
    scheme: str,
    host: str,
    port: int,
    addresses: list[str],
    *,
    tls_context: ssl.SSLContext,
    opener: Opener | None = None,
    proxy: ProxyRoute | None = None,
    offload: bool = True,
) -> HttpConnection:
    """Connect to the first of the checked `addresses` that answers; start TLS for https.

    The TLS handshake runs on; await the connection's `ready` before sending. Raises
    httpx.ConnectError or httpx.ProxyError; the caller bounds it with the connect budget.
    """
    open_ = opener or asyncio.get_running_loop().create_connection

    def new_connection() -> HttpConnection:
        tls = TlsSession(tls_context, host) if scheme == "https" else None
        return HttpConnection(tls, offload=offload)

    if proxy is None:
        _, protocol = await race(addresses, port, new_connection, open_)
        return cast(HttpConnection, protocol)
    return await _through_proxy(proxy, addresses, port, new_connection, open_)


async def _through_proxy(
    proxy: ProxyRoute,
    addresses: list[str],
    port: int,
    new_connection: Callable[[], HttpConnection],
    opener: Opener,
) -> HttpConnection:
    """Tunnel to the first checked address the proxy reaches; return the connection on it.

    Tunnels to the addresses are raced like direct connections (Happy Eyeballs): a target
    address the proxy cannot reach costs ATTEMPT_DELAY, not the connect budget. The proxy's
    own name goes to the system resolver, not to the policy: it is the operator's host,
    often on a private network.
    """
    try:
        proxy_addresses = interleave(await resolve(proxy.host, proxy.port))
    except (OSError, UnicodeError) as exc:
        raise httpx.ProxyError(f"the egress proxy's name does not resolve: {exc}") from exc

    async def tunnel(address: str) -> HttpConnection:
        try:
            transport, protocol = await race(proxy_addresses, proxy.port, _TunnelProtocol, opener)
        except httpx.ConnectError as exc:
            raise httpx.ProxyError(f"the egress proxy is unreachable: {exc}") from exc
        authority = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        request = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        if proxy.authorization is not None:
            request += f"Proxy-Authorization: {proxy.authorization}\r\n"
        cast(asyncio.Transport, transport).write(request.encode("latin-1") + b"\r\n")
        try:
            head = await cast(_TunnelProtocol, protocol).answer
        except BaseException:
            transport.close()
            raise
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")[:100]
        parts = status_line.split(" ", 2)
        status = parts[1] if len(parts) >= 2 and parts[0].startswith("HTTP/1.") else ""
        if status.startswith("2") and not transport.is_closing():
            connection = new_connection()
            transport.set_protocol(connection)
            connection.connection_made(transport)
            return connection
        transport.close()
        if status.startswith("2"):
            raise httpx.ProxyError("the egress proxy closed the tunnel it had opened")
        if status in _TARGET_UNREACHABLE:
            # The proxy tried and the target did not answer: the endpoint's failure.
            raise httpx.ConnectError(f"the egress proxy could not reach {authority}: {status}")
        raise httpx.ProxyError(f"the egress proxy refused the tunnel: {status_line!r}")

    attempts = [functools.partial(tunnel, address) for address in addresses]
    try:
        return await _staggered(attempts, ATTEMPT_DELAY, HttpConnection.close)
    except _AllFailedError as failed:
        # The monitor's own problem (the proxy) first; else the endpoint's (unreachable).
        proxy_errors = [e for e in failed.errors if isinstance(e, httpx.ProxyError)]
        raise (proxy_errors or failed.errors)[0] from None
