"""A lean HTTP/1.1 transport for httpx: asyncio protocols, httptools parsing, the address guard.

Part of the probe edge. httpx's own transport (httpcore + h11, pure Python) costs about 1 ms
of CPU per request and re-checks every idle keep-alive connection on each request; this one
parses with httptools (llhttp, the parser behind uvicorn and Node.js), learns that an idle
connection was closed from `connection_lost` instead of polling it, and keeps the httpx API:
it takes an `httpx.Request` and returns an `httpx.Response` whose stream reads the socket.

Address policy: `connect` resolves the host itself, refuses the connection when ANY resolved
address is refused (a name that also points inward is not trusted for its outward addresses
either), and connects to the address it checked, so DNS cannot change between check and use
(rebinding). TLS keeps the URL's host name for SNI and certificate checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import httpx

from monitor.probe.connection import HttpConnection

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolve (host, port) to IP address strings, in the order to try them."""
Policy = Callable[[str], str | None]
"""An IP address -> why it may not be probed, or None when it may."""
Opener = Callable[..., Awaitable[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]]
"""`loop.create_connection`'s signature; tests pass a recording one."""

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110 token: what a method and a header name may be (no CR, LF, space or colon)."""


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
    literal = host[1:-1] if host.startswith("[") else host
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(literal))]  # no resolver thread for an IP literal
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _ResponseStream(httpx.AsyncByteStream):
    """The body of one response; closing it returns the connection to the pool or closes it."""

    def __init__(self, pool: Http1Transport, origin: _Origin, connection: HttpConnection) -> None:
        self._pool = pool
        self._origin = origin
        self._connection = connection
        self.read_timeout: float | None = None
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._connection.next_chunk(self.read_timeout)
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._origin, self._connection)


_Origin = tuple[str, str, int]


class Http1Transport(httpx.AsyncBaseTransport):
    """Send requests over pooled HTTP/1.1 connections (http and https), guarded by `policy`.

    `policy=None` allows every address (config `allow_private_addresses`). At most
    `max_idle` idle keep-alive connections are kept, the least recently used closed first,
    and none longer than `keepalive_expiry` seconds. A request whose reused connection turns
    out to be closed before any answer arrives is sent once more on a new connection.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        policy: Policy | None,
        resolver: Resolver = resolve,
        opener: Opener | None = None,
        max_idle: int = 100,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._ssl = ssl_context
        self._policy = policy
        self._resolver = resolver
        self._opener = opener
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._idle: OrderedDict[int, tuple[_Origin, HttpConnection]] = OrderedDict()
        self._by_origin: dict[_Origin, list[HttpConnection]] = {}
        self._active: set[HttpConnection] = set()
        """Connections with a request or an unread response on them."""
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; return the response with its body still to be read."""
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
        if not url.host:
            raise httpx.UnsupportedProtocol("the URL has no host")
        origin: _Origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        connect_timeout, read_timeout = timeouts.get("connect"), timeouts.get("read")
        payload = _serialise(request, await _body(request))
        connection = self._take_idle(origin)
        while True:
            reused = connection is not None
            if connection is None:
                connection = await self._connect(origin, connect_timeout)
            try:
                return await self._exchange(
                    origin, connection, payload, request.method, read_timeout
                )
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # A kept-alive connection the server closed as we reused it: nothing was
                # answered, so send once more on a new connection (what browsers do).
                if not (reused and connection.received == 0 and connection.closed):
                    raise
                connection = None

    async def _exchange(
        self,
        origin: _Origin,
        connection: HttpConnection,
        payload: bytes,
        method: str,
        read_timeout: float | None,
    ) -> httpx.Response:
        assert connection.transport is not None
        connection.in_use = True
        self._active.add(connection)
        try:
            connection.transport.write(payload)
            async with asyncio.timeout(read_timeout):
                await connection.head
        except TimeoutError as exc:
            self._abandon(connection)
            raise httpx.ReadTimeout("timed out waiting for the response") from exc
        except BaseException:
            self._abandon(connection)
            raise
        if method == "HEAD":
            connection.complete = True  # no body follows a HEAD answer, whatever it declares
            connection.keep_alive = False
        stream = _ResponseStream(self, origin, connection)
        stream.read_timeout = read_timeout
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=stream,
            extensions={"http_version": b"HTTP/" + connection.version.encode("ascii")},
        )

    def _abandon(self, connection: HttpConnection) -> None:
        connection.in_use = False  # nobody awaits its answer any more
        self._active.discard(connection)
        connection.close()

    def _take_idle(self, origin: _Origin) -> HttpConnection | None:
        connections = self._by_origin.get(origin)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            del self._idle[id(connection)]
            if not connections:
                del self._by_origin[origin]
            if not connection.closed and now - connection.idle_since < self._expiry:
                return connection
            connection.close()
        return None

    def release(self, origin: _Origin, connection: HttpConnection) -> None:
        """Keep a connection whose response was fully read; close any other."""
        self._active.discard(connection)
        if self._closed or not connection.reusable():
            connection.close()
            return
        now = time.monotonic()
        connection.recycle(now)
        self._by_origin.setdefault(origin, []).append(connection)
        self._idle[id(connection)] = (origin, connection)
        # Oldest first: over the bound, expired, or closed by the server while idle.
        while self._idle:
            old_origin, old = next(iter(self._idle.values()))
            fresh = now - old.idle_since < self._expiry
            if len(self._idle) <= self._max_idle and not old.closed and fresh:
                break
            self._idle.popitem(last=False)
            self._by_origin[old_origin].remove(old)
            if not self._by_origin[old_origin]:
                del self._by_origin[old_origin]
            old.close()

    async def _connect(self, origin: _Origin, timeout: float | None) -> HttpConnection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolver(host, port)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"DNS lookup for {host} timed out") from exc
        except OSError as exc:  # socket.gaierror: kept as the cause for DNS detection
            raise httpx.ConnectError(str(exc)) from exc
        if not addresses:
            raise httpx.ConnectError(f"no addresses for {host}") from socket.gaierror(host)
        if self._policy is not None:
            for address in addresses:
                reason = self._policy(address)
                if reason is not None:
                    raise AddressRefusedError(host, reason)
        opener = self._opener or asyncio.get_running_loop().create_connection
        tls = self._ssl if scheme == "https" else None
        last: Exception | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(timeout):
                    _, protocol = await opener(
                        HttpConnection,
                        address,
                        port,
                        ssl=tls,
                        server_hostname=host if tls is not None else None,
                    )
            except TimeoutError as exc:
                last = httpx.ConnectTimeout(f"connect to {host}:{port} timed out")
                last.__cause__ = exc
            except OSError as exc:  # refused, unreachable, TLS (ssl.SSLError is an OSError)
                last = httpx.ConnectError(str(exc) or type(exc).__name__)
                last.__cause__ = exc
            else:
                return cast(
                    HttpConnection, protocol
                )  # try the next address only when this one failed
        assert last is not None
        raise last

    async def aclose(self) -> None:
        """Close every connection, idle or answering; responses still open fail to read on."""
        self._closed = True
        for _, connection in self._idle.values():
            connection.close()
        for connection in self._active:
            connection.close()
        self._idle.clear()
        self._by_origin.clear()
        self._active.clear()


async def _body(request: httpx.Request) -> bytes:
    """Return the request body as framed on the wire (probes send small JSON bodies)."""
    try:
        return request.content
    except httpx.RequestNotRead:
        pass
    if not isinstance(request.stream, httpx.AsyncByteStream):
        raise httpx.LocalProtocolError("a synchronous request body on an async transport")
    body = b"".join([chunk async for chunk in request.stream])
    if request.headers.get("transfer-encoding", "").lower() == "chunked":
        return (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    return body


def _serialise(request: httpx.Request, body: bytes) -> bytes:
    """Return the request's bytes on the wire: request line, headers, body."""
    method = request.method.encode("ascii", "replace")
    if not _TOKEN.fullmatch(method):
        raise httpx.LocalProtocolError(f"invalid method {request.method!r}")
    parts = [method, b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if not _TOKEN.fullmatch(name):
            raise httpx.LocalProtocolError(f"invalid header name {name!r}")
        if b"\r" in value or b"\n" in value:
            raise httpx.LocalProtocolError(f"header {name!r} contains a line break")
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)
