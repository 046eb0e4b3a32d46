"""Decoding Content-Encoding within a size and a ratio bound: round trips, bombs, bad input."""

from __future__ import annotations

import random
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import pytest

from monitor.content_coding import (
    DEFAULT_MAX_RATIO,
    MAX_CODINGS,
    RATIO_GRACE,
    ContentCodingError,
    ContentDecoder,
    CorruptEncodingError,
    DecompressionBombError,
    UnsupportedEncodingError,
)

KIB = 1024
MIB = 1024 * KIB


def gzip_member(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def zlib_deflate(data: bytes) -> bytes:
    """`deflate` as RFC 9110 defines it: the zlib format."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def raw_deflate(data: bytes) -> bytes:
    """`deflate` as many servers send it: raw DEFLATE without the zlib wrapper."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


Encoder = Callable[[bytes], bytes]
CODINGS: dict[str, tuple[str, Encoder]] = {
    "gzip": ("gzip", gzip_member),
    "x-gzip": ("x-gzip", gzip_member),
    "deflate": ("deflate", zlib_deflate),
    "raw-deflate": ("deflate", raw_deflate),
}
"""Test name -> (Content-Encoding token, encoder)."""
WRAPPED_CODINGS = ["gzip", "x-gzip", "deflate"]
"""Codings whose first bytes say what they are (raw deflate is tested on its own)."""


def encode(data: bytes, names: Sequence[str]) -> tuple[str, bytes]:
    """Return (header value, body): codings applied in the order listed, as RFC 9110 says."""
    for name in names:
        data = CODINGS[name][1](data)
    return ", ".join(CODINGS[name][0] for name in names), data


def decode(decoder: ContentDecoder, chunks: Sequence[bytes], limit: int) -> bytes:
    """Feed `chunks` then finish, checking that no call returns more than the room left."""
    output = bytearray()
    for chunk in chunks:
        room = limit - decoder.produced
        out = decoder.feed(chunk)
        assert len(out) <= room
        output += out
        assert decoder.produced == len(output)
    room = limit - decoder.produced
    out = decoder.finish()
    assert len(out) <= room
    output += out
    assert decoder.produced == len(output)
    return bytes(output)


def split(body: bytes, step: int) -> list[bytes]:
    """Return `body` in chunks of `step` bytes (0: whole)."""
    return [body[i : i + step] for i in range(0, len(body), step)] if step else [body]


def decode_body(
    content_encoding: str | None,
    body: bytes,
    limit: int,
    step: int = 0,
    max_ratio: int = DEFAULT_MAX_RATIO,
) -> bytes:
    decoder = ContentDecoder(content_encoding, limit=limit, max_ratio=max_ratio)
    return decode(decoder, split(body, step), limit)


def challenge_json(offers: int) -> bytes:
    """Return JSON of the kind a challenge holds: compresses several times, not hundreds."""
    return (
        b'{"x402Version":2,"accepts":['
        + b",".join(
            b'{"scheme":"exact","network":"eip155:8453","amount":"%d","payTo":"0x%040x"}'
            % (n * 7919 % 100_003, n * 2_654_435_761)
            for n in range(offers)
        )
        + b"]}"
    )


TEXT = challenge_json(60)
RANDOM = random.Random(402).randbytes(100 * KIB)
"""Incompressible: deflate stores it."""


# --- header parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "codings"),
    [
        (None, ()),
        ("", ()),
        ("identity", ()),
        ("IDENTITY", ()),
        (" , ,", ()),
        ("gzip", ("gzip",)),
        ("GZip", ("gzip",)),
        ("  gzip  ", ("gzip",)),
        ("x-gzip", ("x-gzip",)),
        ("deflate", ("deflate",)),
        ("identity, gzip", ("gzip",)),
        ("gzip, identity", ("gzip",)),
        ("gzip,,deflate", ("gzip", "deflate")),
        ("gzip, identity, gzip, identity, gzip", ("gzip", "gzip", "gzip")),
    ],
)
def test_header_values_name_the_codings_to_undo(
    header: str | None, codings: tuple[str, ...]
) -> None:
    decoder = ContentDecoder(header, limit=100)
    assert decoder.codings == codings
    assert decoder.encoded == bool(codings)


@pytest.mark.parametrize(
    ("header", "named"),
    [("br", "br"), ("zstd", "zstd"), ("compress", "compress"), ("x-compress", "x-compress"),
     ("exi", "exi"), ("pack200-gzip", "pack200-gzip"), ("aes128gcm", "aes128gcm"), ("dcb", "dcb"),
     ("*", "*"), ("chunked", "chunked"), ("gzip;q=1", "gzip;q=1"), ("gzip, br", "br"),
     ("BR, gzip", "br"), ("deflate, zstd", "zstd")],
)  # fmt: skip
def test_codings_the_monitor_cannot_decode_are_refused(header: str, named: str) -> None:
    with pytest.raises(UnsupportedEncodingError) as caught:
        ContentDecoder(header, limit=100)
    assert f"Content-Encoding {named!r} is not decoded" in str(caught.value)
    assert isinstance(caught.value, ContentCodingError)


def test_more_than_max_codings_are_refused() -> None:
    header = ", ".join(["gzip"] * (MAX_CODINGS + 1))
    with pytest.raises(UnsupportedEncodingError, match=f"at most {MAX_CODINGS}"):
        ContentDecoder(header, limit=100)
    with pytest.raises(UnsupportedEncodingError):
        ContentDecoder("gzip, deflate, x-gzip, identity, deflate", limit=100)


def test_max_codings_stacked_are_decoded() -> None:
    names = ["gzip", "deflate", "x-gzip"][:MAX_CODINGS]
    header, body = encode(TEXT, names)
    assert decode_body(header, body, limit=len(TEXT)) == TEXT
    assert decode_body(header, body, limit=len(TEXT), step=7) == TEXT


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CODINGS))
@pytest.mark.parametrize("payload", [b"", b"a", TEXT, RANDOM], ids=["empty", "1", "text", "random"])
@pytest.mark.parametrize("step", [0, 1, 13, 4096], ids=["whole", "1B", "13B", "4KiB"])
def test_each_coding_round_trips(name: str, payload: bytes, step: int) -> None:
    header, body = encode(payload, [name])
    decoder = ContentDecoder(header, limit=len(payload) + 10)
    assert decode(decoder, split(body, step), len(payload) + 10) == payload
    assert not decoder.truncated
    assert decoder.consumed == len(body)


@pytest.mark.parametrize("header", [None, "", "identity"])
def test_an_unencoded_body_is_returned_as_it_is_within_the_limit(header: str | None) -> None:
    decoder = ContentDecoder(header, limit=10)
    assert not decoder.encoded
    assert decoder.feed(b"12345") == b"12345"
    assert decoder.feed(b"678901234") == b"67890"
    assert decoder.truncated
    assert decoder.feed(b"more") == b""
    assert decoder.finish() == b""
    assert decoder.produced == 10
    assert decoder.consumed == 18


def test_stacked_codings_are_undone_last_applied_first() -> None:
    """`gzip, deflate`: gzip applied first, then deflate; so deflate is decoded first."""
    inner = gzip_member(TEXT)
    body = zlib_deflate(inner)
    assert decode_body("gzip, deflate", body, limit=len(TEXT)) == TEXT
    with pytest.raises(CorruptEncodingError, match="gzip"):
        decode_body("deflate, gzip", body, limit=len(TEXT))


def test_stacked_same_coding_twice() -> None:
    header, body = encode(TEXT, ["gzip", "gzip"])
    assert header == "gzip, gzip"
    assert decode_body(header, body, limit=len(TEXT)) == TEXT
    assert decode_body(header, body, limit=len(TEXT), step=5) == TEXT


@pytest.mark.parametrize("step", [0, 1, 3, 29])
def test_multi_member_gzip_is_decoded_whole(step: int) -> None:
    members = [gzip_member(b"first "), gzip_member(b""), gzip_member(b"second "), gzip_member(TEXT)]
    body = b"".join(members)
    expected = b"first second " + TEXT
    assert decode_body("gzip", body, limit=len(expected), step=step) == expected


@pytest.mark.parametrize("same_feed", [True, False], ids=["same-feed", "later-feed"])
def test_nul_padding_after_the_last_gzip_member_is_ignored(same_feed: bool) -> None:
    body = gzip_member(b"payload")
    decoder = ContentDecoder("gzip", limit=100)
    chunks = [body + b"\x00" * 512] if same_feed else [body, b"\x00" * 100, b"\x00" * 412]
    assert decode(decoder, chunks, 100) == b"payload"


@pytest.mark.parametrize("same_feed", [True, False], ids=["same-feed", "later-feed"])
def test_garbage_after_a_gzip_member_is_corrupt_data(same_feed: bool) -> None:
    """Bytes after a member are the next member; garbage there is not valid gzip."""
    body = gzip_member(b"payload")
    decoder = ContentDecoder("gzip", limit=100)
    chunks = [body + b"<html>oops"] if same_feed else [body, b"<html>oops"]
    with pytest.raises(CorruptEncodingError, match="invalid gzip data"):
        decode(decoder, chunks, 100)


@pytest.mark.parametrize("name", ["deflate", "raw-deflate"])
def test_bytes_after_a_deflate_stream_are_ignored(name: str) -> None:
    header, body = encode(b"payload", [name])
    assert decode_body(header, body + b"trailing junk", limit=100) == b"payload"
    decoder = ContentDecoder(header, limit=100)
    assert decode(decoder, [body, b"trailing", b" junk"], 100) == b"payload"


@pytest.mark.parametrize("payload", [b"x", b"hello world " * 20, TEXT, RANDOM])
def test_raw_deflate_labelled_deflate_is_decoded(payload: bytes) -> None:
    body = raw_deflate(payload)
    assert decode_body("deflate", body, limit=len(payload)) == payload
    assert decode_body("deflate", body, limit=len(payload), step=2) == payload


@pytest.mark.parametrize("name", ["deflate", "raw-deflate"])
@pytest.mark.parametrize("payload", [b"x", TEXT, RANDOM], ids=["1", "text", "random"])
def test_raw_deflate_whose_first_chunk_is_one_byte_is_decoded(name: str, payload: bytes) -> None:
    """zlib-wrapped or raw is told from two bytes: one byte alone decides nothing yet."""
    header, body = encode(payload, [name])
    decoder = ContentDecoder(header, limit=len(payload))
    assert decoder.feed(body[:1]) == b""
    assert decoder.feed(body[1:]) + decoder.finish() == payload
    assert not decoder.truncated


# --- bad data --------------------------------------------------------------------------------


def _flip(body: bytes, index: int) -> bytes:
    return body[:index] + bytes([body[index] ^ 0xFF]) + body[index + 1 :]


_GZIP_TEXT = gzip_member(TEXT)
_ZLIB_TEXT = zlib_deflate(TEXT)
CORRUPT = {
    "not-gzip": ("gzip", b"<html><body>502 Bad Gateway</body></html>"),
    "zlib-as-gzip": ("gzip", _ZLIB_TEXT),
    "bad-method": ("gzip", _GZIP_TEXT[:2] + b"\x07" + _GZIP_TEXT[3:]),
    "flipped-data": ("gzip", _flip(_GZIP_TEXT, len(_GZIP_TEXT) // 2)),
    "crc": ("gzip", _flip(_GZIP_TEXT, len(_GZIP_TEXT) - 8)),
    "isize": ("gzip", _flip(_GZIP_TEXT, len(_GZIP_TEXT) - 1)),
    "adler": ("deflate", _flip(_ZLIB_TEXT, len(_ZLIB_TEXT) - 1)),
    "ff": ("deflate", b"\xff" * 64),
    "missing-layer": ("gzip, gzip", _GZIP_TEXT),
}
"""Test name -> (Content-Encoding, a body that is not valid for it)."""


@pytest.mark.parametrize("kind", list(CORRUPT))
@pytest.mark.parametrize("step", [0, 1, 64])
def test_corrupt_data_is_refused(step: int, kind: str) -> None:
    header, body = CORRUPT[kind]
    decoder = ContentDecoder(header, limit=10 * len(TEXT))
    with pytest.raises(CorruptEncodingError, match=r"(gzip|deflate) data"):
        decode(decoder, split(body, step), 10 * len(TEXT))
    assert not decoder.truncated


def _cut_short() -> Iterator[object]:
    for name, body, header_size in [("gzip", _GZIP_TEXT, 10), ("deflate", _ZLIB_TEXT, 2)]:
        cuts = {
            "last-byte-missing": len(body) - 1,
            "checksum-missing": len(body) - 4,
            "half": len(body) // 2,
            "header-only": header_size,
        }
        for cut, size in cuts.items():
            yield pytest.param(name, body[:size], id=f"{cut}-{name}")


@pytest.mark.parametrize(("header", "body"), list(_cut_short()))
@pytest.mark.parametrize("step", [0, 7])
def test_a_stream_that_ends_early_is_corrupt(step: int, header: str, body: bytes) -> None:
    decoder = ContentDecoder(header, limit=len(TEXT))
    output = b"".join(decoder.feed(chunk) for chunk in split(body, step))
    assert TEXT.startswith(output)
    with pytest.raises(CorruptEncodingError, match=f"the {header} data ends before its end"):
        decoder.finish()
    assert not decoder.truncated


@pytest.mark.parametrize("header", ["gzip", "x-gzip", "deflate", "gzip, gzip"])
def test_no_body_at_all_decodes_to_nothing(header: str) -> None:
    """HEAD, 204 and 304 answers carry Content-Encoding without a body."""
    assert ContentDecoder(header, limit=100).finish() == b""
    decoder = ContentDecoder(header, limit=100)
    assert decoder.feed(b"") == b""
    assert decoder.finish() == b""
    assert not decoder.truncated
    assert decoder.consumed == decoder.produced == 0


@pytest.mark.parametrize("header", ["gzip", "deflate"])
def test_a_one_byte_body_is_corrupt(header: str) -> None:
    decoder = ContentDecoder(header, limit=100)
    assert decoder.feed(b"\x1f" if header == "gzip" else b"\x78") == b""
    with pytest.raises(CorruptEncodingError, match="ends before its end"):
        decoder.finish()


# --- ratio and bombs -------------------------------------------------------------------------


@pytest.mark.parametrize("names", [["gzip"], ["raw-deflate"], ["gzip", "deflate"]], ids="+".join)
def test_a_tiny_highly_compressible_body_under_the_grace_is_never_refused(
    names: list[str],
) -> None:
    payload = bytes(RATIO_GRACE - 1)
    header, body = encode(payload, names)
    decoder = ContentDecoder(header, limit=RATIO_GRACE, max_ratio=1)
    assert decode(decoder, split(body, 1), RATIO_GRACE) == payload


def _produced_before_refusal(decoder: ContentDecoder, chunks: Iterable[bytes]) -> int:
    """Feed `chunks` then finish; return what was out before the call that was refused."""
    before = 0
    try:
        for chunk in chunks:
            before = decoder.produced
            decoder.feed(chunk)
        before = decoder.produced
        decoder.finish()
    except DecompressionBombError:
        return before
    pytest.fail("not refused")


def test_the_ratio_is_judged_from_exactly_ratio_grace_bytes() -> None:
    under = gzip_member(bytes(RATIO_GRACE - 1))
    assert decode_body("gzip", under, limit=MIB, max_ratio=1) == bytes(RATIO_GRACE - 1)
    at = gzip_member(bytes(RATIO_GRACE))
    with pytest.raises(DecompressionBombError, match="more than 1 times"):
        decode_body("gzip", at, limit=MIB, max_ratio=1)
    # Fed byte by byte, the feed that brings the output to RATIO_GRACE is the one refused.
    decoder = ContentDecoder("gzip", limit=MIB, max_ratio=1)
    before = _produced_before_refusal(decoder, split(at, 1))
    assert before < RATIO_GRACE <= decoder.produced
    # Output cut by the limit below RATIO_GRACE is never judged.
    big = gzip_member(bytes(10 * RATIO_GRACE))
    assert decode_body("gzip", big, limit=RATIO_GRACE - 1, max_ratio=1) == bytes(RATIO_GRACE - 1)


def empty_members(size: int) -> bytes:
    """Return `size` bytes of gzip (an empty member, then NUL padding) that decode to nothing."""
    member = gzip_member(b"")
    return member + bytes(size - len(member))


@pytest.mark.parametrize(("size", "refused"), [(RATIO_GRACE - 1, False), (RATIO_GRACE, True)])
def test_an_inner_layer_is_judged_from_exactly_ratio_grace_bytes(size: int, refused: bool) -> None:
    """`gzip, gzip` whose inner gzip decodes to nothing: only the inner layer's ratio counts."""
    body = gzip_member(empty_members(size))
    decoder = ContentDecoder("gzip, gzip", limit=100, max_ratio=1)
    if refused:
        with pytest.raises(DecompressionBombError, match="gzip, gzip body expands more than 1"):
            decode(decoder, [body], 100)
    else:
        assert decode(decoder, [body], 100) == b""


def sparse_zeros() -> bytes:
    """Return 400 kB of zeros with 2 random bytes every 2,000: gzip compresses it ~268 times."""
    rng = random.Random(1)
    return b"".join(bytes(2000) + rng.randbytes(2) for _ in range(200))


@pytest.mark.parametrize(
    ("max_ratio", "refused"), [(10, True), (200, True), (400, False), (100_000, False)]
)
def test_the_ratio_bound_is_the_one_given(max_ratio: int, refused: bool) -> None:
    payload = sparse_zeros()
    body = gzip_member(payload)
    assert 200 < len(payload) / len(body) < 400
    if refused:
        with pytest.raises(DecompressionBombError, match=f"expands more than {max_ratio} times"):
            decode_body("gzip", body, limit=MIB, max_ratio=max_ratio)
    else:
        assert decode_body("gzip", body, limit=MIB, max_ratio=max_ratio) == payload


@pytest.mark.parametrize(
    "names", [["gzip"], ["deflate"], ["gzip", "gzip"], ["gzip", "raw-deflate"]], ids="+".join
)
@pytest.mark.parametrize("step", [0, 4 * KIB])
def test_ordinary_compressed_json_is_not_refused(names: list[str], step: int) -> None:
    payload = challenge_json(3000)
    assert len(payload) > 4 * RATIO_GRACE
    header, body = encode(payload, names)
    assert decode_body(header, body, limit=len(payload), step=step) == payload


def test_an_inner_layer_that_expands_to_no_output_is_refused_within_bounded_work() -> None:
    """`gzip, gzip` whose inner gzip is 10 MB of empty members: nothing comes out, ever.

    Each decoding step is bounded by the output's room, and the inner layer's output by the
    limit plus RATIO_GRACE, so the decoder gives up long before it has decoded 10 MB.
    """
    body = gzip_member(gzip_member(b"") * 500_000 + gzip_member(b"tail"))
    limit = 1000
    bound = limit + RATIO_GRACE + limit + 1  # the last step may add one step's budget
    for step in (0, 64):
        decoder = ContentDecoder("gzip, gzip", limit=limit)
        with pytest.raises(ContentCodingError):  # the ratio bound or the member bound
            _feed_within(decoder, split(body, step), bound)
        assert decoder._layers[0].produced <= bound
        assert decoder.produced == 0


def _feed_within(decoder: ContentDecoder, chunks: Iterable[bytes], bound: int) -> None:
    """Feed `chunks` then finish, checking that the first layer never decodes past `bound`."""
    for chunk in chunks:
        assert decoder.feed(chunk) == b""
        assert decoder._layers[0].produced <= bound
    decoder.finish()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """Return gzip of 1 GiB of zeros (about 1 MB), built 1 MiB at a time (never 1 GiB held)."""
    # Z_RLE compresses zeros to the same size as the default strategy, about twice as fast.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 9, zlib.Z_RLE)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(1024)]
    parts.append(compressor.flush())
    bomb = b"".join(parts)
    assert len(bomb) < 2 * MIB
    return bomb


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _feed_all(decoder: ContentDecoder, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        decoder.feed(chunk)
    decoder.finish()


def test_a_one_gib_gzip_bomb_yields_at_most_limit_bytes_in_bounded_memory(
    gzip_bomb: bytes,
) -> None:
    # The ratio bound lifted, so that the size limit alone is what stops it.
    limit = MIB
    decoder = ContentDecoder("gzip", limit=limit, max_ratio=10**6)
    total = 0
    tracemalloc.start()
    try:
        for chunk in _chunks(gzip_bomb, 64 * KIB):
            room = limit - decoder.produced
            out = decoder.feed(chunk)
            assert len(out) <= room
            assert out.count(0) == len(out)
            total += len(out)
        total += len(decoder.finish())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == limit
    assert decoder.truncated
    assert decoder.consumed == len(gzip_bomb)
    assert peak < 4 * limit, f"peak {peak} bytes for a {limit}-byte limit"


@pytest.mark.parametrize("read", [64 * KIB, 4 * MIB], ids=["64KiB-reads", "one-read"])
def test_a_one_gib_gzip_bomb_is_refused_by_its_ratio_however_it_is_read(
    gzip_bomb: bytes, read: int
) -> None:
    # Zeros compress 1,029:1: judged by the input zlib used, never by the input merely fed
    # (one large read used to look like a mild 16:1 and was reported as an oversized body).
    decoder = ContentDecoder("gzip", limit=MIB)
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionBombError, match="more than 1000 times"):
            _feed_all(decoder, _chunks(gzip_bomb, read))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB + read


def test_a_one_gib_gzip_bomb_fed_in_small_chunks_trips_the_ratio_before_the_limit(
    gzip_bomb: bytes,
) -> None:
    # Zeros deflate ~1,029x, above DEFAULT_MAX_RATIO: in 4 KiB chunks (<= ~4 MiB out per feed)
    # the ratio trips long before 64 MiB come out.
    limit = 64 * MIB
    decoder = ContentDecoder("gzip", limit=limit)
    with pytest.raises(DecompressionBombError, match="gzip body expands more than 1000 times"):
        _feed_all(decoder, _chunks(gzip_bomb, 4 * KIB))
    assert not decoder.truncated
    assert RATIO_GRACE <= decoder.produced < limit
    assert decoder.produced > DEFAULT_MAX_RATIO * decoder.consumed


def test_a_stacked_gzip_bomb_trips_the_ratio_bound(gzip_bomb: bytes) -> None:
    """gzip of the 1 GiB gzip bomb: ~2 KB that would expand 500,000x.

    16-byte chunks: one feed yields at most 16 x 1,032 x 1,032 bytes (~17 MB). Before a feed
    the ratio was not tripped, so at most 1,000 x 2 KB (~2 MB) were out: the limit of 64 MiB
    cannot be reached before the ratio trips, and memory stays within a few times 17 MB.
    """
    stacked = gzip_member(gzip_bomb)
    assert len(stacked) < 4 * KIB
    limit = 64 * MIB
    decoder = ContentDecoder("gzip, gzip", limit=limit)
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionBombError, match=r"gzip, gzip body expands more than"):
            _feed_all(decoder, _chunks(stacked, 16))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not decoder.truncated
    assert RATIO_GRACE <= decoder.produced < limit
    assert decoder.produced > DEFAULT_MAX_RATIO * decoder.consumed
    assert peak < 4 * 17 * MIB


def test_a_stacked_gzip_bomb_fed_whole_stops_at_the_limit_and_is_refused(
    gzip_bomb: bytes,
) -> None:
    limit = 16 * MIB
    decoder = ContentDecoder("gzip, gzip", limit=limit)
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionBombError):
            decoder.feed(gzip_member(gzip_bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.produced == limit
    assert peak < 4 * limit


# --- hostile headers, trailing bytes ------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["x" * 100_000, "gzip, " + "br" * 50_000, "\n\x00\u202e" * 30_000, "gzip," * 20_000],
    ids=["long-token", "long-second-token", "control-characters", "many-codings"],
)
def test_an_unsupported_coding_is_named_in_a_bounded_message(header: str) -> None:
    with pytest.raises(UnsupportedEncodingError) as caught:
        ContentDecoder(header, limit=100)
    message = str(caught.value)
    assert len(message) <= 200
    assert message.isprintable()


@pytest.mark.parametrize(
    ("header", "body", "filler"),
    [("gzip", gzip_member(b"{}"), b"\x00"), ("deflate", zlib_deflate(b"{}"), b"junk")],
    ids=["gzip-nul-padding", "deflate-trailing-junk"],
)
def test_bytes_after_the_end_of_the_stream_are_not_kept(
    header: str, body: bytes, filler: bytes
) -> None:
    """The caller reads until the body ends: what follows the stream must cost nothing."""
    decoder = ContentDecoder(header, limit=100)
    assert decoder.feed(body) == b"{}"
    chunk = filler * (4 * KIB // len(filler))
    tracemalloc.start()
    try:
        for _ in range(256):  # 1 MiB in 4 KiB chunks, as a network delivers it
            assert decoder.feed(chunk) == b""
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.finish() == b""
    assert not decoder.truncated
    assert peak < 64 * KIB, f"{peak} bytes held for 1 MiB after the end of the stream"
