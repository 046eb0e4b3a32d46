"""Reading a probe's answer: bounded decoding of compressed bodies, and no keep-alive desync.

Real loopback servers send the bytes (tests/scripted_server.py). Bombs are generated
incrementally and never held whole in memory.
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from loop_watch import watching_the_loop
from scripted_server import Peer, Server, Wait, answer, answering, fetch, new_transport

from monitor.config import ProbeConfig
from monitor.models import EndpointSpec, ProbeFacts
from monitor.probe import Prober

CAP = 1024 * 1024
NOW = datetime(2026, 1, 2, tzinfo=UTC)


def gzip_of_zeros(size: int) -> bytes:
    """Return gzip of `size` zero bytes, compressed a MiB at a time (never `size` in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, compressor.flush()])


STACKED_BOMB = gzip.compress(gzip_of_zeros(256 * 1024 * 1024), 9)
"""A few KB that expand to 256 MiB through `Content-Encoding: gzip, gzip`."""


def serving(body: bytes, encoding: str, status: str = "402 Payment Required") -> Server:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return Server(answering([head + body]))


async def probe(url: str, **settings: object) -> ProbeFacts:
    config = ProbeConfig(allow_private_addresses=True, **settings)  # type: ignore[arg-type]
    async with Prober(config, clock=lambda: NOW) as prober:
        return await prober.probe(EndpointSpec(url=url, method="GET"))


async def longest_stall(work: Callable[[], Awaitable[ProbeFacts]]) -> tuple[ProbeFacts, float]:
    """Run `work` beside a ticker; return its result and the loop's longest stall (CPU time)."""
    async with watching_the_loop() as watch:
        result = await work()
    return result, watch.longest_stall_s


def test_a_stacked_gzip_bomb_is_refused_without_blocking_or_filling_memory() -> None:
    async def go() -> tuple[ProbeFacts, float, int]:
        async with serving(STACKED_BOMB, "gzip, gzip") as server:
            tracemalloc.start()
            try:
                facts, stall = await longest_stall(lambda: probe(server.url("/")))
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        return facts, stall, peak

    facts, stall, peak = asyncio.run(go())
    assert facts.http_status == 402
    assert facts.body_error is not None
    assert "expands more than 1000 times (a decompression bomb)" in facts.body_error
    assert len(facts.body) <= CAP
    # Unfixed, httpx decoded all 256 MiB in one synchronous step.
    assert peak < 16 * CAP
    assert stall < 2.0


def test_a_compressed_body_over_the_cap_is_cut_at_the_cap_in_decoded_bytes() -> None:
    text = b"".join(b'{"item": %d, "note": "x402"},' % n for n in range(150_000))  # ~4 MB

    async def go() -> ProbeFacts:
        async with serving(gzip.compress(text), "gzip") as server:
            return await probe(server.url("/"))

    facts = asyncio.run(go())
    assert facts.body == text[:CAP]
    assert facts.body_truncated
    assert facts.body_error is None


@pytest.mark.parametrize(
    ("body", "encoding", "expected", "error"),
    [
        (gzip.compress(b'{"x402Version": 1}'), "gzip", b'{"x402Version": 1}', None),
        (zlib.compress(b'{"a": 1}'), "deflate", b'{"a": 1}', None),
        (zlib.compress(b'{"a": 1}')[2:-4], "deflate", b'{"a": 1}', None),  # raw deflate
        (gzip.compress(gzip.compress(b"[]")), "gzip, gzip", b"[]", None),
        (b'{"a": 1}', "identity", b'{"a": 1}', None),
        (b"\x8b\x1f not gzip at all", "gzip", b"", "invalid gzip data"),
        (b"\x1b\x00\x00", "br", b"", "Content-Encoding 'br' is not decoded"),
        (b"x", "gzip, gzip, gzip, gzip", b"", "4 stacked content codings"),
    ],
)
def test_compressed_answers_are_decoded_or_say_why_not(
    body: bytes, encoding: str, expected: bytes, error: str | None
) -> None:
    async def go() -> ProbeFacts:
        async with serving(body, encoding) as server:
            return await probe(server.url("/"))

    facts = asyncio.run(go())
    assert facts.http_status == 402
    assert facts.body == expected
    if error is None:
        assert facts.body_error is None
    else:
        assert facts.body_error is not None
        assert error in facts.body_error


def test_a_plain_body_over_the_cap_is_cut_there() -> None:
    async def go() -> ProbeFacts:
        body = b" " * (3 * CAP)
        async with Server(answering([answer(body, status="402 Payment Required")])) as server:
            return await probe(server.url("/"))

    facts = asyncio.run(go())
    assert len(facts.body) == CAP
    assert facts.body_truncated


# Keep-alive desync ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unsolicited",
    [
        answer(b"served", status="200 OK"),  # a second answer nobody asked for
        b"garbage that is not HTTP\r\n\r\n",
    ],
)
def test_bytes_on_an_idle_connection_are_never_the_next_answer(unsolicited: bytes) -> None:
    async def go() -> None:
        answered = asyncio.Event()
        sent = asyncio.Event()

        async def handle(peer: Peer) -> None:
            if peer.index == 0:
                await peer.request()
                await peer.play([answer(b"first", status="402 Payment Required"), Wait(answered)])
                await peer.send(unsolicited)
                sent.set()
                await peer.read_to_eof()
            else:
                await peer.request()
                await peer.send(answer(b"second", status="402 Payment Required"))
                await peer.read_to_eof()

        async with Server(handle) as server:
            pool = new_transport()
            first, body = await fetch(pool, server.url("/a"))
            assert (first.status_code, body) == (402, b"first")
            answered.set()
            await sent.wait()  # directly: no extra loop turn that would read the bytes first
            # At once, as a round does: the unsolicited bytes may not have been read yet.
            second, body = await fetch(pool, server.url("/b"))
            assert (second.status_code, body) == (402, b"second")
            assert len(server.peers) == 2  # the polluted connection was not reused
            await pool.aclose()

    asyncio.run(asyncio.wait_for(go(), 30))


def test_an_idle_connection_that_stayed_quiet_is_reused() -> None:
    async def go() -> None:
        scripts = [[answer(b"1", status="402 Payment Required")]] * 2
        async with Server(answering(*scripts)) as server:
            pool = new_transport()
            for target in ("/a", "/b"):
                response, _ = await fetch(pool, server.url(target))
                assert response.status_code == 402
            assert len(server.peers) == 1
            await pool.aclose()

    asyncio.run(asyncio.wait_for(go(), 30))
