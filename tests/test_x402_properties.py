"""Property tests: whatever a server sends, `parse_challenge` returns a verdict and never raises."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.models import AssetVerdict, Challenge, Severity
from monitor.x402 import parse_challenge
from monitor.x402.codes import MAX_MESSAGE_CHARS, MAX_PATH_CHARS
from monitor.x402.decode import MAX_FINDINGS

HEADER = "payment-required"
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_KEYS = st.sampled_from(
    [
        "x402Version", "error", "accepts", "resource", "extensions", "scheme", "network",
        "amount", "maxAmountRequired", "asset", "payTo", "maxTimeoutSeconds", "extra", "url",
        "name", "version", "feePayer", "assetTransferMethod", "paymentFlow", "description",
        "mimeType", "outputSchema", "bazaar", "info", "input",
    ]
) | st.text(max_size=8)  # fmt: skip
"""Real field names most of the time, so generated objects reach the deeper rules."""

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(
        [
            1, 2, "exact", "base", "solana", "eip155:8453", "eip155:4326", "10000", "0",
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "permit2", "USD Coin", "https://a.b",
        ]
    )
    | st.text(max_size=20)
)  # fmt: skip

JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=6),
    max_leaves=30,
)
"""Arbitrary JSON values, biased towards x402 vocabulary."""

CHALLENGE_LIKE = st.fixed_dictionaries(
    {"x402Version": st.sampled_from([1, 2]), "accepts": st.lists(JSON, max_size=4)},
    optional={"resource": JSON, "error": JSON, "extensions": JSON},
)
"""Objects that pass the first checks, so every offer rule runs on junk."""


def _assert_verdict(challenge: Challenge) -> None:
    assert isinstance(challenge, Challenge)
    assert isinstance(challenge.valid, bool)
    assert "challenge-unreadable" not in [f.code for f in challenge.findings]
    assert isinstance(challenge.asset_verdict, AssetVerdict)
    has_error = any(f.severity is Severity.ERROR for f in challenge.findings)
    assert not (challenge.valid and not challenge.offers)
    if not has_error:
        assert challenge.valid == bool(challenge.offers)
    for offer in challenge.offers:
        assert offer.price is None or isinstance(offer.price, str)
    assert len(challenge.findings) <= MAX_FINDINGS
    for item in challenge.findings:
        assert len(item.message) <= MAX_MESSAGE_CHARS
        assert len(item.path) <= MAX_PATH_CHARS
    for text in _strings(challenge):
        text.encode("utf-8")  # no lone surrogate reaches a sink
        assert all(ord(character) >= 32 or character in "\t\n\r" for character in text)


def _strings(value: Any) -> list[str]:
    """Return every string of a result: dataclass fields, mappings (keys too), sequences."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for f in dataclasses.fields(value) for t in _strings(getattr(value, f.name))]
    if isinstance(value, Mapping):
        return [t for key, item in value.items() for t in (*_strings(key), *_strings(item))]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _strings(item)]
    return []


def _encode(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_as_body(body: bytes) -> None:
    _assert_verdict(parse_challenge({}, body))


@SETTINGS
@given(JSON | CHALLENGE_LIKE)
def test_arbitrary_json_as_body(document: Any) -> None:
    _assert_verdict(parse_challenge({}, json.dumps(document).encode()))


@SETTINGS
@given(JSON | CHALLENGE_LIKE, st.binary(max_size=200) | (JSON | CHALLENGE_LIKE).map(
    lambda value: json.dumps(value).encode()
))  # fmt: skip
def test_arbitrary_json_as_base64_header(document: Any, body: bytes) -> None:
    _assert_verdict(parse_challenge({HEADER: _encode(document)}, body))


@SETTINGS
@given(st.text(max_size=300), st.binary(max_size=200))
def test_arbitrary_header_strings(header: str, body: bytes) -> None:
    _assert_verdict(parse_challenge({HEADER: header}, body))


@SETTINGS
@given(st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=5), st.binary())
def test_arbitrary_header_maps(headers: dict[str, str], body: bytes) -> None:
    _assert_verdict(parse_challenge(headers, body))


_HOSTILE_TEXT = st.text(
    st.characters(categories=["Cs", "Cc", "Zl", "Nd", "Ll"]) | st.sampled_from("\ud800\x00\n"),
    max_size=12,
)
"""Text with lone surrogates, control characters and line separators."""

HOSTILE = st.recursive(
    _SCALARS | _HOSTILE_TEXT,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | _HOSTILE_TEXT, children, max_size=6)
    ),
    max_leaves=30,
)


@SETTINGS
@given(
    st.fixed_dictionaries(
        {"x402Version": st.sampled_from([1, 2]), "accepts": st.lists(HOSTILE, max_size=4)},
        optional={"resource": HOSTILE, "error": HOSTILE, "extensions": HOSTILE},
    )
    | HOSTILE
)
def test_hostile_text_anywhere_comes_out_encodable(document: Any) -> None:
    # ensure_ascii keeps the surrogates as \ud800 escapes, as a hostile server sends them.
    text = json.dumps(document)
    _assert_verdict(parse_challenge({}, text.encode()))
    _assert_verdict(parse_challenge({HEADER: _encode(document)}, b""))
