"""A lean HTTP/1.1 transport for httpx: asyncio protocols, httptools parsing, the address guard.

Part of the probe edge. httpx's own transport (httpcore + h11, pure Python) costs about 1 ms
of CPU per request and re-checks every idle keep-alive connection on each request; this one
parses with httptools (llhttp, the parser behind uvicorn and Node.js), learns that an idle
connection was closed from `connection_lost` instead of polling it, and keeps the httpx API:
it takes an `httpx.Request` and returns an `httpx.Response` whose stream reads the socket.

Connections are opened by `monitor.probe.connect` (address policy, Happy Eyeballs, egress
proxy) and carry TLS themselves (`monitor.probe.tls`); TLS keeps the URL's host name for SNI
and certificate checks. An idle connection is reused only if the server sent nothing since its
last answer: bytes that arrive on an idle connection close it, and a connection whose socket
holds unread bytes when it is taken from the pool is closed instead of reused, so a late or
unsolicited answer can never be read as the answer to the next request (keep-alive desync).
"""

from __future__ import annotations

import asyncio
import re
import select
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

import httpx

from monitor.probe.connect import (
    AddressRefusedError,
    Opener,
    Policy,
    ProxyChoice,
    ProxyRoute,
    Resolver,
    checked_addresses,
    open_connection,
)
from monitor.probe.connection import HttpConnection
from monitor.probe.dns import resolve

__all__ = [
    "AddressRefusedError",
    "Http1Transport",
    "Policy",
    "ProxyChoice",
    "ProxyRoute",
    "Resolver",
    "resolve",
]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""RFC 9110 token: what a method and a header name may be (no CR, LF, space or colon)."""


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

    `policy=None` allows every address (config `allow_private_addresses`); `proxies` sends
    connections through an HTTP egress proxy (CONNECT to the checked address). At most
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
        proxies: ProxyChoice | None = None,
        max_idle: int = 100,
        keepalive_expiry: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        handshake_offload: bool = True,
    ) -> None:
        self._ssl = ssl_context
        self._policy = policy
        self._resolver = resolver
        self._opener = opener
        self._proxies = proxies
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._clock = clock
        """Seconds, for keep-alive ages only (tests pass a fake one)."""
        self._offload = handshake_offload
        """Check certificates in the handshake thread pool (False: on the loop; benchmarks)."""
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
        # The ASCII (IDNA) form: what DNS and SNI need, and never an exception (`url.host`
        # raises for some A-labels such as `xn--a.com`).
        host = url.raw_host.decode("ascii", "replace")
        if not host:
            raise httpx.UnsupportedProtocol("the URL has no host")
        origin: _Origin = (url.scheme, host, url.port or (443 if url.scheme == "https" else 80))
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
            connection.send(payload)
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
        now = self._clock()
        while connections:
            connection = connections.pop()
            del self._idle[id(connection)]
            if not connections:
                del self._by_origin[origin]
            fresh = now - connection.idle_since < self._expiry
            if not connection.closed and fresh and not _has_unread_bytes(connection):
                return connection
            connection.close()
        return None

    def release(self, origin: _Origin, connection: HttpConnection) -> None:
        """Keep a connection whose response was fully read; close any other."""
        self._active.discard(connection)
        if self._closed or not connection.reusable():
            connection.close()
            return
        now = self._clock()
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
        """Open a connection within one connect budget: resolution, connect race, TLS."""
        scheme, host, port = origin
        stage = f"DNS lookup for {host}"
        connection: HttpConnection | None = None
        try:
            async with asyncio.timeout(timeout):
                addresses = await checked_addresses(host, port, self._resolver, self._policy)
                stage = f"connect to {host}:{port}"
                connection = await open_connection(
                    scheme,
                    host,
                    port,
                    addresses,
                    tls_context=self._ssl,
                    opener=self._opener,
                    proxy=self._proxies.route_for(scheme, host) if self._proxies else None,
                    offload=self._offload,
                )
                stage = f"TLS handshake with {host}:{port}"
                await connection.ready
                return connection
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"{stage} timed out") from exc
            raise

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


def _has_unread_bytes(connection: HttpConnection) -> bool:
    """Return whether the socket of an idle connection is readable (data, EOF or an error).

    The loop may not have delivered what arrived since the connection went idle; a zero-wait
    poll of the socket is the last word before the connection carries another request.
    (`poll`, not `select`: descriptors above 1,023 are common with a raised open-file limit.)
    """
    transport = connection.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True
