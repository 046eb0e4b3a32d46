"""A scripted loopback HTTP server and client helpers for the probe transport's tests.

Every server is a real `asyncio.start_server` on 127.0.0.1 (port 0) whose answers are scripted
byte for byte, so malformed, split, stalled or over-long answers can be sent at will; the
server counts accepted connections and records each request's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, ParamSpec, Self

import httpx

from monitor.probe import Http1Transport
from monitor.probe.connection import HttpConnection

DEADLINE_S = 120.0
"""No test may take longer: a hang is a failure, not a stuck run (generous: CI is busy).

Longer than `WAIT_S`, so a wait that never ends fails with its own message first."""

WAIT_S = 30.0
"""How long a test waits for an event, and the default request timeouts (generous: CI is busy)."""

P = ParamSpec("P")


def asyncio_test(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test in a fresh event loop, failing it after `DEADLINE_S`."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), DEADLINE_S))

    return run


# A scripted server ----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as the server read it off the wire."""

    raw: bytes
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


@dataclass(frozen=True)
class Pause:
    """A scripted step: wait this long before the next step."""

    seconds: float


@dataclass(frozen=True)
class Wait:
    """A scripted step: wait until the test sets `event`."""

    event: asyncio.Event


Step = bytes | Pause | Wait | Literal["close", "reset"]
"""Send bytes, pause, wait for the test, close (FIN), or reset (RST) the connection."""
Script = Sequence[Step]


class Peer:
    """One accepted connection, seen from the server."""

    def __init__(
        self,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        log: list[Received],
    ) -> None:
        self.index = index
        self.reader = reader
        self.writer = writer
        self.requests: list[Received] = []
        self.sent = 0
        self.eof = asyncio.Event()
        """Set when the client closed the connection (the server read EOF or a reset)."""
        self.hung_up = asyncio.Event()
        """Set when the server closed the connection itself."""
        self.done = asyncio.Event()
        """Set when the handler of this connection has returned."""
        self._log = log

    async def request(self) -> Received | None:
        """Read one request (head and body); None once the client has closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eof.set()
            return None
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines[1:])]
        names = {name.lower(): value for name, value in headers}
        if names.get("transfer-encoding", "").lower() == "chunked":
            body = await self.reader.readuntil(b"0\r\n\r\n")
        else:
            body = await self.reader.readexactly(int(names.get("content-length", "0")))
        received = Received(head + body, method, target, headers, body)
        self.requests.append(received)
        self._log.append(received)
        return received

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()
        self.sent += len(data)

    async def play(self, script: Script) -> bool:
        """Play the steps of `script`; return False when it closed the connection."""
        for step in script:
            if isinstance(step, bytes):
                await self.send(step)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Wait):
                await step.event.wait()
            elif step == "close":
                await self.hang_up()
                return False
            else:
                sock = self.writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.writer.transport.abort()
                self.hung_up.set()
                return False
        return True

    async def hang_up(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        self.hung_up.set()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def read_to_eof(self) -> None:
        """Discard what the client sends until it closes the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.eof.set()


Handler = Callable[[Peer], Coroutine[Any, Any, None]]


class Server:
    """A loopback server: each accepted connection is served by `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.peers: list[Peer] = []
        self.requests: list[Received] = []
        """Every request, on every connection, in the order they arrived."""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, target: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{target}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(len(self.peers), reader, writer, self.requests)
        self.peers.append(peer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            peer.eof.set()  # the client went away mid-script
        except asyncio.CancelledError:
            pass  # the test is over (ending the task quietly: asyncio.streams logs otherwise)
        finally:
            if not writer.is_closing():
                writer.close()
            peer.done.set()


def answering(*scripts: Script) -> Handler:
    """Answer the n-th request (counted over all connections) with the n-th script.

    A request beyond the scripts is answered by hanging up, so the test sees an error.
    After its scripts the handler keeps reading requests until the client closes.
    """
    pending = deque(scripts)

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            if not pending:
                await peer.hang_up()
                return
            if not await peer.play(pending.popleft()):
                return

    return handle


def answer(
    body: bytes = b"ok", *headers: str, status: str = "200 OK", version: str = "HTTP/1.1"
) -> bytes:
    """Return a complete answer with a Content-Length body."""
    lines = [f"{version} {status}", *headers, f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# The client side --------------------------------------------------------------------------


def new_transport(**options: Any) -> Http1Transport:
    return Http1Transport(ssl_context=ssl.create_default_context(), policy=None, **options)


def request(
    url: str, method: str = "GET", *, read: float = WAIT_S, connect: float = WAIT_S, **options: Any
) -> httpx.Request:
    timeout = {"connect": connect, "read": read, "write": read, "pool": read}
    return httpx.Request(method, url, extensions={"timeout": timeout}, **options)


async def fetch(
    pool: Http1Transport, url: str, method: str = "GET", **options: Any
) -> tuple[httpx.Response, bytes]:
    """Send one request, read the whole body, close the response."""
    response = await pool.handle_async_request(request(url, method, **options))
    try:
        body = await response.aread()
    finally:
        await response.aclose()
    return response, body


class FakeClock:
    """A clock (seconds) that moves only when the test moves it: keep-alive ages on demand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """An opener (`loop.create_connection`) that keeps each connection's protocol."""

    def __init__(self) -> None:
        self.connections: list[HttpConnection] = []

    async def __call__(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        host: str,
        port: int,
        *,
        ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(
            factory, host, port, ssl=ssl, server_hostname=server_hostname
        )
        assert isinstance(protocol, HttpConnection)
        self.connections.append(protocol)
        return transport, protocol


async def until(
    condition: Callable[[], bool], what: str = "the condition", timeout: float = WAIT_S
) -> None:
    """Wait inside the event loop until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {timeout:g} s"
        await asyncio.sleep(0.002)


async def seen(event: asyncio.Event, timeout: float = WAIT_S) -> None:
    await asyncio.wait_for(event.wait(), timeout)
