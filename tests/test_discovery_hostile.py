"""The facilitators' JSON client (`JsonClientOwner.get_json`) against hostile loopback servers.

Decompression bombs (1 GiB of zeros as gzip, `x-gzip`, stacked `gzip, gzip`, zlib-wrapped and
raw deflate), codings the monitor does not decode (`br`, `zstd`), corrupt data, a bomb in a
redirect's or an error's body, hostile text and numbers. Each test asserts the result (a clear
error or the decoded document); bombs also that memory stays within a few MB of the byte limit
(tracemalloc) and that the event loop keeps running (decoding a bomb in one step stalls it for
seconds and takes gigabytes).
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from hostile_http import (
    BOMB_IDS,
    BOMBS,
    LIMIT,
    MIB,
    WBITS,
    Body,
    Route,
    Serve,
    Watched,
    assert_bounded,
    stacked_gzip_bomb,
    watched,
    zero_bomb,
)

from monitor.discovery.client import AnswerError, JsonClientOwner

USER_AGENT = "x402-monitor-test/1 (hostile discovery)"


def test_the_bombs_are_what_they_claim() -> None:
    small = 3 * MIB
    for form in ("gzip", "zlib", "raw"):
        data = b"".join(zero_bomb(form, small))
        decoder = zlib.decompressobj(WBITS[form])
        assert decoder.decompress(data) + decoder.flush() == bytes(small)
        assert decoder.eof
        assert len(data) < small // 500
    assert len(stacked_gzip_bomb()) < 64 * 1024
    inner = zlib.decompressobj(WBITS["gzip"]).decompress(stacked_gzip_bomb())
    assert inner[:100] == b"".join(zero_bomb("gzip", MIB))[:100]


def get_json(url: str, limit: int = LIMIT, timeout_s: float = 60) -> Watched:
    # Made before the watch starts: creating its TLS context is not what is measured.
    client = JsonClientOwner(user_agent=USER_AGENT, timeout=timedelta(seconds=timeout_s))

    async def fetch() -> object:
        async with client as owner:
            return await owner.get_json(url, max_bytes=limit)

    return watched(fetch)


@pytest.mark.parametrize(("coding", "body"), BOMBS, ids=BOMB_IDS)
def test_a_decompression_bomb_stops_at_the_byte_limit(
    serve: Serve, coding: str, body: Body
) -> None:
    server = serve({"/bomb": Route(headers={"Content-Encoding": coding}, body=body)})
    outcome = get_json(server.base_url + "/bomb")
    assert_bounded(outcome)
    assert isinstance(outcome.error, AnswerError), outcome.error
    assert outcome.error.reason == "too-large"
    assert str(outcome.error) == f"answer larger than {LIMIT} bytes"


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),
        ("identity", lambda data: data),
        ("", lambda data: data),
    ],
    ids=["gzip", "stacked", "zlib", "raw", "identity", "empty"],
)
def test_an_encoded_answer_within_the_limit_is_decoded(
    serve: Serve,
    coding: str,
    encode: Callable[[bytes], bytes],
) -> None:
    document = {"kinds": [{"scheme": "exact", "network": "eip155:8453"}], "text": "é" * 1000}
    body = encode(json.dumps(document, ensure_ascii=False).encode())
    server = serve({"/doc": Route(headers={"Content-Encoding": coding}, body=lambda: [body])})
    outcome = get_json(server.base_url + "/doc")
    assert outcome.error is None
    assert outcome.result.status == 200
    assert outcome.result.document == document


def test_an_identity_answer_over_the_limit_is_refused(
    serve: Serve,
) -> None:
    big = b'{"a": "' + b"x" * (2 * LIMIT) + b'"}'
    server = serve({"/big": Route(body=lambda: [big])})
    outcome = get_json(server.base_url + "/big")
    assert isinstance(outcome.error, AnswerError)
    assert (outcome.error.reason, str(outcome.error)) == (
        "too-large",
        f"answer larger than {LIMIT} bytes",
    )


@pytest.mark.parametrize(
    ("coding", "body", "message"),
    [
        ("br", b"\x1b\x03\x00\xf8%\x14\x82\x8c\x00", "Content-Encoding 'br' is not decoded"),
        ("zstd", b"(\xb5/\xfd", "Content-Encoding 'zstd' is not decoded"),
        ("gzip", b"\x1f\x8b\x08\x00garbage" * 10, "invalid gzip data"),
        ("deflate", b"\xff" * 64, "invalid deflate data"),
        ("gzip, gzip, gzip, gzip", gzip.compress(b"{}"), "4 stacked content codings"),
    ],
    ids=["br", "zstd", "corrupt-gzip", "corrupt-deflate", "too-many-codings"],
)
def test_an_undecodable_answer_is_a_clear_error(
    serve: Serve, coding: str, body: bytes, message: str
) -> None:
    server = serve({"/x": Route(headers={"Content-Encoding": coding}, body=lambda: [body])})
    outcome = get_json(server.base_url + "/x")
    assert isinstance(outcome.error, AnswerError), outcome.error
    assert outcome.error.reason == "bad-encoding"
    assert message in str(outcome.error)


def test_a_hostile_content_encoding_header_gives_a_bounded_one_line_error(
    serve: Serve,
) -> None:
    coding = "\x01\x7fbr" + "x" * 20_000
    server = serve({"/x": Route(headers={"Content-Encoding": coding}, body=lambda: [b"{}"])})
    outcome = get_json(server.base_url + "/x")
    assert isinstance(outcome.error, AnswerError)
    assert outcome.error.reason == "bad-encoding"
    assert len(str(outcome.error)) <= 200
    assert str(outcome.error).isprintable()


def test_a_redirects_body_is_never_read(serve: Serve) -> None:
    routes = {
        "/moved": Route(
            "302 Found",
            {"Location": "/doc", "Content-Encoding": "gzip", "Content-Type": "text/html"},
            lambda: zero_bomb("gzip"),
        ),
        "/doc": Route(body=lambda: [b'{"ok": true}']),
    }
    server = serve(routes)
    outcome = get_json(server.base_url + "/moved")
    assert outcome.error is None, outcome.error
    assert outcome.result.document == {"ok": True}
    assert outcome.result.url == server.base_url + "/doc"
    assert_bounded(outcome)


def test_more_than_three_redirects_fail(serve: Serve) -> None:
    routes = {f"/r{i}": Route("302 Found", {"Location": f"/r{i + 1}"}) for i in range(5)}
    server = serve(routes)
    outcome = get_json(server.base_url + "/r0")
    assert isinstance(outcome.error, httpx.TooManyRedirects)
    assert "more than 3 redirects" in str(outcome.error)
    assert server.paths == ["/r0", "/r1", "/r2", "/r3"]


def test_three_redirects_are_followed(serve: Serve) -> None:
    routes = {f"/r{i}": Route("301 Moved", {"Location": f"/r{i + 1}"}) for i in range(3)}
    routes["/r3"] = Route(body=lambda: [b"[1]"])
    server = serve(routes)
    outcome = get_json(server.base_url + "/r0")
    assert outcome.error is None, outcome.error
    assert outcome.result.document == [1]


def test_a_non_200_answer_is_returned_without_reading_its_body(
    serve: Serve,
) -> None:
    routes = {
        "/busy": Route(
            "503 Busy",
            {"Retry-After": "7", "Content-Encoding": "gzip"},
            lambda: zero_bomb("gzip"),
        )
    }
    server = serve(routes)
    outcome = get_json(server.base_url + "/busy")
    assert outcome.error is None
    assert outcome.result.status == 503
    assert outcome.result.headers["retry-after"] == "7"
    assert outcome.result.document is None
    assert_bounded(outcome)


def test_a_slow_body_times_out_within_the_whole_answer_timeout(
    serve: Serve,
) -> None:
    def drip() -> Iterator[bytes]:
        yield b"["
        for _ in range(600):  # 0.05 s a byte, each read well within httpx's per-read timeout
            time.sleep(0.05)
            yield b"1,"

    server = serve({"/drip": Route(body=drip)})
    started = time.perf_counter()
    outcome = get_json(server.base_url + "/drip", timeout_s=0.5)
    assert isinstance(outcome.error, TimeoutError)
    # Bounded by the timeout (20x it here, for a busy machine), not by the body's 30 s.
    assert time.perf_counter() - started < 0.5 * 20


@pytest.mark.parametrize(
    ("body", "check"),
    [
        # A lone surrogate, NUL and other controls, in values and keys: replaced, never dropped.
        (
            b'{"t\\u0000k": "a\\ud800b\\u0001c", "ok": "tab\\tline\\n"}',
            {"t\ufffdk": "a\ufffdb\ufffdc", "ok": "tab\tline\n"},
        ),
        # Bytes that are not UTF-8 inside a string: replaced, the rest of the document kept.
        (b'{"a": "caf\xe9", "b": 1}', {"a": "caf\ufffd", "b": 1}),
        (b'\xef\xbb\xbf{"bom": true}', {"bom": True}),
    ],
    ids=["surrogate-and-controls", "not-utf8", "bom"],
)
def test_text_is_cleaned_where_it_enters(serve: Serve, body: bytes, check: object) -> None:
    server = serve({"/t": Route(body=lambda: [body])})
    outcome = get_json(server.base_url + "/t")
    assert outcome.error is None, outcome.error
    assert outcome.result.document == check
    json.dumps(outcome.result.document, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "answer is not JSON"),
        (b"[" * 100 + b"]" * 100, "nested deeper than 64"),
        (b'{"a": NaN}', "answer is not JSON"),
        (b"\xff\xfe{\x00}\x00", "answer is not JSON"),
    ],
    ids=["junk", "deep", "nan", "utf16"],
)
def test_an_answer_that_is_not_json_is_a_clear_error(
    serve: Serve, body: bytes, message: str
) -> None:
    server = serve({"/j": Route(body=lambda: [body])})
    outcome = get_json(server.base_url + "/j")
    assert isinstance(outcome.error, AnswerError), outcome.error
    assert outcome.error.reason == "bad-json"
    assert message in str(outcome.error)


def test_a_huge_integer_does_not_make_the_document_unreadable(
    serve: Serve,
) -> None:
    body = b'{"items": [{"n": ' + b"9" * 100_000 + b'}, {"n": -' + b"9" * 5000 + b'}, {"n": 12}]}'
    server = serve({"/n": Route(body=lambda: [body])})
    outcome = get_json(server.base_url + "/n")
    assert outcome.error is None, outcome.error
    numbers = [item["n"] for item in outcome.result.document["items"]]
    assert numbers == [float("inf"), float("-inf"), 12]  # out of range, as 1e400 is
