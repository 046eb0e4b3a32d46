"""`read_decoded`: the one loop that reads a raw body through the bounded decoder."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

from monitor.content_coding import (
    CorruptEncodingError,
    DecodedBody,
    UnsupportedEncodingError,
    read_decoded,
)


class Source:
    """Raw chunks, counting how many were read and how often the reader paused."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0
        self.pauses = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    async def pause(self) -> None:
        self.pauses += 1


def run(source: Source, encoding: str | None, limit: int) -> DecodedBody:
    return asyncio.run(read_decoded(source, encoding, limit=limit, pause=source.pause))


def test_a_body_is_decoded_whole_with_a_pause_after_every_chunk() -> None:
    body = gzip.compress(b"x402 challenge " * 1000)
    source = Source([body[i : i + 100] for i in range(0, len(body), 100)])
    read = run(source, "gzip", 1 << 20)
    assert read == DecodedBody(b"x402 challenge " * 1000, False, None)
    assert source.pauses == len(source.chunks)


def test_reading_stops_at_the_limit() -> None:
    source = Source([b"a" * 10] * 100)
    read = run(source, None, 25)
    assert (read.body, read.truncated, read.error) == (b"a" * 25, True, None)
    assert source.read == 3  # the other 97 chunks are never read


def test_an_unsupported_coding_is_the_result_and_nothing_is_read() -> None:
    source = Source([b"whatever"])
    read = run(source, "br", 100)
    assert isinstance(read.error, UnsupportedEncodingError)
    assert (read.body, source.read) == (b"", 0)


def test_corrupt_data_is_the_result_with_what_came_before() -> None:
    good = gzip.compress(b"abc")
    source = Source([good[:-8], b"\x00" * 8])  # the CRC and length are wrong
    read = run(source, "gzip", 100)
    assert isinstance(read.error, CorruptEncodingError)
    assert read.body == b"abc"
