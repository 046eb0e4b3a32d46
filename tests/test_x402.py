"""Challenge decoding and validation: real fixtures, one table row per finding code, junk input."""

from __future__ import annotations

import base64
import copy
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.models import AssetVerdict, Challenge, Finding, Severity
from monitor.x402 import (
    CODES,
    V1_NETWORKS,
    first_error,
    is_known_network,
    parse_challenge,
    registry_markdown,
)
from monitor.x402 import to_caip2 as caip2_of
from monitor.x402.decode import MAX_FINDINGS, MAX_JSON_DEPTH, MAX_OFFERS, b64decode_lenient
from monitor.x402.networks import AMBIGUOUS_V1_NETWORKS, KNOWN_CAIP2, is_ambiguous
from monitor.x402.transport import MAX_JSON_VALUES

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
HEADER = "payment-required"
DELETE = object()
"""Marker for `build`: remove the key instead of setting it."""


def _bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _json(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_bytes(name))
    return document


V1_DOC = _json("01-v1-evm-spec-base-sepolia.json")
V2_DOC = _json("02b-v2-evm-spec-decoded.json")
SOLANA_MAINNET = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
SOLANA_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOLANA_PAY_TO = "WwwuGbqHrwF5RG89KhUbmRWEvjnRH9k5kVM5p7T3WwW"
FEE_PAYER = "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4"
SOLANA_CHANGES: dict[str, Any] = {
    "accepts.0.asset": SOLANA_USDC,
    "accepts.0.payTo": SOLANA_PAY_TO,
    "accepts.0.extra": {"feePayer": FEE_PAYER},
}
"""Turn fixture 01/02b's EVM entry into a valid Solana USDC entry (network set separately)."""
MEGA_USD = "0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7"
AMOY_USDC = "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582"


def encode(document: Any, *, urlsafe: bool = False, padding: bool = True) -> str:
    raw = json.dumps(document).encode()
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text if padding else text.rstrip("=")


def build(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of `base` with dotted paths (`accepts.0.payTo`) set or deleted."""
    document = copy.deepcopy(dict(base))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return document


@dataclass(frozen=True)
class Sent:
    """A body as the probe reports it (ProbeFacts): cut at its limit, or unreadable as sent."""

    body: bytes
    truncated: bool = False
    error: str | None = None


def _body(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _parse(headers: dict[str, str], body: Any) -> Challenge:
    """Parse a table row's answer: JSON, bytes, or a `Sent` body with the probe's facts."""
    if isinstance(body, Sent):
        return parse_challenge(
            headers, body.body, body_truncated=body.truncated, body_error=body.error
        )
    return parse_challenge(headers, _body(body))


def v1(**changes: Any) -> Challenge:
    """Parse a v1 body built from fixture 01; keyword `accepts__0__payTo` sets accepts.0.payTo."""
    document = build(V1_DOC, {k.replace("__", "."): v for k, v in changes.items()})
    return parse_challenge({}, json.dumps(document).encode())


def v2(**changes: Any) -> Challenge:
    """Parse a v2 header built from fixture 02b (same keyword convention as `v1`)."""
    document = build(V2_DOC, {k.replace("__", "."): v for k, v in changes.items()})
    return parse_challenge({HEADER: encode(document)}, b"{}")


def codes(challenge: Challenge) -> list[str]:
    return [f.code for f in challenge.findings]


def only(challenge: Challenge, code: str) -> Finding:
    matches = [f for f in challenge.findings if f.code == code]
    assert len(matches) == 1, challenge.findings
    return matches[0]


# Real fixtures ------------------------------------------------------------------------------


BASE = "eip155:8453"
BASE_SEPOLIA = "eip155:84532"


@pytest.mark.parametrize(
    ("headers", "body", "version", "source", "networks", "prices", "warnings"),
    [
        ({}, "01-v1-evm-spec-base-sepolia.json", 1, "body", [BASE_SEPOLIA], ["$0.01"], []),
        ({HEADER: "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64"}, None, 2, "header",
         [BASE_SEPOLIA], ["$0.01"], []),
        ({}, "11-v1-evm-real-truecast-post-bodyfields.json", 1, "body", [BASE], ["$0.10"], []),
        # Its resource is http://localhost: rule 9 warns (new with issue 3), still valid.
        ({}, "13-v1-evm-svm-real-skill-registry-dual-rail.json", 1, "body",
         [BASE_SEPOLIA, SOLANA_MAINNET], ["$0.001", "$0.001"], ["resource-not-https"] * 2),
        ({HEADER: "G1-v2-python-sdk-2.25-fastapi-PAYMENT-REQUIRED.b64"}, None, 2, "header",
         [BASE_SEPOLIA], ["$0.01"], []),
    ],
    ids=["01", "02", "11", "13", "G1"],
)  # fmt: skip
def test_valid_fixtures(
    headers: dict[str, str],
    body: str | None,
    version: int,
    source: str,
    networks: list[str],
    prices: list[str],
    warnings: list[str],
) -> None:
    header_values = {k: _bytes(v).decode() for k, v in headers.items()}
    challenge = parse_challenge(header_values, _bytes(body) if body else b"{}")
    assert challenge.valid, challenge.findings
    assert (challenge.version, challenge.source) == (version, source)
    assert all(offer.valid for offer in challenge.offers)
    assert first_error(challenge) is None
    assert codes(challenge) == warnings
    # Checked by hand against reference §3.2: Base Sepolia USDC is {"USDC", "2"} (01, 02, 13,
    # G1), Base USDC {"USD Coin", "2"} (11), Solana mainnet USDC needs no domain (13).
    assert [offer.caip2 for offer in challenge.offers] == networks
    assert [offer.asset_verdict for offer in challenge.offers] == [AssetVerdict.VERIFIED] * len(
        networks
    )
    assert challenge.asset_verdict is AssetVerdict.VERIFIED
    assert [offer.price for offer in challenge.offers] == prices


def test_v2_header_fixtures_decode_to_their_json_twins() -> None:
    for header, decoded in [
        ("02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64", "02b-v2-evm-spec-decoded.json"),
        (
            "G1-v2-python-sdk-2.25-fastapi-PAYMENT-REQUIRED.b64",
            "G1-v2-python-sdk-2.25-fastapi-decoded.json",
        ),
    ]:
        challenge = parse_challenge({HEADER: _bytes(header).decode()}, b"")
        assert challenge.document == _json(decoded)


def test_fixture_08_is_invalid_because_pay_to_is_empty() -> None:
    challenge = parse_challenge({}, _bytes("08-v1-evm-real-aeon-empty-payto-INVALID.json"))
    assert (challenge.valid, challenge.version, challenge.source) == (False, 1, "body")
    error = first_error(challenge)
    assert error is not None
    assert (error.code, error.path) == ("field-empty", "accepts[0].payTo")
    assert error.message.startswith("accepts[0].payTo empty")
    assert challenge.offers[0].valid is False
    assert challenge.first_valid_offer is None
    # Base USDC with {"USD Coin", "2"}: the asset is right even though the offer is not.
    assert challenge.asset_verdict is AssetVerdict.VERIFIED
    assert challenge.offers[0].price == "$0.01"


def test_fixture_05_hybrid_in_body_is_reported() -> None:
    challenge = parse_challenge({}, _bytes("05-discovery-item-cdp-docs-mixed-v1-v2.json"))
    assert challenge.valid is False
    assert sorted(set(codes(challenge))) == [
        "bazaar-v1-metadata-in-v2",  # discovery data in v1 place inside a v2 document
        "field-missing",
        "hybrid-fields",
        "resource-invalid",
        "unknown-key",
        "v2-in-body",
    ]
    hybrids = [f.path for f in challenge.findings if f.code == "hybrid-fields"]
    assert hybrids == [
        f"accepts[0].{key}"
        for key in ("maxAmountRequired", "resource", "description", "mimeType", "outputSchema")
    ]
    assert [f.path for f in challenge.findings if f.code == "unknown-key"] == [
        "lastUpdated",
        "metadata",
        "type",
    ]
    assert only(challenge, "field-missing").path == "accepts[0].amount"
    assert challenge.offers[0].asset_verdict is AssetVerdict.VERIFIED


def test_offers_fold_v1_and_v2_field_names() -> None:
    solana = parse_challenge({}, _bytes("13-v1-evm-svm-real-skill-registry-dual-rail.json"))
    offer = solana.offers[1]
    assert (offer.index, offer.scheme, offer.network, offer.amount) == (
        1,
        "exact",
        "solana",
        "1000",
    )
    assert offer.pay_to == "WwwuGbqHrwF5RG89KhUbmRWEvjnRH9k5kVM5p7T3WwW"
    assert offer.max_timeout_seconds == 60
    assert offer.extra is not None
    assert offer.extra["feePayer"] == "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4"
    g1 = parse_challenge(
        {HEADER: _bytes("G1-v2-python-sdk-2.25-fastapi-PAYMENT-REQUIRED.b64").decode()}, b""
    )
    assert (g1.offers[0].amount, g1.offers[0].max_timeout_seconds) == ("10000", 300)


def test_v1_schemas_come_from_the_first_output_schema() -> None:
    challenge = parse_challenge({}, _bytes("11-v1-evm-real-truecast-post-bodyfields.json"))
    assert challenge.input_schema is not None
    assert challenge.input_schema["method"] == "POST"
    assert "prompt" in challenge.input_schema["bodyFields"]
    assert challenge.output_schema is not None
    assert challenge.output_schema["type"] == "object"
    assert parse_challenge({}, _bytes("01-v1-evm-spec-base-sepolia.json")).input_schema is None


def test_v2_schemas_come_from_the_bazaar_extension() -> None:
    info = {"input": {"type": "http", "method": "GET"}, "output": {"type": "json"}}
    challenge = v2(extensions={"bazaar": {"info": info, "schema": {}}})
    assert challenge.valid
    assert challenge.input_schema == info["input"]
    assert challenge.output_schema == info["output"]
    assert v2(extensions={"bazaar": {"info": {"input": "GET"}}}).input_schema is None


# One row per finding code ------------------------------------------------------------------

LARGE_V2 = build(V2_DOC, {"resource.description": "x" * 9000})
HUGE_V2 = build(V2_DOC, {"resource.description": "x" * 13000})
SOLANA_V1 = build(V1_DOC, {**SOLANA_CHANGES, "accepts.0.network": "solana"})
MEGAETH_V2 = build(
    V2_DOC,
    {
        "accepts.0.network": "eip155:4326",
        "accepts.0.asset": MEGA_USD,
        "accepts.0.extra": {"name": "MegaUSD", "version": "1"},
    },
)
AMOY_V1 = build(V1_DOC, {"accepts.0.network": "polygon-amoy", "accepts.0.asset": AMOY_USDC})
DEEP = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
WIDE = '{"x402Version": 1, "accepts": [], "junk": [' + "{}," * MAX_JSON_VALUES + "{}]}"
"""A challenge of more values than are parsed: 1 MiB of `{},` would be 350,000 objects."""
SECOND_OFFER_BAD = build(V1_DOC, {"accepts": [V1_DOC["accepts"][0], {"scheme": "exact"}]})
_CUT_V1 = _body(build(V1_DOC, {"accepts.0.description": "d" * 5000}))[:4096]
_SLOW = build(V1_DOC, {"accepts.0.maxTimeoutSeconds": 86400, "accepts.0.asset": "0x" + "1" * 40})
MANY_WARNINGS = build(V1_DOC, {"accepts": [_SLOW["accepts"][0]] * MAX_OFFERS})
"""100 valid offers with two warnings each (long timeout, unknown asset): over MAX_FINDINGS."""

# (id, headers, body, code, severity, path)
# fmt: off
CASES: list[tuple[str, dict[str, str], Any, str, Severity, str]] = [
    ("empty body", {}, b"", "challenge-missing", Severity.ERROR, ""),
    ("json without challenge", {}, {"message": "pay"}, "challenge-missing", Severity.ERROR, ""),
    ("html body", {}, b"<!doctype html><html>pay</html>", "body-html", Severity.ERROR, ""),
    ("html content type", {"content-type": "text/html"}, b"pay", "body-html", Severity.ERROR, ""),
    ("not json", {}, b"Payment Required", "body-not-json", Severity.ERROR, ""),
    ("not utf-8", {}, b"\xff\xfe\x00{", "body-not-json", Severity.ERROR, ""),
    ("json array", {}, [V1_DOC], "body-not-object", Severity.ERROR, ""),
    ("body cut at the probe's limit", {}, Sent(_CUT_V1, truncated=True), "body-too-large",
     Severity.ERROR, ""),
    ("body unreadable as sent", {}, Sent(b"", error="Content-Encoding 'br' is not decoded"),
     "body-unreadable", Severity.ERROR, ""),
    ("deep body", {}, DEEP.encode(), "json-too-deep", Severity.ERROR, ""),
    ("wide body", {}, WIDE.encode(), "json-too-large", Severity.ERROR, ""),
    ("empty header", {HEADER: "  "}, V1_DOC, "header-empty", Severity.WARNING, ""),
    ("large header", {HEADER: encode(LARGE_V2)}, b"", "header-large", Severity.WARNING, ""),
    ("header over 16 KB", {HEADER: encode(HUGE_V2)}, b"", "header-over-16kb", Severity.ERROR,
     ""),
    ("huge header", {HEADER: "A" * 70000}, V1_DOC, "header-too-large", Severity.ERROR, ""),
    ("header and body differ", {HEADER: encode(V2_DOC)},
     build(V1_DOC, {"accepts.0.maxAmountRequired": "20000"}),
     "header-body-mismatch", Severity.WARNING, "body.accepts[0].maxAmountRequired"),
    ("invalid body beside header", {HEADER: encode(V2_DOC)},
     build(V1_DOC, {"accepts.0.payTo": ""}), "body-challenge-invalid", Severity.WARNING, "body"),
    ("header not b64", {HEADER: "not base64!"}, V1_DOC, "header-not-base64", Severity.ERROR, ""),
    ("header not json", {HEADER: base64.b64encode(b"hi").decode()}, b"",
     "header-not-json", Severity.ERROR, ""),
    ("header array", {HEADER: encode([1])}, b"", "header-not-object", Severity.ERROR, ""),
    ("deep header", {HEADER: base64.b64encode(DEEP.encode()).decode()}, b"",
     "json-too-deep", Severity.ERROR, ""),
    ("version string", {}, build(V1_DOC, {"x402Version": "1"}),
     "version-invalid", Severity.ERROR, "x402Version"),
    ("version bool", {}, build(V1_DOC, {"x402Version": True}),
     "version-invalid", Severity.ERROR, "x402Version"),
    ("version 3", {HEADER: encode(build(V2_DOC, {"x402Version": 3}))}, b"",
     "version-invalid", Severity.ERROR, "x402Version"),
    ("version missing", {}, build(V1_DOC, {"x402Version": DELETE}),
     "version-invalid", Severity.ERROR, "x402Version"),
    ("v2 in body", {}, V2_DOC, "v2-in-body", Severity.ERROR, ""),
    ("v1 error missing", {}, build(V1_DOC, {"error": DELETE}), "error-missing", Severity.WARNING,
     "error"),
    ("error not string", {}, build(V1_DOC, {"error": 402}), "field-type", Severity.ERROR, "error"),
    ("resource missing", {HEADER: encode(build(V2_DOC, {"resource": DELETE}))}, b"",
     "resource-missing", Severity.ERROR, "resource"),
    ("resource string", {HEADER: encode(build(V2_DOC, {"resource": "https://a.example"}))}, b"",
     "resource-invalid", Severity.ERROR, "resource"),
    ("resource url empty", {HEADER: encode(build(V2_DOC, {"resource.url": ""}))}, b"",
     "field-empty", Severity.ERROR, "resource.url"),
    ("unknown top-level key", {}, build(V1_DOC, {"lastUpdated": 1}), "unknown-key",
     Severity.INFO, "lastUpdated"),
    ("v1 with v2 resource object", {}, build(V1_DOC, {"resource": {"url": "https://a.b"}}),
     "hybrid-fields", Severity.WARNING, "resource"),
    ("accepts empty", {}, build(V1_DOC, {"accepts": []}), "accepts-empty", Severity.ERROR,
     "accepts"),
    ("accepts missing", {}, build(V1_DOC, {"accepts": DELETE}), "field-missing", Severity.ERROR,
     "accepts"),
    ("accepts object", {}, build(V1_DOC, {"accepts": {}}), "field-type", Severity.ERROR,
     "accepts"),
    ("extensions list", {HEADER: encode(build(V2_DOC, {"extensions": []}))}, b"",
     "field-type", Severity.ERROR, "extensions"),
    ("offer string", {}, build(V1_DOC, {"accepts": ["exact"]}), "offer-not-object",
     Severity.ERROR, "accepts[0]"),
    ("scheme missing", {}, build(V1_DOC, {"accepts.0.scheme": DELETE}), "field-missing",
     Severity.ERROR, "accepts[0].scheme"),
    ("asset number", {}, build(V1_DOC, {"accepts.0.asset": 5}), "field-type", Severity.ERROR,
     "accepts[0].asset"),
    ("pay to blank", {}, build(V1_DOC, {"accepts.0.payTo": "  "}), "field-empty",
     Severity.ERROR, "accepts[0].payTo"),
    ("v1 resource missing", {}, build(V1_DOC, {"accepts.0.resource": DELETE}), "field-missing",
     Severity.ERROR, "accepts[0].resource"),
    ("v1 resource relative", {}, build(V1_DOC, {"accepts.0.resource": "/premium"}),
     "resource-not-url", Severity.ERROR, "accepts[0].resource"),
    ("v1 resource http", {}, build(V1_DOC, {"accepts.0.resource": "http://a.example/x"}),
     "resource-not-https", Severity.WARNING, "accepts[0].resource"),
    ("v1 description empty", {}, build(V1_DOC, {"accepts.0.description": ""}),
     "description-empty", Severity.WARNING, "accepts[0].description"),
    ("v1 description missing", {}, build(V1_DOC, {"accepts.0.description": DELETE}),
     "field-missing", Severity.ERROR, "accepts[0].description"),
    ("mime type number", {}, build(V1_DOC, {"accepts.0.mimeType": 1}), "field-type",
     Severity.ERROR, "accepts[0].mimeType"),
    ("amount number", {}, build(V1_DOC, {"accepts.0.maxAmountRequired": 10000}),
     "amount-not-string", Severity.ERROR, "accepts[0].maxAmountRequired"),
    ("amount decimal", {}, build(V1_DOC, {"accepts.0.maxAmountRequired": "0.01"}),
     "amount-invalid", Severity.ERROR, "accepts[0].maxAmountRequired"),
    ("amount zero", {HEADER: encode(build(V2_DOC, {"accepts.0.amount": "0"}))}, b"",
     "amount-zero", Severity.ERROR, "accepts[0].amount"),
    ("amount over uint256", {}, build(V1_DOC, {"accepts.0.maxAmountRequired": str(2**256)}),
     "amount-too-large", Severity.ERROR, "accepts[0].maxAmountRequired"),
    ("amount missing", {HEADER: encode(build(V2_DOC, {"accepts.0.amount": DELETE}))}, b"",
     "field-missing", Severity.ERROR, "accepts[0].amount"),
    ("timeout string", {}, build(V1_DOC, {"accepts.0.maxTimeoutSeconds": "60"}),
     "timeout-invalid", Severity.ERROR, "accepts[0].maxTimeoutSeconds"),
    ("timeout missing", {}, build(V1_DOC, {"accepts.0.maxTimeoutSeconds": DELETE}),
     "field-missing", Severity.ERROR, "accepts[0].maxTimeoutSeconds"),
    ("timeout day", {}, build(V1_DOC, {"accepts.0.maxTimeoutSeconds": 86400}),
     "timeout-long", Severity.WARNING, "accepts[0].maxTimeoutSeconds"),
    # EVM `exact` needs extra.name/version, so the null extra is tolerated on another scheme.
    ("extra null", {}, build(V1_DOC, {"accepts.0.extra": None, "accepts.0.scheme": "upto"}),
     "extra-null", Severity.WARNING, "accepts[0].extra"),
    ("extra list", {}, build(V1_DOC, {"accepts.0.extra": []}), "extra-not-object",
     Severity.ERROR, "accepts[0].extra"),
    ("v1 unknown network", {}, build(V1_DOC, {"accepts.0.network": "Base"}), "network-unknown",
     Severity.WARNING, "accepts[0].network"),
    ("v1 ambiguous network", {}, build(V1_DOC, {"accepts.0.network": "story"}),
     "network-ambiguous", Severity.INFO, "accepts[0].network"),
    ("v2 v1 name", {HEADER: encode(build(V2_DOC, {"accepts.0.network": "base"}))}, b"",
     "network-not-caip2", Severity.ERROR, "accepts[0].network"),
    ("v2 solana mainnet",
     {HEADER: encode(build(V2_DOC, {"accepts.0.network": "solana:mainnet"}))}, b"",
     "network-noncanonical", Severity.ERROR, "accepts[0].network"),
    ("v1 with amount", {}, build(V1_DOC, {"accepts.0.amount": "10000"}), "hybrid-fields",
     Severity.WARNING, "accepts[0].amount"),
    ("v1 with CAIP-2 network", {}, build(V1_DOC, {"accepts.0.network": "eip155:84532"}),
     "hybrid-fields", Severity.WARNING, "accepts[0].network"),
    ("v2 with v1 resource", {HEADER: encode(build(V2_DOC, {"accepts.0.resource": "https://a.b"}))},
     b"", "hybrid-fields", Severity.WARNING, "accepts[0].resource"),
    ("evm payTo short", {}, build(V1_DOC, {"accepts.0.payTo": "0x1234"}), "address-invalid",
     Severity.ERROR, "accepts[0].payTo"),
    ("solana asset hex", {}, build(SOLANA_V1, {"accepts.0.asset": MEGA_USD}), "address-invalid",
     Severity.ERROR, "accepts[0].asset"),
    ("solana fee payer missing", {}, build(SOLANA_V1, {"accepts.0.extra": {}}),
     "feepayer-missing", Severity.ERROR, "accepts[0].extra.feePayer"),
    ("transfer method unknown", {},
     build(V1_DOC, {"accepts.0.extra.assetTransferMethod": "eip2612"}),
     "transfer-method-invalid", Severity.ERROR, "accepts[0].extra.assetTransferMethod"),
    ("eip712 version missing", {}, build(V1_DOC, {"accepts.0.extra.version": DELETE}),
     "eip712-domain-missing", Severity.ERROR, "accepts[0].extra.version"),
    ("wrong EIP-712 name", {}, build(V1_DOC, {"accepts.0.extra.name": "USD Coin"}),
     "asset-domain-mismatch", Severity.ERROR, "accepts[0].extra.name"),
    ("low-confidence version", {}, build(AMOY_V1, {"accepts.0.extra.version": "1"}),
     "asset-domain-unconfirmed", Severity.WARNING, "accepts[0].extra.version"),
    ("permit2-only token via eip3009", {HEADER: encode(MEGAETH_V2)}, b"",
     "asset-method-mismatch", Severity.ERROR, "accepts[0].asset"),
    ("unknown asset", {}, build(V1_DOC, {"accepts.0.asset": "0x" + "1" * 40}),
     "asset-unverified", Severity.WARNING, "accepts[0].asset"),
    ("payment flow unknown",
     {HEADER: encode(build(V2_DOC, {"accepts.0.extra.paymentFlow": "later"}))}, b"",
     "payment-flow-unknown", Severity.WARNING, "accepts[0].extra.paymentFlow"),
    ("duplicate offers", {}, build(V1_DOC, {"accepts": V1_DOC["accepts"] * 2}),
     "offer-duplicate", Severity.WARNING, "accepts[1]"),
    ("101 offers", {}, build(V1_DOC, {"accepts": V1_DOC["accepts"] * 101}), "accepts-too-many",
     Severity.WARNING, "accepts"),
    ("one of two invalid", {}, SECOND_OFFER_BAD, "offers-partly-invalid", Severity.ERROR,
     "accepts"),
    ("too many findings", {}, MANY_WARNINGS, "findings-truncated", Severity.INFO, ""),
]
# fmt: on


@pytest.mark.parametrize(
    ("headers", "body", "code", "severity", "path"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_finding_table(
    headers: dict[str, str], body: Any, code: str, severity: Severity, path: str
) -> None:
    challenge = _parse(headers, body)
    matches = [f for f in challenge.findings if f.code == code]
    assert matches, challenge.findings
    assert (matches[0].severity, matches[0].path) == (severity, path)
    assert CODES[code].severity is severity
    if severity is Severity.ERROR and code != "offers-partly-invalid":
        assert challenge.valid is False
    else:
        assert challenge.valid is True, challenge.findings


def test_every_registered_code_has_a_table_row() -> None:
    untested = set(CODES) - {case[3] for case in CASES} - {"challenge-unreadable"}
    assert not untested


def test_registry_codes_are_stable_kebab_case_with_meaning_and_fix() -> None:
    for code, rule in CODES.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code), code
        assert rule.meaning, code
        assert rule.fix, code
        assert isinstance(rule.severity, Severity)


def test_registry_renders_as_a_markdown_table() -> None:
    lines = registry_markdown().splitlines()
    assert lines[0] == "| code | severity | meaning | fix |"
    assert len(lines) == 2 + len(CODES)
    assert "| `field-empty` | error | a required string is empty | fill in the value |" in lines
    assert all(line.count(" | ") == 3 for line in lines[2:])


def test_every_message_names_the_problem_and_the_fix() -> None:
    for _, headers, body, _, _, _ in CASES:
        for item in _parse(headers, body).findings:
            problem, _, fix = item.message.partition("; ")
            assert problem, item
            assert fix, item
            assert len(item.message) < 200, item
            if item.path.startswith("accepts["):
                assert problem.startswith(item.path), item


# Validity rules ----------------------------------------------------------------------------


def test_one_invalid_offer_beside_a_valid_one_keeps_the_challenge_valid() -> None:
    challenge = parse_challenge({}, _body(SECOND_OFFER_BAD))
    assert challenge.valid is True
    assert [offer.valid for offer in challenge.offers] == [True, False]
    assert challenge.first_valid_offer is challenge.offers[0]
    summary = only(challenge, "offers-partly-invalid")
    assert summary.message.startswith("1 of 2 offers invalid (accepts[1])")
    assert first_error(challenge) is not None


def test_offer_errors_do_not_leak_between_indexes() -> None:
    entries = [copy.deepcopy(V1_DOC["accepts"][0]) for _ in range(11)]
    entries[10]["payTo"] = ""
    challenge = v1(accepts=entries)
    assert [offer.valid for offer in challenge.offers] == [True] * 10 + [False]
    assert only(challenge, "field-empty").path == "accepts[10].payTo"


def test_offers_and_findings_are_capped() -> None:
    challenge = v1(accepts=[{"scheme": "exact"}] * 5_000)  # 10,000 values: under the bound
    assert len(challenge.offers) == MAX_OFFERS
    assert len(challenge.findings) == MAX_FINDINGS
    assert only(challenge, "accepts-too-many").message.startswith("accepts lists 5000 offers")
    assert challenge.findings[-1].code == "findings-truncated"


def test_envelope_error_makes_the_challenge_invalid_despite_valid_offers() -> None:
    challenge = v2(resource=DELETE)
    assert challenge.valid is False
    assert challenge.offers[0].valid is True
    assert "offers-partly-invalid" not in codes(challenge)


@pytest.mark.parametrize(
    ("version", "entry_changes", "expected"),
    [
        ("1", {}, ["version-invalid"]),
        (1.0, {"accepts.0.payTo": ""}, ["version-invalid", "field-empty"]),
        # Vocabulary 2 (from "2"): each v1 entry field is a hybrid, the v1 name not CAIP-2.
        ("2", {"accepts.0.amount": "5"},
         ["version-invalid", *["hybrid-fields"] * 5, "resource-missing", "network-not-caip2"]),
        (None, {"accepts.0.maxAmountRequired": 5}, ["version-invalid", "amount-not-string"]),
        ([], {"accepts.0.maxAmountRequired": DELETE}, ["version-invalid"]),
    ],
)  # fmt: skip
def test_invalid_version_is_fatal_but_the_rest_is_still_checked(
    version: Any, entry_changes: dict[str, Any], expected: list[str]
) -> None:
    document = build(V1_DOC, {"x402Version": version, **entry_changes})
    challenge = parse_challenge({}, _body(document))
    assert (challenge.version, challenge.valid) == (None, False)
    assert sorted(codes(challenge)) == sorted(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(60, 60), (60.0, 60), (1, 1), (3600, 3600)],
)
def test_timeouts_accepted(value: Any, expected: int) -> None:
    challenge = v1(accepts__0__maxTimeoutSeconds=value)
    assert challenge.valid, challenge.findings
    assert challenge.offers[0].max_timeout_seconds == expected


@pytest.mark.parametrize("value", [True, False, "60", 60.5, 0, -5, None, [60], {"s": 60}])
def test_timeouts_rejected(value: Any) -> None:
    challenge = v1(accepts__0__maxTimeoutSeconds=value)
    assert challenge.valid is False
    error = first_error(challenge)
    assert error is not None
    assert error.code in {"timeout-invalid", "field-missing"}
    assert error.path == "accepts[0].maxTimeoutSeconds"
    assert challenge.offers[0].max_timeout_seconds is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (10000, "amount-not-string"),
        (1.5, "amount-not-string"),
        ("1.5", "amount-invalid"),
        (" 100", "amount-invalid"),
        ("-1", "amount-invalid"),
        ("", "amount-invalid"),
        ("１２", "amount-invalid"),  # full-width digits: str.isdigit() would accept them
        ("0x10", "amount-invalid"),
        (True, "amount-invalid"),
        (["1"], "amount-invalid"),
        ("0", "amount-zero"),
        ("0000", "amount-zero"),
    ],
)
def test_amounts_rejected(value: Any, code: str) -> None:
    for challenge, path in [
        (v1(accepts__0__maxAmountRequired=value), "accepts[0].maxAmountRequired"),
        (v2(accepts__0__amount=value), "accepts[0].amount"),
    ]:
        error = first_error(challenge)
        assert error is not None
        assert (error.code, error.path) == (code, path)


def test_amount_with_leading_zero_and_many_digits_is_accepted() -> None:
    challenge = v1(accepts__0__maxAmountRequired="0" + "9" * 40)
    assert challenge.valid
    assert challenge.offers[0].amount == "0" + "9" * 40


@pytest.mark.parametrize("network", sorted(V1_NETWORKS))
def test_every_v1_name_is_accepted(network: str) -> None:
    changes = {"accepts.0.network": network}
    if network.startswith("solana"):
        changes |= SOLANA_CHANGES
    challenge = parse_challenge({}, _body(build(V1_DOC, changes)))
    assert challenge.valid, challenge.findings
    assert "network-unknown" not in codes(challenge)
    assert challenge.offers[0].caip2 == V1_NETWORKS[network]


@pytest.mark.parametrize(
    "network",
    [
        "eip155:8453",
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        "algorand:wGHE2Pwdvd7S12BL5FaOP20EGYesN73ktiC1qzkkit8=",
        "algorand:SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI=",
        "stellar:pubnet",
        "tvm:-239",
        "ach:us",
    ],
)
def test_v2_caip2_networks_are_accepted(network: str) -> None:
    changes = {"accepts.0.network": network}
    if network.startswith("solana:"):
        changes |= SOLANA_CHANGES
    challenge = parse_challenge({HEADER: encode(build(V2_DOC, changes))}, b"")
    assert challenge.valid, challenge.findings
    # Base Sepolia's USDC address is not a known token anywhere else: a warning only.
    assert set(codes(challenge)) <= {"asset-unverified"}
    assert challenge.offers[0].caip2 == network


@pytest.mark.parametrize(
    "network", ["base", "eip155", "EIP155:8453", "eip155:", "algorand:abc=", "a:b", "x" * 50]
)
def test_v2_non_caip2_networks_are_errors(network: str) -> None:
    finding = only(v2(accepts__0__network=network), "network-not-caip2")
    assert finding.path == "accepts[0].network"


def test_v2_v1_name_suggests_the_caip2_id() -> None:
    finding = only(v2(accepts__0__network="base-sepolia"), "network-not-caip2")
    assert "eip155:84532" in finding.message


# Decoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        encode(V2_DOC),
        encode(V2_DOC, padding=False),
        encode(V2_DOC, urlsafe=True),
        encode(V2_DOC, urlsafe=True, padding=False),
        "\n  ".join(re.findall(".{1,60}", encode(V2_DOC))) + "\n",
    ],
    ids=["standard", "unpadded", "urlsafe", "urlsafe-unpadded", "wrapped"],
)
def test_header_alphabets_and_padding(header: str) -> None:
    challenge = parse_challenge({HEADER: header}, b"")
    assert (challenge.valid, challenge.version, challenge.source) == (True, 2, "header")
    assert challenge.document == V2_DOC


def test_urlsafe_characters_really_occur_in_the_urlsafe_case() -> None:
    document = {**V2_DOC, "error": "??>>??>>"}  # encodes to '/' and '+' in standard base64
    standard, urlsafe = encode(document), encode(document, urlsafe=True)
    assert "/" in standard or "+" in standard
    assert "_" in urlsafe or "-" in urlsafe
    assert parse_challenge({HEADER: urlsafe}, b"").document == document


@pytest.mark.parametrize("text", ["A", "AAAAA", "ab$c", "é9==", "YQ=x"])
def test_b64_decoder_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is "raises ValueError"
        b64decode_lenient(text)


def test_header_takes_precedence_over_the_body() -> None:
    challenge = parse_challenge({HEADER: encode(V2_DOC)}, _body(V1_DOC))
    assert (challenge.version, challenge.source) == (2, "header")
    assert challenge.offers[0].network == "eip155:84532"


def test_broken_header_is_not_rescued_by_a_v1_body() -> None:
    challenge = parse_challenge({HEADER: "%%%"}, _body(V1_DOC))
    assert (challenge.valid, challenge.source, challenge.version) == (False, "header", None)
    assert codes(challenge) == ["header-not-base64"]


def test_header_size_limit_is_configurable_and_checked_before_decoding() -> None:
    header = encode(V2_DOC)
    assert parse_challenge({HEADER: header}, b"", max_header_bytes=len(header)).valid
    challenge = parse_challenge({HEADER: header}, b"", max_header_bytes=len(header) - 1)
    assert (challenge.valid, challenge.document) == (False, None)
    assert codes(challenge) == ["header-too-large"]


def test_large_header_is_only_a_warning() -> None:
    challenge = parse_challenge({HEADER: encode(LARGE_V2)}, b"")
    assert challenge.valid
    assert codes(challenge) == ["header-large"]


def test_nesting_at_the_limit_parses_and_one_deeper_does_not() -> None:
    def nested(depth: int) -> dict[str, Any]:
        value: Any = "leaf"
        for _ in range(depth - 4):  # challenge, accepts, accepts[0] and extra are four levels
            value = [value]
        return build(V2_DOC, {"accepts.0.extra.deep": value})

    assert parse_challenge({HEADER: encode(nested(MAX_JSON_DEPTH))}, b"").valid
    too_deep = parse_challenge({HEADER: encode(nested(MAX_JSON_DEPTH + 1))}, b"")
    assert codes(too_deep) == ["json-too-deep"]


def test_very_deep_json_is_refused_without_recursion_error() -> None:
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert codes(parse_challenge({}, body)) == ["json-too-deep"]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    challenge = v1(error="[[[{{{" * 100)
    assert challenge.valid, challenge.findings


@pytest.mark.parametrize("body", [b"NaN", b'{"x402Version": 1, "accepts": [Infinity]}'])
def test_non_standard_json_constants_are_not_json(body: bytes) -> None:
    assert codes(parse_challenge({}, body)) == ["body-not-json"]


def test_json_challenge_mislabelled_as_html_is_still_read() -> None:
    challenge = parse_challenge({"content-type": "text/html"}, _body(V1_DOC))
    assert challenge.valid, challenge.findings


def test_utf8_bom_is_tolerated() -> None:
    assert parse_challenge({}, b"\xef\xbb\xbf" + _body(V1_DOC)).valid


def test_source_is_none_without_any_challenge() -> None:
    for body in [b"", b"<html></html>", b"oops", b"[]", b"{}"]:
        challenge = parse_challenge({}, body)
        assert (challenge.source, challenge.version, challenge.valid) == (None, None, False)
        assert challenge.offers == ()


def test_junk_bytes_never_raise() -> None:
    rng = random.Random(402)
    seeds = [_body(V1_DOC), encode(V2_DOC).encode(), b'{"x402Version":1,"accepts":[{}]}']
    for i in range(400):
        if i % 2:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        else:  # mutate real payloads so the parser gets past the first checks
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            junk = bytes(data)
        for headers, body in [({}, junk), ({HEADER: junk.decode("latin-1")}, b"")]:
            challenge = parse_challenge(headers, body)
            assert isinstance(challenge, Challenge)
            assert "challenge-unreadable" not in codes(challenge), challenge.findings


JUNK_VALUES: list[Any] = [None, True, 0, -1, 1.5, 1e308, "", "x", [], [None], {}, {"a": []}]


def test_wrong_json_types_everywhere_never_raise() -> None:
    paths = [
        "x402Version", "error", "accepts", "resource", "extensions", "accepts.0",
        "accepts.0.scheme", "accepts.0.network", "accepts.0.amount", "accepts.0.asset",
        "accepts.0.payTo", "accepts.0.maxTimeoutSeconds", "accepts.0.extra",
        "accepts.0.maxAmountRequired", "accepts.0.resource", "accepts.0.description",
        "accepts.0.mimeType", "accepts.0.outputSchema", "resource.url",
    ]  # fmt: skip
    for base in (V1_DOC, V2_DOC):
        for path in paths:
            for value in JUNK_VALUES:
                try:
                    document = build(base, {path: value})
                except (KeyError, TypeError, IndexError):
                    continue  # the path does not exist in this version's document
                for challenge in (
                    parse_challenge({}, _body(document)),
                    parse_challenge({HEADER: encode(document)}, b""),
                ):
                    assert "challenge-unreadable" not in codes(challenge), (path, value)
                    assert isinstance(challenge.valid, bool)


# Networks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "caip2"),
    [
        ("base", "eip155:8453"),
        ("base-sepolia", "eip155:84532"),
        ("avalanche-fuji", "eip155:43113"),
        ("sei-testnet", "eip155:1328"),
        ("abstract-testnet", "eip155:11124"),
        ("monad", "eip155:143"),
        ("sepolia", "eip155:11155111"),
        ("solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
        ("solana-devnet", "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"),
        ("story", "eip155:1514"),
        ("eip155:8453", "eip155:8453"),
        ("aptos:1", "aptos:1"),
        (
            "algorand:SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI=",
            "algorand:SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI=",
        ),
        ("Base", None),
        ("solana-mainnet", None),
        ("", None),
    ],
)
def test_to_caip2(name: str, caip2: str | None) -> None:
    assert caip2_of(name) == caip2


def test_v1_table_has_every_reference_name_and_ids_are_caip2() -> None:
    assert len(V1_NETWORKS) == 27
    for name, chain in V1_NETWORKS.items():
        assert caip2_of(chain) == chain, name
        assert is_known_network(name)
        assert is_known_network(chain)


def test_conflicting_v1_names_are_marked_ambiguous() -> None:
    assert set(AMBIGUOUS_V1_NETWORKS) == {"story", "educhain", "skale-base-sepolia"}
    assert AMBIGUOUS_V1_NETWORKS["educhain"] == ("eip155:41923", "eip155:656476")
    assert is_ambiguous("story")
    assert not is_ambiguous("base")
    assert "eip155:1444673419" in KNOWN_CAIP2


def test_unknown_networks_are_not_known() -> None:
    assert not is_known_network("eip155:999999")
    assert not is_known_network("solana:mainnet")
    assert not is_known_network("BASE")


# Header and body together (rule 5) ---------------------------------------------------------


def test_matching_v1_body_beside_the_header_adds_no_finding() -> None:
    body = build(V1_DOC, {"accepts.0.payTo": V1_DOC["accepts"][0]["payTo"].lower()})
    challenge = parse_challenge({HEADER: encode(V2_DOC)}, _body(body))
    assert (challenge.valid, challenge.source, codes(challenge)) == (True, "header", [])


@pytest.mark.parametrize(
    ("changes", "paths"),
    [
        ({"accepts.0.resource": "https://other.example/x"}, ["body.accepts[0].resource"]),
        ({"accepts.0.asset": "0x" + "2" * 40, "accepts.0.maxAmountRequired": "1"},
         ["body.accepts[0].maxAmountRequired", "body.accepts[0].asset"]),
        ({"accepts.0.network": "base"},
         ["accepts[0].network", "body.accepts[0].network"]),
        # "base-sepolia" in the body and "eip155:84532" in the header are the same network.
        ({"accepts.0.network": "eip155:84532"}, []),
    ],
)  # fmt: skip
def test_header_body_mismatches_are_warnings(changes: dict[str, Any], paths: list[str]) -> None:
    challenge = parse_challenge({HEADER: encode(V2_DOC)}, _body(build(V1_DOC, changes)))
    assert challenge.valid
    assert challenge.offers[0].network == "eip155:84532"  # the header stays the source of truth
    mismatches = [f for f in challenge.findings if f.code == "header-body-mismatch"]
    assert [f.path for f in mismatches] == paths
    assert all(f.severity is Severity.WARNING for f in mismatches)


def test_invalid_body_beside_a_header_does_not_invalidate_the_challenge() -> None:
    body = build(V1_DOC, {"accepts.0.payTo": ""})
    challenge = parse_challenge({HEADER: encode(V2_DOC)}, _body(body))
    assert challenge.valid
    finding = only(challenge, "body-challenge-invalid")
    assert finding.message.startswith("body v1 challenge is invalid: accepts[0].payTo empty")


@pytest.mark.parametrize("body", [b"{}", b"", b"<html></html>", _body(V2_DOC), b"[1]"])
def test_bodies_that_are_not_v1_challenges_are_not_compared(body: bytes) -> None:
    assert codes(parse_challenge({HEADER: encode(V2_DOC)}, body)) == []


def test_header_over_16kb_is_an_error_not_a_warning() -> None:
    challenge = parse_challenge({HEADER: encode(HUGE_V2)}, b"")
    assert codes(challenge) == ["header-over-16kb"]
    assert challenge.valid is False
    assert challenge.offers[0].valid  # the offer itself is fine: the envelope is not


# Envelope extras (rules 8, 17) -------------------------------------------------------------


def test_unknown_keys_are_kept_and_capped() -> None:
    document = build(V1_DOC, {f"k{i}": i for i in range(30)})
    challenge = parse_challenge({}, _body(document))
    assert challenge.valid
    assert codes(challenge) == ["unknown-key"] * 10
    assert challenge.document is not None
    assert challenge.document["k29"] == 29


def test_duplicates_are_reported_once_per_group_in_any_letter_case() -> None:
    entry = V1_DOC["accepts"][0]
    shouting = {**entry, "payTo": "0x" + entry["payTo"][2:].upper(), "maxAmountRequired": "9"}
    challenge = v1(accepts=[entry, shouting, entry])
    finding = only(challenge, "offer-duplicate")
    assert finding.path == "accepts[1]"
    assert finding.message.startswith("accepts[1] repeats accepts[0] (and 1 more)")
    assert "offer-duplicate" not in codes(v1(accepts=[entry, {**entry, "scheme": "upto"}]))


# Offer details (rules 9-16) ----------------------------------------------------------------


def test_amount_with_spaces_says_so() -> None:
    error = first_error(v2(accepts__0__amount=" 10000 "))
    assert error is not None
    assert error.code == "amount-invalid"
    assert error.message == (
        "accepts[0].amount ' 10000 ' has leading or trailing spaces; send \"10000\" without spaces"
    )


def test_v1_network_name_in_v2_is_an_error_named_as_such() -> None:
    finding = only(v2(accepts__0__network="base"), "network-not-caip2")
    assert finding.message.startswith("accepts[0].network 'base' is a v1 network name")


def test_ambiguous_v1_name_maps_to_the_ts_go_id_and_keeps_the_info() -> None:
    challenge = v1(accepts__0__network="educhain")
    assert challenge.valid
    assert challenge.offers[0].caip2 == "eip155:41923"
    assert only(challenge, "network-ambiguous").severity is Severity.INFO


def test_solana_null_extra_is_a_missing_fee_payer_not_a_warning() -> None:
    challenge = parse_challenge({}, _body(build(SOLANA_V1, {"accepts.0.extra": None})))
    assert challenge.valid is False
    assert codes(challenge) == ["feepayer-missing"]
    assert "extra is null" in only(challenge, "feepayer-missing").message


@pytest.mark.parametrize("fee_payer", ["...", "0x" + "1" * 40, 5, "1" * 31, "z" * 44])
def test_solana_fee_payer_must_be_a_32_byte_key(fee_payer: Any) -> None:
    document = build(SOLANA_V1, {"accepts.0.extra.feePayer": fee_payer})
    finding = only(parse_challenge({}, _body(document)), "address-invalid")
    assert finding.path == "accepts[0].extra.feePayer"


def test_solana_upto_without_fee_payer_is_not_checked() -> None:
    document = build(SOLANA_V1, {"accepts.0.extra": None, "accepts.0.scheme": "upto"})
    assert codes(parse_challenge({}, _body(document))) == ["extra-null"]


def test_other_namespaces_accept_role_constants_and_currency_codes() -> None:
    challenge = v2(
        accepts__0__network="ach:us",
        accepts__0__payTo="merchant",
        accepts__0__asset="USD",
        accepts__0__extra={},
    )
    assert challenge.valid, challenge.findings
    assert codes(challenge) == ["asset-unverified"]
    assert challenge.offers[0].asset_verdict is AssetVerdict.UNVERIFIED
    assert challenge.offers[0].price == "10000 atomic units of USD"


@pytest.mark.parametrize(
    ("changes", "verdict", "found"),
    [
        ({}, AssetVerdict.VERIFIED, []),
        ({"accepts.0.extra.version": "1"}, AssetVerdict.MISMATCH, ["asset-domain-mismatch"]),
        ({"accepts.0.extra.name": DELETE}, AssetVerdict.MISMATCH, ["eip712-domain-missing"]),
        ({"accepts.0.extra.assetTransferMethod": "permit2", "accepts.0.extra.name": "USD Coin"},
         AssetVerdict.UNVERIFIED, ["asset-domain-unconfirmed"]),
        ({"accepts.0.extra": {"assetTransferMethod": "erc7710"}}, AssetVerdict.VERIFIED, []),
        ({"accepts.0.asset": "0x" + "3" * 40}, AssetVerdict.UNVERIFIED, ["asset-unverified"]),
        ({"accepts.0.asset": "0x" + "3" * 40, "accepts.0.extra": {}}, AssetVerdict.UNVERIFIED,
         ["eip712-domain-missing", "eip712-domain-missing", "asset-unverified"]),
        ({"accepts.0.asset": "USDC"}, AssetVerdict.UNVERIFIED, ["address-invalid"]),
        ({"accepts.0.asset": DELETE}, AssetVerdict.UNKNOWN, ["field-missing"]),
        ({"accepts.0.network": "Base"}, AssetVerdict.UNKNOWN, ["network-unknown"]),
        ({"accepts.0.scheme": "upto", "accepts.0.extra.version": "1"}, AssetVerdict.VERIFIED,
         []),
    ],
)  # fmt: skip
def test_asset_verdicts_and_their_findings(
    changes: dict[str, Any], verdict: AssetVerdict, found: list[str]
) -> None:
    challenge = parse_challenge({}, _body(build(V1_DOC, changes)))
    assert challenge.offers[0].asset_verdict is verdict
    assert codes(challenge) == found


def test_permit2_token_is_verified_when_offered_with_permit2() -> None:
    document = build(MEGAETH_V2, {"accepts.0.extra.assetTransferMethod": "permit2"})
    challenge = parse_challenge({HEADER: encode(document)}, b"")
    assert challenge.valid, challenge.findings
    assert challenge.findings == ()
    offer = challenge.offers[0]
    assert (offer.asset_verdict, offer.caip2) == (AssetVerdict.VERIFIED, "eip155:4326")
    assert offer.price == "0.00000000000001 MegaUSD"  # 18 decimals, not 6


def test_eip3009_on_a_permit2_only_token_is_a_mismatch() -> None:
    challenge = parse_challenge({HEADER: encode(MEGAETH_V2)}, b"")
    assert challenge.valid is False
    assert challenge.offers[0].asset_verdict is AssetVerdict.MISMATCH


def test_low_confidence_version_is_a_warning_and_unverified() -> None:
    challenge = parse_challenge({}, _body(build(AMOY_V1, {"accepts.0.extra.version": "1"})))
    assert challenge.valid
    assert challenge.offers[0].asset_verdict is AssetVerdict.UNVERIFIED
    assert "low-confidence" in only(challenge, "asset-domain-unconfirmed").message
    assert parse_challenge({}, _body(AMOY_V1)).offers[0].asset_verdict is AssetVerdict.VERIFIED


@pytest.mark.parametrize("flow", ["authorization", "upfront", "escrow"])
def test_known_payment_flows_pass(flow: str) -> None:
    assert v2(accepts__0__extra__paymentFlow=flow).findings == ()


@pytest.mark.parametrize("amount", ["0", "1.5", " 1", None])
def test_price_is_only_set_for_a_valid_amount(amount: Any) -> None:
    assert v1(accepts__0__maxAmountRequired=amount).offers[0].price is None


def test_seller_decimals_do_not_override_the_table() -> None:
    challenge = v1(accepts__0__extra__decimals=18)
    assert challenge.offers[0].price == "$0.01"


def test_amounts_longer_than_pythons_int_limit_are_too_large_not_a_crash() -> None:
    amount = "9" * 5000  # int() refuses strings over 4300 digits
    challenge = v1(accepts__0__maxAmountRequired=amount)
    assert codes(challenge) == ["amount-too-large"]
    assert challenge.offers[0].price is None
    body = build(V1_DOC, {"accepts.0.maxAmountRequired": amount})
    header = encode(build(V2_DOC, {"accepts.0.amount": "0" + amount}))
    # Both sides are too large; compared digit by digit, they are the same amount.
    both = parse_challenge({HEADER: header}, _body(body))
    assert codes(both) == ["body-challenge-invalid", "amount-too-large"]


def test_the_largest_uint256_amount_is_read_exactly() -> None:
    challenge = v1(accepts__0__maxAmountRequired=str(2**256 - 1))
    assert challenge.valid, challenge.findings
    assert challenge.offers[0].price == f"${(2**256 - 1) // 10**6}.{(2**256 - 1) % 10**6:06d}"
