"""A gzip body of many members: legitimate ones decode, a stream of empty members is refused."""

from __future__ import annotations

import gzip

import pytest

from monitor.content_coding import MAX_GZIP_MEMBERS, ContentDecoder, CorruptEncodingError


def test_a_body_of_a_few_members_decodes_whole() -> None:
    body = b"".join(gzip.compress(b"part%d," % n) for n in range(MAX_GZIP_MEMBERS))
    decoder = ContentDecoder("gzip", limit=10_000)
    decoded = decoder.feed(body) + decoder.finish()
    assert decoded == b"".join(b"part%d," % n for n in range(MAX_GZIP_MEMBERS))


@pytest.mark.parametrize("chunk", [20, 4096, 1 << 18])
def test_a_stream_of_empty_members_is_refused_however_it_is_read(chunk: int) -> None:
    # Empty members produce no output, so neither the size nor the ratio bound would ever
    # stop them; unfixed, 10 MB of them kept the event loop busy for seconds.
    body = gzip.compress(b"") * 50_000
    decoder = ContentDecoder("gzip", limit=1 << 20)
    chunks = [body[start : start + chunk] for start in range(0, len(body), chunk)]
    with pytest.raises(CorruptEncodingError, match=f"more than {MAX_GZIP_MEMBERS} gzip members"):
        _feed(decoder, chunks)
    assert decoder.consumed <= (MAX_GZIP_MEMBERS + 2) * 20 + chunk


def _feed(decoder: ContentDecoder, chunks: list[bytes]) -> None:
    for chunk in chunks:
        decoder.feed(chunk)
