"""Hostile HTTP for the discovery tests: decompression bombs, a raw loopback server, a watch.

`zero_bomb` streams 1 GiB of zeros as gzip, zlib or raw deflate block by block (about 1 MB on
the wire, never held whole); `stacked_gzip_bomb` is the same gzipped twice (a few KB).
`RawServer` answers on 127.0.0.1 from its own threads, so a stalled event loop on the client's
side cannot slow the server down; the `serve` fixture of conftest.py starts them. `watched`
runs a coroutine beside a 10 ms ticker and returns what it gave, its peak traced memory and the
event loop's longest stall (CPU time, so a busy machine does not stretch it: loop_watch.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loop_watch import watching_the_loop

T = TypeVar("T")
GIB = 1 << 30
MIB = 1 << 20
LIMIT = MIB
"""The byte limit the tests read with: small, so that a bomb is obvious against it."""
MEMORY_SLACK = 8 * MIB
"""Peak traced memory allowed above the limit (buffers, the decoder, httpx)."""
MAX_TICK_GAP_S = 1.0
"""A generous bound on the event loop's longest stall in CPU time (a 10 ms ticker; one-step
decoding of a bomb stalls it for seconds)."""
Body = Callable[[], Iterable[bytes]]
"""A response body, generated on demand."""
JSON_PAGE = json.dumps({"items": [], "pagination": {"total": 0}}).encode()

_ZEROS = bytes(MIB)


@functools.cache
def _deflate_pieces(wbits: int) -> tuple[bytes, bytes]:
    """Return (stream header, one full-flushed block of 1 MiB of zeros) for a deflate format.

    After Z_FULL_FLUSH the compressor forgets its history, so every further MiB of zeros
    compresses to the same bytes: a stream of any size is the header and that block repeated.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(_ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(_ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert first.endswith(block)
    return first[: len(first) - len(block)], block


@functools.cache
def _crc32_of_zeros(size: int) -> int:
    crc = 0
    for _ in range(size // MIB):
        crc = zlib.crc32(_ZEROS, crc)
    return crc


WBITS = {"gzip": 16 + zlib.MAX_WBITS, "zlib": zlib.MAX_WBITS, "raw": -zlib.MAX_WBITS}


def zero_bomb(form: str, size: int = GIB) -> Iterator[bytes]:
    """Yield `size` (a multiple of 1 MiB) zero bytes compressed as gzip, zlib or raw deflate."""
    head, block = _deflate_pieces(WBITS[form])
    yield head
    for _ in range(size // MIB):
        yield block
    yield b"\x03\x00"  # a final, empty fixed-Huffman block ends the deflate stream
    if form == "gzip":
        yield struct.pack("<II", _crc32_of_zeros(size), size & 0xFFFFFFFF)
    elif form == "zlib":
        yield struct.pack(">I", (size % 65521) << 16 | 1)  # Adler-32 of zeros


@functools.cache
def stacked_gzip_bomb() -> bytes:
    """Return 1 GiB of zeros gzipped twice (`Content-Encoding: gzip, gzip`): a few KB."""
    outer = zlib.compressobj(9, zlib.DEFLATED, WBITS["gzip"])
    parts = [outer.compress(chunk) for chunk in zero_bomb("gzip")]
    parts.append(outer.flush())
    return b"".join(parts)


BOMBS: list[tuple[str, Body]] = [
    ("gzip", lambda: zero_bomb("gzip")),
    ("x-gzip", lambda: zero_bomb("gzip")),
    ("gzip, gzip", lambda: [stacked_gzip_bomb()]),
    ("deflate", lambda: zero_bomb("zlib")),
    ("deflate", lambda: zero_bomb("raw")),
]
"""(Content-Encoding, body) of each bomb: 1 GiB of zeros once decoded."""
BOMB_IDS = ["gzip", "x-gzip", "stacked", "zlib", "raw"]


@dataclass
class Route:
    """One scripted answer: status line, headers and a body generated on demand."""

    status: str = "200 OK"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    body: Body = lambda: [JSON_PAGE]


class RawServer:
    """Answer each request on 127.0.0.1 with the Route for its path; close after each answer.

    The body is delimited by closing the connection (no Content-Length), so a generated body
    of any size can be streamed; a client that stops reading gets the connection reset.
    """

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.paths: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._closed = False
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._answer, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = connection.recv(4096)
                if not data:
                    return
                head += data
            target = head.split(b" ", 2)[1].decode()
            path = target.split("?", 1)[0]
            self.paths.append(target)
            route = self.routes.get(path, Route("404 Not Found", {}, lambda: [b"no"]))
            lines = [f"HTTP/1.1 {route.status}", "Connection: close"]
            lines += [f"{name}: {value}" for name, value in route.headers.items()]
            with contextlib.suppress(OSError):  # the client hung up: it read enough
                connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                for chunk in route.body():
                    connection.sendall(chunk)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=10)


Serve = Callable[[dict[str, Route]], RawServer]
"""Start a RawServer answering these routes."""


@dataclass
class Watched:
    """What a watched coroutine returned or raised, its peak traced memory and loop stall."""

    result: Any
    error: BaseException | None
    peak_bytes: int
    max_gap_s: float


def watched(make: Callable[[], Awaitable[T]], *, trace_memory: bool = True) -> Watched:
    """Run `make()` in a fresh event loop beside a 10 ms ticker, tracing memory if asked.

    Tracing slows allocations several times over, stalls included: leave it off where the
    loop's stalls are what is measured on a lot of parsing (`peak_bytes` is then 0).
    """

    async def run() -> Watched:
        result: Any = None
        error: BaseException | None = None
        try:
            # The watch ends before tracemalloc.stop(), which takes a while to free its traces.
            async with watching_the_loop() as watch:
                if trace_memory:
                    tracemalloc.start()
                    tracemalloc.reset_peak()
                try:
                    result = await make()
                except Exception as exc:
                    error = exc
        finally:
            peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
            tracemalloc.stop()
        return Watched(result, error, peak, watch.longest_stall_s)

    return asyncio.run(run())


def assert_bounded(outcome: Watched, limit: int = LIMIT) -> None:
    """Assert that memory stayed within MEMORY_SLACK of `limit` and the loop never stalled."""
    assert outcome.peak_bytes < limit + MEMORY_SLACK, f"peak {outcome.peak_bytes / MIB:.0f} MiB"
    assert outcome.max_gap_s < MAX_TICK_GAP_S, f"event loop stalled {outcome.max_gap_s:.2f} s"
