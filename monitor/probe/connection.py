"""One HTTP/1.1 client connection: an asyncio protocol that parses answers with httptools.

Part of the probe edge, used by `monitor.probe.http1.Http1Transport`. The protocol turns the
bytes of one answer into a status, headers (bounded in size) and body chunks (with
back-pressure); it learns from `connection_lost` that a server closed the connection, so an
idle connection never needs polling before reuse.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools
import httpx

MAX_HEAD_BYTES = 100 * 1024
"""Status line plus headers, as httpcore bounds them (h11's incomplete-event limit)."""
PAUSE_ABOVE = 256 * 1024
"""Unread body bytes buffered before the socket stops being read (back-pressure)."""
_SWITCHING_PROTOCOLS = 101


def _head_too_large() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection: parses responses into a head future and body chunks."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.lost: BaseException | None = None
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.keep_alive = False
        self.framed = False
        """The body length is known (Content-Length or chunked), so EOF before it is an error."""
        self.complete = False
        self.received = 0
        self.head_bytes = 0
        self.version = "1.1"
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.in_use = False

    # asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not subclass asyncio.Transport, hence no isinstance).
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = self.lost or exc
        if not self.head.done():
            error: httpx.TransportError = (
                httpx.ReadError(f"connection lost: {exc}")
                if isinstance(exc, OSError)
                else httpx.RemoteProtocolError("server disconnected without sending a response")
            )
            error.__cause__ = exc
            self._settle(error)
        elif not self.framed and exc is None:
            self.complete = True  # a body delimited by the end of the connection has ended
        self._wake()

    def data_received(self, data: bytes) -> None:
        if not self.in_use:
            self.close()  # bytes nobody asked for on an idle connection: never reuse it
            return
        if not self.head.done():
            self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # 101 Switching Protocols: what follows is another protocol, not HTTP to parse.
            self.complete = True
            self.keep_alive = False
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))
            return
        if not self.head.done() and self.received > MAX_HEAD_BYTES:
            self._fail(_head_too_large())

    def _fail(self, error: Exception) -> None:
        if not self.head.done():
            self._settle(error)
        self.lost = error
        self.close()

    def _settle(self, error: Exception) -> None:
        """Fail the pending answer; an idle or abandoned (timed out) one is awaited by nobody."""
        self.head.set_exception(error)
        if not self.in_use:
            self.head.exception()  # retrieved: nobody asked, so nothing to log

    # httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.head.done():
            self.headers.append((name, value))
            self.head_bytes += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if self.head.done():
            self.keep_alive = False  # a second answer to one request: never reuse this socket
            return
        if 100 <= status < 200 and status != _SWITCHING_PROTOCOLS:
            self.headers = []  # an interim answer (100 Continue, 103 Early Hints): skip it
            return
        if self.head_bytes > MAX_HEAD_BYTES:  # a head that arrived in one large read
            self._fail(_head_too_large())
            return
        self.status = status
        self.version = self.parser.get_http_version()
        self.keep_alive = self.parser.should_keep_alive() and status != _SWITCHING_PROTOCOLS
        names = {name.lower() for name, _ in self.headers}
        self.framed = b"content-length" in names or b"transfer-encoding" in names
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return  # bytes after the end of the answer: dropped, the socket is not reused
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_ABOVE and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.head.done():
            self.complete = True
            self._wake()

    # the transport's side ----------------------------------------------------------------

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next_chunk(self, timeout: float | None) -> bytes | None:
        """Return the next body chunk, or None at the end of the body."""
        while not self.chunks:
            if self.complete:
                return None
            if self.closed:
                if isinstance(self.lost, OSError):
                    raise httpx.ReadError(f"connection lost: {self.lost}") from self.lost
                raise httpx.RemoteProtocolError(
                    "server closed the connection before the end of the body"
                ) from self.lost
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            except TimeoutError as exc:
                raise httpx.ReadTimeout("timed out reading the response body") from exc
            finally:
                self.waiter = None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered <= PAUSE_ABOVE and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    def reusable(self) -> bool:
        """Whether the response was read to its end on a connection that may be reused."""
        return self.complete and self.keep_alive and not self.closed and not self.chunks

    def recycle(self, now: float) -> None:
        """Make the connection ready for the next request."""
        self._reset()
        self.idle_since = now

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
