"""One HTTP/1.1 client connection: an asyncio protocol that parses answers with httptools.

Part of the probe edge, used by `monitor.probe.http1.Http1Transport`. The protocol turns the
bytes of one answer into a status, headers (bounded in size) and body chunks (with
back-pressure); it learns from `connection_lost` that a server closed the connection, so an
idle connection never needs polling before reuse.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import cast

import httptools
import httpx

from monitor.probe.tls import TlsSession, handshake_executor

MAX_HEAD_BYTES = 100 * 1024
"""Status line plus headers, as httpcore bounds them (h11's incomplete-event limit)."""
PAUSE_ABOVE = 256 * 1024
"""Unread body bytes buffered before the socket stops being read (back-pressure)."""
_SWITCHING_PROTOCOLS = 101


def _head_too_large() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection: parses responses into a head future and body chunks."""

    def __init__(self, tls: TlsSession | None = None, *, offload: bool = True) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.lost: BaseException | None = None
        self.idle_since = 0.0
        self._tls = tls
        self._offload = offload
        """Run the certificate-checking handshake steps in the handshake thread pool."""
        self._unsent = b""
        """TLS records held back to go out with the first request (the client's Finished)."""
        self._held: list[bytes] | None = None
        """Bytes that arrived while a handshake step runs in a worker thread (else None)."""
        self.server_hostname = tls.server_hostname if tls is not None else None
        """The name TLS checks the certificate against (None without TLS)."""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done when the connection can carry a request (TLS established); fails otherwise."""
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
        if self._tls is None:
            self.ready.set_result(None)
        else:
            self._handshake(offload=False)  # the ClientHello: cheap, and nothing to verify yet

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = self.lost or exc
        if not self.ready.done() and self._held is None:  # else the running step settles it
            unready = httpx.ConnectError(
                f"connection closed during the TLS handshake: {exc}"
                if exc is not None
                else "server closed the connection during the TLS handshake"
            )
            unready.__cause__ = exc
            self.ready.set_exception(unready)
            self.ready.exception()  # retrieved: whoever awaits `ready` sees it too
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
        if self._tls is not None:
            if self._held is not None:
                self._held.append(data)
                return
            self._tls.receive(data)
            if not self._tls.established:
                self._handshake(offload=True)
                return
            try:
                data = self._tls.decrypt()
            except ssl.SSLError as exc:
                self._fail(httpx.RemoteProtocolError(f"TLS error: {exc}"))
                return
            if data:  # else records without application data (session tickets, close_notify)
                self._http_received(data)
            if self._tls.eof and not self.closed and self.transport is not None:
                # close_notify: the server is done. Answer it and close at once (servers may
                # wait for our alert), so a body delimited by the end of the connection ends
                # here and an idle connection is never handed out again.
                if self.head.done() and not self.framed:
                    self.complete = True
                self.transport.write(self._tls.close())
                self.close()
                self._wake()
            return
        self._http_received(data)

    def _http_received(self, data: bytes) -> None:
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

    # TLS ---------------------------------------------------------------------------------

    def _handshake(self, *, offload: bool) -> None:
        """Run one handshake step, in a worker thread when it may verify certificates."""
        assert self._tls is not None
        if not (offload and self._offload):
            try:
                established = self._tls.step()
            except ssl.SSLError as exc:
                self._handshake_failed(exc)
                return
            self._handshake_stepped(established, [])
            return
        self._held = []
        if self.transport is not None:
            self.transport.pause_reading()  # what arrives meanwhile waits in the kernel
        step = asyncio.get_running_loop().run_in_executor(handshake_executor(), self._tls.step)
        step.add_done_callback(self._offloaded_step_done)

    def _offloaded_step_done(self, step: asyncio.Future[bool]) -> None:
        held, self._held = self._held or [], None
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()
        try:
            established = step.result()
        except Exception as exc:  # ssl.SSLError, or a worker that could not run the step
            self._handshake_failed(exc)
            return
        if self.closed and not established:
            # The server hung up while the step ran: what it sent last (an alert) says why.
            assert self._tls is not None
            for data in held:
                self._tls.receive(data)
            self._handshake(offload=False)
            if not self.ready.done():
                self._handshake_failed(ConnectionResetError("closed during the TLS handshake"))
            return
        self._handshake_stepped(established, held)

    def _handshake_stepped(self, established: bool, held: list[bytes]) -> None:
        assert self._tls is not None
        assert self.transport is not None
        outgoing = self._tls.outgoing()
        if not established:
            if outgoing:
                self.transport.write(outgoing)
            if held:
                for data in held:
                    self._tls.receive(data)
                self._handshake(offload=True)
            return
        if not self.ready.done():
            self.ready.set_result(None)  # wakes the request's sender on the next loop turn
        if outgoing:
            # The client's Finished goes out with the request that follows: one packet and one
            # system call fewer. Flushed after the sender's turn if no request came in it.
            self._unsent = outgoing
            asyncio.get_running_loop().call_soon(self._flush_unsent)
        for data in held:
            self.data_received(data)

    def _handshake_failed(self, exc: Exception) -> None:
        if not self.ready.done():
            error = httpx.ConnectError(str(exc) or type(exc).__name__)
            error.__cause__ = exc
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: whoever awaits `ready` sees it too
        self.close()

    def send(self, payload: bytes) -> None:
        """Write request bytes (encrypted on a TLS connection).

        Raises httpx.RemoteProtocolError when the connection closed before anything was sent,
        so the transport may retry on a new connection.
        """
        assert self.transport is not None
        if self.closed:
            raise httpx.RemoteProtocolError("the connection closed before the request was sent")
        if self._tls is None:
            self.transport.write(payload)
            return
        try:
            records = self._tls.encrypt(payload)
        except ssl.SSLError as exc:  # the session ended (close_notify) while idle
            self.close()
            raise httpx.RemoteProtocolError(f"TLS session ended: {exc}") from exc
        unsent, self._unsent = self._unsent, b""
        self.transport.write(unsent + records)

    def _flush_unsent(self) -> None:
        if self._unsent and self.transport is not None and not self.closed:
            self.transport.write(self._unsent)
        self._unsent = b""

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

    def on_message_begin(self) -> None:
        if self.complete:
            self.keep_alive = False  # a second answer began after ours: never reuse this socket

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
                if isinstance(self.lost, httpx.TransportError):
                    raise self.lost  # what made us close it (an invalid answer, a long head)
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
