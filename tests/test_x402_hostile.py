"""Hostile challenges: huge numbers, unencodable text, unbounded strings, cut or unreadable bodies.

Issue 11, items 2 (the x402 part), 5 and 6. Each table row is a payload a hostile or broken
endpoint can send; the assertions say what a check must make of it: the right finding, no
crash, and nothing unbounded or unencodable left for the store, the pages or JSON output.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor import assess as assess_module
from monitor.assess import assess
from monitor.models import Challenge, Outcome, ProbeFacts, Severity
from monitor.x402 import first_error, parse_challenge
from monitor.x402.codes import MAX_MESSAGE_CHARS, MAX_PATH_CHARS
from monitor.x402.decode import MAX_FINDINGS
from monitor.x402.offers import MAX_AMOUNT_CHARS, MAX_IDENTIFIER_CHARS, MAX_PRICE_CHARS

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
V1_DOC: dict[str, Any] = json.loads((FIXTURES / "01-v1-evm-spec-base-sepolia.json").read_bytes())
V2_DOC: dict[str, Any] = json.loads((FIXTURES / "02b-v2-evm-spec-decoded.json").read_bytes())
V2_HEADER = (FIXTURES / "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64").read_text().strip()
HEADER = "payment-required"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
MIB = 1_048_576
LARGEST_HEADER = 1_000_000
"""A header limit above what a test sends, so huge values reach the rules (default 64 KiB)."""
MARK = "__MARK__"
"""Placeholder string in a fixture, replaced by a raw JSON literal (`json.dumps` cannot write
1e400, a 5000-digit number or a lone-surrogate byte)."""


def _with_literal(document: dict[str, Any], dotted: str, literal: bytes) -> bytes:
    """Return `document` as JSON bytes with the value at `dotted` replaced by raw `literal`."""
    copy = json.loads(json.dumps(document))
    *parents, last = dotted.split(".")
    node: Any = copy
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = MARK
    return json.dumps(copy).encode().replace(f'"{MARK}"'.encode(), literal)


def _as_header(raw: bytes) -> dict[str, str]:
    return {HEADER: base64.b64encode(raw).decode()}


def _v1(dotted: str, literal: bytes) -> Challenge:
    return parse_challenge({}, _with_literal(V1_DOC, dotted, literal))


def _v2(dotted: str, literal: bytes) -> Challenge:
    header = _as_header(_with_literal(V2_DOC, dotted, literal))
    return parse_challenge(header, b"", max_header_bytes=LARGEST_HEADER)


def _strings(value: Any) -> Iterator[str]:
    """Yield every string inside a result: dataclass fields, mappings (keys too), sequences."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _strings(getattr(value, item.name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def assert_safe(challenge: Challenge) -> None:
    """Assert what every sink relies on: encodable text, bounded findings and offer fields."""
    for text in _strings(challenge):
        text.encode("utf-8")  # raises on a lone surrogate
        assert "\x00" not in text
    assert len(challenge.findings) <= MAX_FINDINGS
    for item in challenge.findings:
        assert item.code != "challenge-unreadable", item
        assert len(item.message) <= MAX_MESSAGE_CHARS, item.code
        assert len(item.path) <= MAX_PATH_CHARS, item.code
        for text in (item.message, item.path):
            assert not any(character in text for character in "\n\r\t"), item
    for offer in challenge.offers:
        for field in (offer.scheme, offer.network, offer.asset, offer.pay_to):
            assert field is None or len(field) <= MAX_IDENTIFIER_CHARS
        assert offer.amount is None or len(offer.amount) <= MAX_AMOUNT_CHARS
        assert offer.price is None or len(offer.price) <= MAX_PRICE_CHARS
        assert offer.max_timeout_seconds is None or offer.max_timeout_seconds < 2**53


def _facts(headers: dict[str, str], body: bytes, **probe: Any) -> ProbeFacts:
    return ProbeFacts(
        url="https://api.example.com/pay",
        method="GET",
        method_guessed=False,
        started_at=T0,
        http_status=402,
        headers=headers,
        body=body,
        latency_ms=5.0,
        **probe,
    )


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    assess_module.CHALLENGES.clear()
    yield
    assess_module.CHALLENGES.clear()


# Item 5: amounts and other numbers ---------------------------------------------------------

UINT256_MAX = 2**256 - 1

# (id, raw JSON literal of the amount, code of the amount's first error or None)
AMOUNTS: list[tuple[str, bytes, str | None]] = [
    ("100,000 digits", b'"1' + b"0" * 99_999 + b'"', "amount-too-large"),
    ("2^256", b'"%d"' % (UINT256_MAX + 1), "amount-too-large"),
    ("79 nines", b'"' + b"9" * 79 + b'"', "amount-too-large"),
    ("2^256-1 is the largest", b'"%d"' % UINT256_MAX, None),
    ("leading zeros past 78 digits", b'"' + b"0" * 100 + b'1"', "amount-too-large"),
    ("a JSON number of 5000 digits", b"1" * 5000, "amount-not-string"),
    ("a JSON number 1e308", b"1e308", "amount-not-string"),
    ("a JSON number beyond float range", b"1e400", "amount-not-string"),
    ("a negative JSON number", b"-10000", "amount-not-string"),
    ("digits then NUL", b'"100\\u0000"', "amount-invalid"),
    ("digits then a lone surrogate", b'"100\\ud800"', "amount-invalid"),
    ("100,000 digits with a space", b'" ' + b"9" * 100_000 + b'"', "amount-invalid"),
]


@pytest.mark.parametrize(
    ("literal", "code"), [row[1:] for row in AMOUNTS], ids=[row[0] for row in AMOUNTS]
)
def test_amounts_are_judged_without_parsing_huge_numbers(literal: bytes, code: str | None) -> None:
    for challenge, path in [
        (_v1("accepts.0.maxAmountRequired", literal), "accepts[0].maxAmountRequired"),
        (_v2("accepts.0.amount", literal), "accepts[0].amount"),
    ]:
        assert_safe(challenge)
        # A 100,000-digit header is also over 16 KB: only the amount's findings matter here.
        errors = [f.code for f in challenge.findings if f.path == path]
        if code is None:
            assert first_error(challenge) is None, challenge.findings
            assert challenge.offers[0].price is not None
            continue
        assert errors == [code]
        assert challenge.valid is False
        assert challenge.offers[0].price is None


def test_a_too_large_amount_is_reported_by_its_length() -> None:
    challenge = _v1("accepts.0.maxAmountRequired", b'"1' + b"0" * 99_999 + b'"')
    error = first_error(challenge)
    assert error is not None
    assert error.severity is Severity.ERROR
    assert error.message.startswith(
        "accepts[0].maxAmountRequired has 100000 digits, beyond uint256 (at most 2^256-1"
    )
    assert challenge.offers[0].amount == "1" + "0" * (MAX_AMOUNT_CHARS - 2) + "…"


@pytest.mark.parametrize(
    ("literal", "fix"),
    [
        (b"10000", 'send "10000" in quotes'),
        (b"10000.0", 'send "10000" in quotes'),
        (b"1e308", "quote it"),  # not 'send "1e+308"': that is no amount either
        (b"-5", "quote it"),
        (b"1" * 5000, "quote it"),
    ],
)
def test_a_numeric_amount_suggests_quotes_only_for_a_usable_amount(
    literal: bytes, fix: str
) -> None:
    error = first_error(_v1("accepts.0.maxAmountRequired", literal))
    assert error is not None
    assert error.code == "amount-not-string"
    assert error.message.partition("; ")[2].startswith(fix)


# (id, raw JSON literal of maxTimeoutSeconds, code, the Offer's max_timeout_seconds)
TIMEOUTS: list[tuple[str, bytes, str, int | None]] = [
    ("1e308", b"1e308", "timeout-invalid", None),
    ("5000 digits", b"1" + b"0" * 4999, "timeout-invalid", None),
    ("beyond float range", b"1e400", "timeout-invalid", None),
    ("minus beyond float range", b"-1e400", "timeout-invalid", None),
    ("2^53", b"%d" % 2**53, "timeout-invalid", None),
    ("negative", b"-60", "timeout-invalid", None),
    ("2^53-1 is only long", b"%d" % (2**53 - 1), "timeout-long", 2**53 - 1),
]


@pytest.mark.parametrize(
    ("literal", "code", "kept"), [row[1:] for row in TIMEOUTS], ids=[row[0] for row in TIMEOUTS]
)
def test_timeouts_out_of_range_are_errors(literal: bytes, code: str, kept: int | None) -> None:
    challenge = _v1("accepts.0.maxTimeoutSeconds", literal)
    assert_safe(challenge)
    timeout = [f for f in challenge.findings if f.path == "accepts[0].maxTimeoutSeconds"]
    assert [f.code for f in timeout] == [code]
    assert challenge.valid is (code == "timeout-long")
    assert challenge.offers[0].max_timeout_seconds == kept


@pytest.mark.parametrize("literal", [b"1" + b"0" * 5000, b"1e400", b"-1e400", b"1e308"])
def test_a_huge_version_number_is_an_invalid_version_not_broken_json(literal: bytes) -> None:
    challenge = _v1("x402Version", literal)
    assert_safe(challenge)
    assert [f.code for f in challenge.findings][:1] == ["version-invalid"]


def test_huge_numbers_anywhere_else_do_not_break_the_challenge() -> None:
    document = json.loads(json.dumps(V1_DOC))
    document["accepts"][0]["extra"]["decimals"] = MARK
    document["nonce"] = MARK
    raw = json.dumps(document).encode().replace(f'"{MARK}"'.encode(), b"9" * 10_000)
    challenge = parse_challenge({}, raw)
    assert_safe(challenge)
    assert challenge.valid, challenge.findings


# Item 2: text that cannot be encoded -------------------------------------------------------

SURROGATE = b"\\ud800"
RAW_SURROGATE = b"\xed\xa0\x80"
"""A lone surrogate as (invalid) UTF-8 bytes: `json.loads(bytes)` lets it through."""


def _escaped() -> dict[str, Any]:
    """Return a v1 document with MARK in many strings and keys (see `_dumped`)."""
    document: dict[str, Any] = json.loads(json.dumps(V1_DOC))
    entry = document["accepts"][0]
    for key in ("payTo", "description", "network", "scheme", "mimeType"):
        entry[key] = f"{entry[key]}{MARK}"
    entry["extra"]["name"] = f"USDC{MARK}"
    entry[f"key{MARK}"] = f"value{MARK}"
    document[f"top{MARK}"] = [f"item{MARK}"]
    document["error"] = MARK
    return document


def _dumped(document: dict[str, Any], literal: bytes) -> bytes:
    """Return `document` as JSON bytes with every MARK replaced by raw string content."""
    return json.dumps(document).encode().replace(MARK.encode(), literal)


# (id, headers, body): every one decodes to a challenge full of unencodable text
UNENCODABLE: list[tuple[str, dict[str, str], bytes]] = [
    ("escaped surrogates in a v1 body", {}, _dumped(_escaped(), SURROGATE)),
    ("raw surrogate bytes in a v1 body", {}, _dumped(_escaped(), RAW_SURROGATE)),
    ("NUL in a v1 body", {}, _dumped(_escaped(), b"\\u0000")),
    ("control characters in a v1 body", {}, _dumped(_escaped(), b"\\u001b[31m\\n\\t")),
    (
        "escaped surrogates in a v2 header",
        _as_header(_dumped(json.loads(json.dumps(V2_DOC)) | {"top" + MARK: MARK}, SURROGATE)),
        b"",
    ),
    (
        "raw surrogate bytes in a v2 header",
        _as_header(
            _with_literal(V2_DOC, "accepts.0.payTo", b'"0x' + RAW_SURROGATE + b'"').replace(
                b'"resource"', b'"res' + RAW_SURROGATE + b'ource"'
            )
        ),
        b"",
    ),
    (
        "surrogates in a v1 body beside a v2 header",
        {HEADER: V2_HEADER},
        _dumped(_escaped(), SURROGATE),
    ),
    (
        "surrogates in bazaar metadata",
        _as_header(
            _with_literal(
                V2_DOC,
                "extensions",
                b'{"bazaar": {"info": {"input": {"type": "http", "method": "G\\ud800"}},'
                b' "schema": {"properties": {"\\ud800": {}, "a\\u0000": {}}}}}',
            )
        ),
        b"",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body"), [row[1:] for row in UNENCODABLE], ids=[row[0] for row in UNENCODABLE]
)
def test_unencodable_text_is_cleaned_where_it_enters(headers: dict[str, str], body: bytes) -> None:
    challenge = parse_challenge(headers, body)
    assert challenge.version in (1, 2), challenge.findings  # read, not refused as "not UTF-8"
    assert challenge.document is not None
    assert_safe(challenge)
    result = assess(_facts(headers, body))
    assert_safe(result.challenge or challenge)
    for text in _strings(result):
        text.encode("utf-8")
    # What `monitor check --json` and the store write: strict UTF-8 JSON.
    json.dumps([f.as_dict() for f in result.findings], ensure_ascii=False).encode("utf-8")
    json.dumps(challenge.document, ensure_ascii=False).encode("utf-8")


def test_cleaning_keeps_an_invalid_value_invalid() -> None:
    challenge = _v1("accepts.0.payTo", b'"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\\u0000"')
    error = first_error(challenge)
    assert error is not None
    assert (error.code, error.path) == ("address-invalid", "accepts[0].payTo")
    assert challenge.offers[0].pay_to == "0x209693Bc6afc0C5328bA36FaF03C514EF312287C\ufffd"


def test_a_surrogate_key_is_reported_as_an_unknown_key_with_a_clean_path() -> None:
    raw = json.dumps(V1_DOC).encode()[:-1] + b', "a\\ud800\\nb": 1}'
    challenge = parse_challenge({}, raw)
    unknown = [f for f in challenge.findings if f.code == "unknown-key"]
    assert [f.path for f in unknown] == ["a\ufffd b"]
    assert_safe(challenge)


def test_header_text_with_control_characters_is_never_echoed() -> None:
    header = V2_HEADER[:10] + "\x00\x1b[2J\u2028" + V2_HEADER[10:]
    challenge = parse_challenge({HEADER: header, "content-type": "text/html\x00\n"}, b"")
    assert [f.code for f in challenge.findings] == ["header-not-base64"]
    assert_safe(challenge)


# Item 5: stored and displayed strings are bounded ------------------------------------------

LONG = "x" * 100_000
LINES = "a\nb\r\n\tc" * 10_000
"""70,000 characters with line breaks and tabs."""


def _doc(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(base))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    return document


def _body(base: dict[str, Any], **changes: Any) -> tuple[dict[str, str], bytes]:
    return {}, json.dumps(
        _doc(base, {k.replace("__", "."): v for k, v in changes.items()})
    ).encode()


def _header(base: dict[str, Any], **changes: Any) -> tuple[dict[str, str], bytes]:
    """Return a v2 header answer; values are cut to 20,000 characters to stay under 64 KiB."""
    cut = {
        k.replace("__", "."): v[:20_000] if isinstance(v, str) else v for k, v in changes.items()
    }
    document = _doc(base, cut)
    return _as_header(json.dumps(document).encode()), b""


_SCHEMA_KEYS: dict[str, Any] = {f"{LINES[:3000]}{index}": {} for index in range(5)}

# (id, (headers, body), a code that must be among the findings, or None)
UNBOUNDED: list[tuple[str, tuple[dict[str, str], bytes], str | None]] = [
    ("v1 network", _body(V1_DOC, accepts__0__network=LONG), "network-unknown"),
    ("v2 network", _header(V2_DOC, accepts__0__network=LINES), "network-not-caip2"),
    ("v2 asset on a ledger without address rules",
     _header(V2_DOC, accepts__0__network="stellar:pubnet", accepts__0__asset=LONG),
     "asset-unverified"),
    ("payTo", _body(V1_DOC, accepts__0__payTo=LINES), "address-invalid"),
    ("scheme", _body(V1_DOC, accepts__0__scheme=LINES), None),
    ("transfer method", _body(V1_DOC, accepts__0__extra__assetTransferMethod=LINES),
     "transfer-method-invalid"),
    ("eip712 name", _body(V1_DOC, accepts__0__extra__name=LINES), "asset-domain-mismatch"),
    ("v1 resource", _body(V1_DOC, accepts__0__resource="http://a.example/" + LINES),
     "resource-not-https"),
    ("mime type and description", _body(V1_DOC, accepts__0__mimeType=LONG,
                                        accepts__0__description=LINES), None),
    ("payment flow", _header(V2_DOC, accepts__0__extra__paymentFlow=LINES),
     "payment-flow-unknown"),
    ("a long key with line breaks", _body(V1_DOC, **{LINES: 1}), "unknown-key"),
    ("10,000 unknown keys", _body(V1_DOC, **{f"k{i}\n": i for i in range(10_000)}),
     "unknown-key"),
    ("5,000 offers", _body(V1_DOC, accepts=[{"scheme": LINES[:70]}] * 5_000),
     "findings-truncated"),
    ("100 offers with every error",
     _body(V1_DOC, accepts=[{"maxTimeoutSeconds": "x", "extra": 1}] * 100),
     "findings-truncated"),
    ("version", _body(V1_DOC, x402Version=LINES), "version-invalid"),
    ("bazaar schema keys", _header(V2_DOC, extensions={
        "bazaar": {"info": {"input": {"type": "http", "method": "GET"}},
                   "schema": {"properties": _SCHEMA_KEYS}}}), "bazaar-schema-describes-body"),
    ("bazaar external reference", _header(V2_DOC, extensions={
        "bazaar": {"info": {"input": {"type": "http", "method": "GET"}},
                   "schema": {"$ref": "https://a.example/" + LINES[:20_000]}}}),
     "bazaar-schema-external-ref"),
    ("header body mismatch", ({HEADER: V2_HEADER}, _body(
        V1_DOC, accepts__0__payTo=LINES, accepts__0__resource=LINES)[1]),
     "header-body-mismatch"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "code"), [row[1:] for row in UNBOUNDED], ids=[row[0] for row in UNBOUNDED]
)
def test_endpoint_values_are_bounded_one_line_text(
    answer: tuple[dict[str, str], bytes], code: str | None
) -> None:
    challenge = parse_challenge(*answer)
    assert_safe(challenge)
    if code is not None:
        assert code in [f.code for f in challenge.findings]
    result = assess(_facts(*answer))
    assert result.error is None or len(result.error) <= MAX_MESSAGE_CHARS + 40


def test_a_long_asset_keeps_a_readable_bounded_price() -> None:
    headers, body = _header(
        V2_DOC, accepts__0__network="stellar:pubnet", accepts__0__asset="USDC" + LONG
    )
    offer = parse_challenge(headers, body).offers[0]
    assert offer.price is not None
    assert offer.price.startswith("10000 atomic units of USDCxxx")
    assert offer.price.endswith("…")
    assert offer.asset is not None
    assert len(offer.asset) == MAX_IDENTIFIER_CHARS


def test_too_many_findings_keep_the_errors_and_say_how_many_were_left_out() -> None:
    offers = [{"scheme": "exact"}] * 5_000  # 10,000 values: within MAX_JSON_VALUES
    challenge = parse_challenge(*_body(V1_DOC, accepts=offers))
    assert len(challenge.findings) == MAX_FINDINGS
    note = challenge.findings[-1]
    assert note.code == "findings-truncated"
    assert note.severity is Severity.INFO
    assert "more findings not shown" in note.message
    kept = [f.code for f in challenge.findings]
    assert "accepts-too-many" in kept
    error = first_error(challenge)
    assert error is not None
    assert error.path == "accepts[0].network"


def test_a_valid_challenge_with_many_warnings_stays_valid_when_cut() -> None:
    changes = {"accepts.0.maxTimeoutSeconds": 86400, "accepts.0.asset": "0x" + "1" * 40}
    entry = _doc(V1_DOC, changes)["accepts"][0]  # two warnings: a long timeout, an unknown asset
    offers = [{**entry, "payTo": "0x" + f"{i:040x}"} for i in range(100)]
    challenge = parse_challenge(*_body(V1_DOC, accepts=offers))
    assert challenge.valid
    assert len(challenge.findings) == MAX_FINDINGS
    assert challenge.findings[-1].code == "findings-truncated"


# Item 6: bodies cut at the probe's limit, or unreadable as sent ----------------------------

BIG = json.dumps(
    _doc(V1_DOC, {"accepts.0.description": "d" * int(6.6 * MIB)}), separators=(",", ":")
).encode()
"""A valid 6.6 MB v1 challenge: over the default 1 MiB body cap."""
_ACCENTED = json.dumps(_doc(V1_DOC, {"error": "é" * 700}), ensure_ascii=False).encode()
UTF8_CUT = _ACCENTED[: _ACCENTED.index("é".encode()) + 1]
"""A body cut in the middle of a two-byte character."""

CUT_MESSAGE = (
    "402 body is larger than the monitor reads (probe.max_body_bytes = {} bytes) and could not"
    " be parsed where it was cut; raise probe.max_body_bytes or send the challenge in the"
    " PAYMENT-REQUIRED header"
)

# (id, headers, body, ProbeFacts fields, expected codes, expected check error or None)
_Row = tuple[str, dict[str, str], bytes, dict[str, Any], list[str], str | None]
CUT_OR_UNREADABLE: list[_Row] = [
    ("6.6 MB JSON cut at 1 MiB", {"content-type": "application/json"}, BIG[:MIB],
     {"body_truncated": True}, ["body-too-large"],
     "invalid challenge: " + CUT_MESSAGE.format(MIB)),
    ("mislabelled as HTML, cut", {"content-type": "text/html"}, BIG[:MIB],
     {"body_truncated": True}, ["body-too-large"], None),
    ("cut inside a character", {}, UTF8_CUT, {"body_truncated": True}, ["body-too-large"],
     "invalid challenge: " + CUT_MESSAGE.format(len(UTF8_CUT))),
    ("an HTML page, cut", {}, b"<html>" + b"x" * 2000, {"body_truncated": True},
     ["body-html"], None),
    ("cut, but the header has the challenge", {HEADER: V2_HEADER}, BIG[:MIB],
     {"body_truncated": True}, [], None),
    ("not cut: still not JSON", {}, BIG[:MIB], {}, ["body-not-json"], None),
    ("unsupported encoding", {"content-encoding": "br"}, b"",
     {"body_error": "Content-Encoding 'br' is not decoded"}, ["body-unreadable"],
     "invalid challenge: 402 body could not be read: Content-Encoding 'br' is not decoded; "
     "send the 402 body uncompressed (the monitor asks for identity) or the challenge in the "
     "PAYMENT-REQUIRED header"),
    ("a decompression bomb, partly read", {}, BIG[:2000],
     {"body_error": "the gzip body expands more than 1000 times (a decompression bomb)"},
     ["body-unreadable"], None),
    ("an error text with control characters", {}, b"",
     {"body_error": "invalid gzip data:\n\x00\x1b[31m" + "z" * 10_000}, ["body-unreadable"],
     None),
    ("unreadable, but the header has the challenge", {HEADER: V2_HEADER}, b"\x1f\x8b",
     {"body_error": "invalid gzip data"}, [], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "body", "probe", "expected", "error"),
    [row[1:] for row in CUT_OR_UNREADABLE],
    ids=[row[0] for row in CUT_OR_UNREADABLE],
)
def test_cut_and_unreadable_bodies_say_why(
    headers: dict[str, str],
    body: bytes,
    probe: dict[str, Any],
    expected: list[str],
    error: str | None,
) -> None:
    result = assess(_facts(headers, body, **probe))
    assert result.challenge is not None
    assert_safe(result.challenge)
    assert [f.code for f in result.challenge.findings] == expected
    assert result.outcome is (Outcome.SOFT_FAIL if expected else Outcome.PASS)
    if error is not None:
        assert result.error == error
    fresh = parse_challenge(
        headers,
        body,
        body_truncated=probe.get("body_truncated", False),
        body_error=probe.get("body_error"),
    )
    assert fresh == result.challenge


def test_an_unreadable_body_error_is_quoted_as_one_bounded_line() -> None:
    challenge = parse_challenge({}, b"", body_error="bad\n\x00gzip " + "z" * 10_000)
    (item,) = challenge.findings
    assert item.message.startswith("402 body could not be read: bad \ufffdgzip zzz")
    assert len(item.message) < 400


def test_the_memo_tells_a_cut_body_from_a_whole_one() -> None:
    body = BIG[:MIB]
    whole = assess(_facts({}, body))
    cut = assess(_facts({}, body, body_truncated=True))
    unreadable = assess(_facts({}, body, body_error="invalid gzip data"))
    assert [f.code for f in whole.findings] == ["body-not-json"]
    assert [f.code for f in cut.findings] == ["body-too-large"]
    assert [f.code for f in unreadable.findings] == ["body-unreadable"]
