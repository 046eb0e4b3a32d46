"""What a decoder returns: exactly the body's first `limit` bytes, and `truncated` if it went on.

At chosen limits first, then as properties: for any body, any chunking and any limit.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_content_coding import (
    CODINGS,
    TEXT,
    WRAPPED_CODINGS,
    challenge_json,
    decode,
    encode,
    gzip_member,
    raw_deflate,
    split,
)

from monitor.content_coding import MAX_CODINGS, ContentDecoder

# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CODINGS))
@pytest.mark.parametrize(
    ("limit", "truncated"),
    [(0, True), (1, True), (len(TEXT) - 1, True), (len(TEXT), False), (len(TEXT) + 1, False)],
)
def test_output_stops_at_the_limit_and_says_so(limit: int, truncated: bool, name: str) -> None:
    header, body = encode(TEXT, [name])
    for step in (0, 5):
        decoder = ContentDecoder(header, limit=limit)
        assert decode(decoder, split(body, step), limit) == TEXT[:limit]
        assert decoder.truncated is truncated
        assert decoder.produced == min(limit, len(TEXT))
        assert decoder.consumed == len(body)


@pytest.mark.parametrize("name", [None, *CODINGS])
def test_an_empty_body_with_limit_zero_is_not_truncated(name: str | None) -> None:
    header, body = encode(b"", [name]) if name else (None, b"")
    decoder = ContentDecoder(header, limit=0)
    assert decode(decoder, [body], 0) == b""
    assert not decoder.truncated


@pytest.mark.parametrize("name", list(CODINGS))
def test_empty_feeds_are_harmless(name: str) -> None:
    header, body = encode(TEXT, [name])
    decoder = ContentDecoder(header, limit=len(TEXT))
    chunks = [b"", body[:1], b"", b"", body[1:2], b"", body[2:], b""]
    assert decode(decoder, chunks, len(TEXT)) == TEXT
    assert not decoder.truncated


def test_feeding_after_truncation_returns_nothing() -> None:
    body = gzip_member(TEXT)
    half = len(body) // 2
    decoder = ContentDecoder("gzip", limit=100)
    assert decoder.feed(body[:half]) == TEXT[:100]
    assert decoder.truncated
    assert decoder.feed(body[half:]) == b""
    assert decoder.finish() == b""
    assert decoder.finish() == b""
    assert (decoder.produced, decoder.consumed) == (100, len(body))


@pytest.mark.parametrize("name", ["gzip", "deflate"])
def test_a_body_cut_after_the_limit_was_reached_is_not_corrupt(name: str) -> None:
    """The caller stops reading once truncated: the rest of the stream never comes."""
    header, body = encode(TEXT, [name])
    decoder = ContentDecoder(header, limit=100)
    assert decoder.feed(body[: len(body) // 2]) == TEXT[:100]
    assert decoder.finish() == b""
    assert decoder.truncated


def test_finish_twice_is_harmless() -> None:
    decoder = ContentDecoder("gzip", limit=len(TEXT))
    assert decoder.feed(gzip_member(TEXT)) == TEXT
    assert decoder.finish() == b""
    assert decoder.finish() == b""
    assert not decoder.truncated


@pytest.mark.parametrize("name", ["gzip", "x-gzip", "deflate"])
def test_input_after_truncation_is_not_decoded_at_all(name: str) -> None:
    """Once the limit is reached, later input is counted but never reaches a decoder."""
    header, body = encode(TEXT, [name])
    decoder = ContentDecoder(header, limit=10)
    assert decoder.feed(body[: len(body) // 2]) == TEXT[:10]
    assert decoder.truncated
    seen = [layer.consumed for layer in decoder._layers]
    assert decoder.feed(b"\xff" * 1000) == b""  # corrupt data, were it decoded
    assert decoder.finish() == b""
    assert [layer.consumed for layer in decoder._layers] == seen
    assert decoder.consumed == len(body) // 2 + 1000


# --- stacked codings ------------------------------------------------------------------------

_FIVE = random.Random(5).randbytes(5)
_EMPTY_MEMBERS_THEN_PAYLOAD = gzip_member(gzip_member(b"") * 50 + gzip_member(b"payload"))


@pytest.mark.parametrize(
    ("header", "body", "limit", "step", "expected", "truncated"),
    [
        pytest.param("gzip, gzip", gzip_member(gzip_member(b"abc")), 0, 0, b"", True,
                     id="limit-0"),
        pytest.param("gzip, gzip", _EMPTY_MEMBERS_THEN_PAYLOAD, 100, 0, b"payload", False,
                     id="empty-members"),
        pytest.param("gzip, gzip", _EMPTY_MEMBERS_THEN_PAYLOAD, 100, 16, b"payload", False,
                     id="empty-members-16B"),
        pytest.param("gzip, gzip", gzip_member(gzip_member(_FIVE)), 5, 0, _FIVE, False,
                     id="incompressible"),
        pytest.param(*encode(_FIVE, ["gzip", "raw-deflate", "gzip"]), 4, 1, _FIVE[:4], True,
                     id="three-layers-one-short-1B"),
    ],
)  # fmt: skip
def test_stacked_codings_never_lose_output_silently(
    header: str, body: bytes, limit: int, step: int, expected: bytes, truncated: bool
) -> None:
    """Output is either returned or flagged as cut by the limit, whatever the inner layers hold."""
    decoder = ContentDecoder(header, limit=limit)
    assert decode(decoder, split(body, step), limit) == expected
    assert decoder.truncated is truncated


@pytest.mark.parametrize(
    ("names", "payload", "limit", "step"),
    [
        pytest.param(["gzip", "raw-deflate"], challenge_json(0), 30, 1, id="json-at-the-limit-1B"),
        pytest.param(["gzip", "deflate", "raw-deflate"], b"", 0, 0, id="empty-limit-0"),
    ],
)
def test_output_held_inside_an_inner_layer_comes_out(
    names: list[str], payload: bytes, limit: int, step: int
) -> None:
    """Bytes zlib still holds once an inner layer's input is used up come out in the end."""
    header, body = encode(payload, names)
    decoder = ContentDecoder(header, limit=limit)
    assert decode(decoder, split(body, step), limit) == payload
    assert not decoder.truncated


# --- properties ----------------------------------------------------------------------------

SETTINGS = settings(max_examples=300, deadline=None)

PAYLOADS = st.binary(max_size=2000) | st.lists(
    st.sampled_from([b"a", b'{"amount":"10000"},', b"\x00" * 300, b"\xff\xfe"]), max_size=40
).map(b"".join)
"""Random bytes (stored by deflate) and repetitive ones (matches across chunks)."""
CUTS = st.lists(st.integers(min_value=0, max_value=2**16), max_size=20)
LIMITS = st.integers(min_value=0, max_value=13_000)


def pieces(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Return `body` split at `cuts` modulo its length + 1 (duplicates give empty pieces)."""
    points = [0, *sorted(cut % (len(body) + 1) for cut in cuts), len(body)]
    return [body[start:end] for start, end in itertools.pairwise(points)]


def check(header: str | None, body: bytes, original: bytes, cuts: list[int], limit: int) -> None:
    """Decode `body` cut at `cuts` within `limit`: exactly `original`'s first `limit` bytes."""
    decoder = ContentDecoder(header, limit=limit)
    assert decode(decoder, pieces(body, cuts), limit) == original[:limit]
    assert decoder.truncated == (len(original) > limit)
    assert decoder.consumed == len(body)


@SETTINGS
@given(st.sampled_from([None, "identity", *WRAPPED_CODINGS]), PAYLOADS, CUTS, LIMITS)
def test_any_body_any_chunking_any_limit(
    name: str | None, payload: bytes, cuts: list[int], limit: int
) -> None:
    header, body = encode(payload, [name]) if name in CODINGS else (name, payload)
    check(header, body, payload, cuts, limit)


@SETTINGS
@given(st.lists(PAYLOADS, max_size=6), CUTS, LIMITS)
def test_multi_member_gzip_any_chunking_any_limit(
    members: list[bytes], cuts: list[int], limit: int
) -> None:
    body = b"".join(gzip_member(member) for member in members)
    check("gzip", body, b"".join(members), cuts, limit)


@SETTINGS
@given(PAYLOADS, CUTS, LIMITS)
@example(payload=TEXT, cuts=[1], limit=len(TEXT))
@example(payload=b"x", cuts=[1], limit=1)
def test_raw_deflate_any_chunking_any_limit(payload: bytes, cuts: list[int], limit: int) -> None:
    check("deflate", raw_deflate(payload), payload, cuts, limit)


@SETTINGS
@given(
    st.lists(st.sampled_from(list(CODINGS)), min_size=2, max_size=MAX_CODINGS),
    PAYLOADS,
    CUTS,
    LIMITS,
)
@example(names=["gzip", "gzip"], payload=b"abc", cuts=[], limit=0)
@example(names=["gzip", "deflate", "raw-deflate"], payload=b"", cuts=[], limit=0)  # held output
def test_stacked_codings_any_chunking_any_limit(
    names: list[str], payload: bytes, cuts: list[int], limit: int
) -> None:
    header, body = encode(payload, names)
    check(header, body, payload, cuts, limit)
