"""Hostile payloads cost one check each, never a round, memory or the store (issue 11, 2/3/5/6).

Each case is a loopback server answering 402 with a hostile body or header: unencodable text,
compression bombs and codings, huge numbers, bodies over `probe.max_body_bytes`, malformed
JSON. One real round per case, beside a healthy seller, with the assertions of
tests/test_hostile_http.py; the stored text of these cases must also stay bounded.
"""

from __future__ import annotations

import base64
import functools
import gzip
import zlib
from pathlib import Path

import pytest
from hostile_round import Case, assert_costs_one_check, longest_text
from hostile_servers import (
    CHALLENGE_HEADER,
    MIB,
    V1_CHALLENGE,
    compressed_402,
    every_request,
    gzip_of_zeros,
    json_402,
)
from scripted_server import Handler, answer

PASS = "pass"
SOFT = "soft_fail"
PAY_TO = b'"payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"'
AMOUNT = b'"maxAmountRequired": "10000"'
DESCRIPTION = b'"Access to premium market data"'
UINT256_PLUS_ONE = str(2**256).encode()
MAX_ERROR_CHARS = 300
"""Checks keep at most this much error text (pages show it in a table cell)."""
MAX_FINDINGS_CHARS = 64 * 1024
"""A generous bound on one check's stored findings: nothing a server sends is kept whole."""


def v1_with(old: bytes, new: bytes) -> bytes:
    """Return the v1 fixture challenge with `old` (which it must contain) replaced by `new`."""
    assert old in V1_CHALLENGE
    return V1_CHALLENGE.replace(old, new)


def serving(body: bytes, *headers: str) -> Handler:
    return every_request([json_402(body, *headers)])


def serving_coded(body: bytes, encoding: str) -> Handler:
    return every_request([compressed_402(body, encoding)])


def header_challenge(document_text: str) -> Handler:
    """Answer with `document_text` (JSON, sent as written) as the PAYMENT-REQUIRED header."""
    value = base64.b64encode(document_text.encode("utf-8", "surrogatepass")).decode()
    return every_request(
        [answer(b"{}", f"PAYMENT-REQUIRED: {value}", status="402 Payment Required")]
    )


@functools.cache
def bomb() -> bytes:
    """64 MiB of zeros as about 64 KB of gzip."""
    return gzip_of_zeros(64 * MIB)


def padded_challenge(size: int) -> bytes:
    """Return a valid v1 challenge of about `size` bytes (a long description)."""
    return v1_with(DESCRIPTION, b'"' + b"premium data " * (size // 13) + b'"')


V2_TEXT = base64.b64decode(CHALLENGE_HEADER).decode()

CASES = [
    # 2. Unencodable text, where it enters: values, keys, header and body, escaped and raw.
    Case(
        "surrogate-in-value",
        lambda: serving(v1_with(PAY_TO, b'"payTo": "0x\\ud800"')),
        SOFT,
        ("payTo", "is not an EVM address"),
    ),
    Case("surrogate-in-key", lambda: serving(v1_with(PAY_TO, PAY_TO + b', "\\ud800": 1')), PASS),
    Case("surrogate-in-text", lambda: serving(v1_with(DESCRIPTION, b'"\\udfff\\ud800"')), PASS),
    Case("raw-surrogate-bytes", lambda: serving(v1_with(DESCRIPTION, b'"\xed\xa0\x80"')), PASS),
    Case(
        "nul-in-value",
        lambda: serving(v1_with(PAY_TO, PAY_TO[:-1] + b'\\u0000"')),
        SOFT,
        ("payTo", "is not an EVM address"),
    ),
    Case(
        "surrogate-in-header",
        lambda: header_challenge(V2_TEXT.replace("Access to premium", "\\ud800 \\u0000")),
        PASS,
    ),
    # 3. Content codings: bombs refused, honest codings decoded, unknown ones named.
    Case(
        "gzip-bomb",
        lambda: serving_coded(bomb(), "gzip"),
        SOFT,
        ("could not be read", "a decompression bomb"),
    ),
    Case(
        "stacked-gzip-bomb",
        lambda: serving_coded(gzip.compress(bomb()), "gzip, gzip"),
        SOFT,
        ("could not be read", "a decompression bomb"),
    ),
    Case("gzip", lambda: serving_coded(gzip.compress(V1_CHALLENGE), "gzip"), PASS),
    Case("deflate", lambda: serving_coded(zlib.compress(V1_CHALLENGE), "deflate"), PASS),
    Case(
        "brotli",
        lambda: serving_coded(b"\x1b\x00\x00", "br"),
        SOFT,
        ("could not be read", "'br' is not decoded"),
    ),
    # 5. Amounts.
    Case(
        "amount-100000-digits",
        lambda: serving(v1_with(AMOUNT, b'"maxAmountRequired": "' + b"9" * 100_000 + b'"')),
        SOFT,
        ("maxAmountRequired", "100000 digits", "uint256"),
    ),
    Case(
        "amount-over-uint256",
        lambda: serving(v1_with(AMOUNT, b'"maxAmountRequired": "' + UINT256_PLUS_ONE + b'"')),
        SOFT,
        ("maxAmountRequired", "uint256"),
    ),
    # 6. A valid challenge over the 1 MiB cap.
    Case(
        "challenge-over-the-cap",
        lambda: serving(padded_challenge(6_600_000)),
        SOFT,
        ("probe.max_body_bytes", "raise probe.max_body_bytes"),
    ),
    # Malformed JSON.
    Case(
        "too-deep",
        lambda: serving(b"[" * 100_000 + b"]" * 100_000),
        SOFT,
        ("nests deeper than 64 levels",),
    ),
    Case(
        "invalid-utf8",
        lambda: serving(v1_with(DESCRIPTION, b'"\xff\xfe\xc3"')),
        SOFT,
        ("not UTF-8",),
    ),
    Case("nan", lambda: serving(v1_with(AMOUNT, b'"maxAmountRequired": NaN')), SOFT, ("not JSON",)),
    Case(
        "infinity",
        lambda: serving(v1_with(b'"x402Version": 1', b'"x402Version": -Infinity')),
        SOFT,
        ("not JSON",),
    ),
    Case("duplicate-keys", lambda: serving(v1_with(AMOUNT, AMOUNT + b", " + AMOUNT)), PASS),
    Case(
        "number-1e400",
        lambda: serving(v1_with(AMOUNT, b'"maxAmountRequired": 1e400')),
        SOFT,
        ("maxAmountRequired", "must be a string"),
    ),
    Case("top-level-array", lambda: serving(b"[" + V1_CHALLENGE + b"]"), SOFT, ("an array",)),
    Case("top-level-string", lambda: serving(b'"pay me"'), SOFT, ("a string",)),
]


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_a_hostile_payload_costs_one_check(
    case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / "monitor.db"
    assert_costs_one_check(case, database, caplog)
    assert longest_text(database, "checks", "error") <= MAX_ERROR_CHARS
    assert longest_text(database, "checks", "findings_json") <= MAX_FINDINGS_CHARS
    for column in ("price", "offer_key", "network", "method"):
        assert longest_text(database, "checks", column) <= 1000
