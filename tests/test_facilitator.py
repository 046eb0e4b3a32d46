"""Facilitator /supported validation (S0–S4, rule 20) and the offer cross-check, table-driven."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.discovery import FacilitatorClient, SupportedResult
from monitor.models import Challenge, FacilitatorVerdict, Finding, Offer, Severity
from monitor.x402.codes import CODES
from monitor.x402.decode import parse_challenge
from monitor.x402.facilitator import (
    MAX_FINDINGS,
    Supported,
    check_offer,
    facilitator_verdict,
    parse_supported,
)
from monitor.x402.facilitator_codes import FACILITATOR_CODES

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
SOLANA = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
SOLANA_DEV = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
FEE_PAYER = "CKPKJWNdJEqa81x7CkZ14BVPiY6y16Sxs7owznqtWYp5"  # in fixture 06's signers
OTHER_KEY = "2wKupLR9q6wXYppw8Gr2NvWxKBUqm4PPJKkQfoxHDBg4"  # fixture 13's feePayer
ALGORAND = "algorand:wGHE2Pwdvd7S12BL5FaOP20EGYesN73ktiC1qzkkit8="


def fixture06() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "06-supported-v2-spec.json").read_bytes())
    return document


def kind(version: Any, network: Any, scheme: Any = "exact", **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"x402Version": version, "scheme": scheme, "network": network}
    if extra:
        entry["extra"] = extra
    return entry


def v2(*kinds: Any, **top: Any) -> dict[str, Any]:
    """Return fixture 06 with `kinds` replaced (when given) and top-level keys set or dropped."""
    document = fixture06()
    if kinds:
        document["kinds"] = list(kinds)
    for key, value in top.items():
        if value is _DROP:
            document.pop(key, None)
        else:
            document[key] = value
    return document


_DROP = object()


def parse(document: Any) -> Supported:
    return parse_supported(json.dumps(document).encode())


def codes(findings: tuple[Finding, ...] | list[Finding]) -> list[str]:
    return [item.code for item in findings]


# The /supported document ----------------------------------------------------------------------


def test_fixture_06_is_valid() -> None:
    supported = parse_supported((FIXTURES / "06-supported-v2-spec.json").read_bytes())
    assert supported.valid
    assert supported.findings == ()
    assert [(k.x402_version, k.scheme, k.network) for k in supported.kinds][:2] == [
        (2, "exact", "eip155:84532"),
        (2, "exact", "eip155:8453"),
    ]
    assert len(supported.kinds) == 4
    assert all(k.caip2 == k.network for k in supported.kinds)
    assert supported.extensions == ()
    assert supported.signers == {
        "eip155:*": ("0x1234567890abcdef1234567890abcdef12345678",),
        "solana:*": (FEE_PAYER,),
    }


SOLANA_OK = kind(2, SOLANA, feePayer=FEE_PAYER)

DOCUMENTS: list[tuple[str, Any, list[tuple[str, str]], bool, int]] = [
    # id, document, [(code, path)], valid, readable kinds
    ("v1-only-needs-no-signers", {"kinds": [kind(1, "base")]}, [], True, 1),
    ("mixed-v1-v2", v2(kind(1, "base"), kind(2, "eip155:8453")), [], True, 2),
    ("algorand-allow-listed", v2(kind(2, ALGORAND)), [], True, 1),
    ("solana-fee-payer-in-signers", v2(SOLANA_OK), [], True, 1),
    (
        "solana-fee-payer-under-exact-network-pattern",
        v2(kind(2, SOLANA_DEV, feePayer=OTHER_KEY), signers={SOLANA_DEV: [OTHER_KEY]}),
        [],
        True,
        1,
    ),
    (
        "solana-v1-kind-without-signers-document",
        {"kinds": [kind(1, "solana", feePayer=OTHER_KEY)]},
        [],
        True,
        1,
    ),
    (
        "grouped-kinds",
        {
            "kinds": {"1": [{"scheme": "exact", "network": "base"}], "2": [kind(2, "eip155:8453")]},
            "extensions": [],
            "signers": {},
        },
        [("supported-kinds-grouped", "kinds")],
        False,
        2,
    ),
    (
        "grouped-kinds-bad-group",
        {"kinds": {"2": "x"}},
        [("supported-kinds-grouped", "kinds"), ("supported-kinds-invalid", 'kinds["2"]')],
        False,
        0,
    ),
    ("v2-without-signers", v2(signers=_DROP), [("supported-signers-missing", "signers")], False, 4),
    (
        "v2-without-extensions",
        v2(extensions=_DROP),
        [("supported-extensions-missing", "extensions")],
        False,
        4,
    ),
    (
        "extensions-not-list",
        v2(extensions={}),
        [("supported-extensions-invalid", "extensions")],
        False,
        4,
    ),
    (
        "extensions-non-strings",
        v2(extensions=[1]),
        [("supported-extensions-invalid", "extensions")],
        False,
        4,
    ),
    ("signers-not-object", v2(signers=[]), [("supported-signers-invalid", "signers")], False, 4),
    (
        "signers-entry-not-list",
        v2(signers={"eip155:*": "0xabc"}),
        [("supported-signers-invalid", 'signers["eip155:*"]')],
        False,
        4,
    ),
    (
        "v2-network-v1-name",
        v2(kind(2, "base")),
        [("supported-network-not-caip2", "kinds[0].network")],
        False,
        1,
    ),
    (
        "v2-solana-v1-name",
        v2(kind(2, "solana", feePayer=FEE_PAYER)),
        [("supported-network-noncanonical", "kinds[0].network")],
        False,
        1,
    ),
    (
        "v2-solana-devnet-v1-name",
        v2(kind(2, "solana-devnet", feePayer=FEE_PAYER)),
        [("supported-network-noncanonical", "kinds[0].network")],
        False,
        1,
    ),
    (
        "v2-solana-made-up-reference",
        v2(kind(2, "solana:mainnet", feePayer=FEE_PAYER)),
        [("supported-network-noncanonical", "kinds[0].network")],
        False,
        1,
    ),
    (
        "solana-fee-payer-missing",
        v2(kind(2, SOLANA)),
        [("supported-feepayer-missing", "kinds[0].extra.feePayer")],
        False,
        1,
    ),
    (
        "solana-fee-payer-placeholder",
        v2(kind(2, SOLANA, feePayer="...")),
        [("supported-feepayer-invalid", "kinds[0].extra.feePayer")],
        False,
        1,
    ),
    (
        "solana-fee-payer-wrong-length",
        v2(kind(2, SOLANA, feePayer="1111")),
        [("supported-feepayer-invalid", "kinds[0].extra.feePayer")],
        False,
        1,
    ),
    (
        "solana-fee-payer-not-in-signers",
        v2(kind(2, SOLANA, feePayer=OTHER_KEY)),
        [("supported-feepayer-not-signer", "kinds[0].extra.feePayer")],
        True,  # a warning only: the facilitator may still sign with it
        1,
    ),
    (
        "kinds-missing",
        {"extensions": [], "signers": {}},
        [("supported-kinds-missing", "kinds")],
        False,
        0,
    ),
    ("kinds-not-list", {"kinds": "exact"}, [("supported-kinds-invalid", "kinds")], False, 0),
    ("kinds-null", v2(kinds=None), [("supported-kinds-missing", "kinds")], False, 0),
    (
        "extensions-null",
        v2(extensions=None),
        [("supported-extensions-invalid", "extensions")],
        False,
        4,
    ),
    ("signers-null", v2(signers=None), [("supported-signers-invalid", "signers")], False, 4),
    (
        "kind-version-missing",
        v2({"scheme": "exact", "network": "eip155:8453"}),
        [("supported-kind-version-invalid", "kinds[0].x402Version")],
        False,
        0,
    ),
    (
        "kind-scheme-missing",
        v2({"x402Version": 2, "network": "eip155:8453"}),
        [("supported-kind-field-invalid", "kinds[0].scheme")],
        False,
        0,
    ),
    ("kinds-empty", v2(kinds=[]), [("supported-kinds-empty", "kinds")], True, 0),
    (
        "kind-not-object",
        v2("exact", kind(2, "eip155:8453")),
        [("supported-kind-not-object", "kinds[0]")],
        False,
        1,
    ),
    (
        "kind-version-string-is-read",
        v2(kind("2", "eip155:8453")),
        [("supported-kind-version-invalid", "kinds[0].x402Version")],
        False,
        1,
    ),
    (
        "kind-version-3-is-dropped",
        v2(kind(3, "eip155:8453")),
        [("supported-kind-version-invalid", "kinds[0].x402Version")],
        False,
        0,
    ),
    (
        "kind-version-bool-is-dropped",
        v2(kind(True, "eip155:8453")),
        [("supported-kind-version-invalid", "kinds[0].x402Version")],
        False,
        0,
    ),
    (
        "kind-scheme-empty",
        v2(kind(2, "eip155:8453", scheme="")),
        [("supported-kind-field-invalid", "kinds[0].scheme")],
        False,
        0,
    ),
    (
        "kind-network-number",
        v2(kind(2, 8453)),
        [("supported-kind-field-invalid", "kinds[0].network")],
        False,
        0,
    ),
    (
        "kind-extra-not-object",
        v2({**kind(2, "eip155:8453"), "extra": "x"}),
        [("supported-kind-field-invalid", "kinds[0].extra")],
        False,
        1,
    ),
]


# Documents of a shape the official SDK's `SupportedResponse` refuses (kinds not a list of
# objects, a kind field of the wrong JSON type, extensions/signers of the wrong type): no offer
# can be checked against them. Every other document is usable, errors or not.
MALFORMED = {
    "grouped-kinds",
    "grouped-kinds-bad-group",
    "extensions-not-list",
    "extensions-non-strings",
    "extensions-null",
    "signers-not-object",
    "signers-entry-not-list",
    "signers-null",
    "kinds-missing",
    "kinds-not-list",
    "kinds-null",
    "kind-not-object",
    "kind-version-bool-is-dropped",
    "kind-version-missing",
    "kind-scheme-missing",
    "kind-network-number",
    "kind-extra-not-object",
}


def test_malformed_ids_name_rows_of_the_table() -> None:
    assert {row[0] for row in DOCUMENTS} >= MALFORMED


@pytest.mark.parametrize(
    ("document", "expected", "valid", "readable", "usable"),
    [pytest.param(*row[1:], row[0] not in MALFORMED, id=row[0]) for row in DOCUMENTS],
)
def test_documents(
    document: Any, expected: list[tuple[str, str]], valid: bool, readable: int, usable: bool
) -> None:
    supported = parse(document)
    assert [(f.code, f.path) for f in supported.findings] == expected
    assert supported.valid is valid
    assert len(supported.kinds) == readable
    assert supported.usable is usable
    assert (supported.malformed is None) is usable
    for item in supported.findings:
        assert item.severity is FACILITATOR_CODES[item.code].severity
        assert "; " in item.message  # problem; fix


def test_grouped_kinds_are_read_with_their_group_version_but_make_the_document_unusable() -> None:
    supported = parse({"kinds": {"1": [{"scheme": "exact", "network": "base"}], "2": []}})
    assert [(k.x402_version, k.network, k.caip2, k.path) for k in supported.kinds] == [
        (1, "base", "eip155:8453", 'kinds["1"][0]')
    ]
    assert not supported.usable  # the official SDK refuses the whole document
    assert "read 1 kinds" in supported.findings[0].message
    assert supported.malformed == supported.findings[0].message


def test_each_kind_carries_its_first_error() -> None:
    supported = parse(
        v2(
            kind(2, "eip155:8453"),
            kind(2, SOLANA),  # no feePayer: an error
            kind(2, SOLANA_DEV, feePayer=OTHER_KEY),  # not in signers: a warning only
            kind("2", "eip155:137"),  # read, but the version is a string
            kind(2, "base"),  # v1 name in a v2 kind
        )
    )
    errors = {k.path: k.error for k in supported.kinds}
    assert errors["kinds[0]"] is None
    assert errors["kinds[1]"] is not None
    assert errors["kinds[1]"].startswith("kinds[1].extra.feePayer is missing")
    assert errors["kinds[2]"] is None
    assert errors["kinds[3]"] is not None
    assert "x402Version is the string '2'" in errors["kinds[3]"]
    assert errors["kinds[4]"] is not None
    assert "not CAIP-2" in errors["kinds[4]"]
    assert supported.usable


def test_kind_errors_survive_the_cap_on_findings() -> None:
    noise = [kind(2, f"bad network {i}") for i in range(30)]
    supported = parse(v2(*noise, kind(2, SOLANA)))
    assert len(supported.findings) == MAX_FINDINGS + 1  # the feePayer finding is cut off...
    assert supported.kinds[-1].error is not None  # ...but the kind still knows its error
    verdict, _ = check_offer(supported, offer(SOLANA, feePayer=FEE_PAYER), 2)
    assert verdict is FacilitatorVerdict.INVALID


def test_strings_from_the_document_are_bounded_in_findings() -> None:
    huge = "x" * 200_000
    supported = parse(
        {
            "kinds": {huge: [kind(2, "solana" + huge, feePayer="\ud800" * 40)]},
            "signers": {huge: "not a list"},
            "extensions": [],
        }
    )
    assert supported.findings
    for item in supported.findings:
        assert len(item.message) < 1000, item.code
        assert len(item.path) < 1000, item.code
        item.message.encode("utf-8")  # no lone surrogate
        item.path.encode("utf-8")
    # An unsupported offer lists the kinds of its chain: their schemes are bounded too.
    listed = parse(v2(kind(2, "eip155:8453", scheme="s" * 200_000)))
    _, findings = check_offer(listed, offer("eip155:8453", scheme="\udcff" + "e" * 5000), 2)
    (item,) = findings
    assert len(item.message) < 1000
    item.message.encode("utf-8")
    # The verdict on an offer whose kind is broken quotes the kind's error: bounded too.
    fee_doc = {"kinds": [kind(1, "solana", feePayer=FEE_PAYER + "\ud800" * 5000)]}
    _, findings = check_offer(parse(fee_doc), offer("solana", feePayer=OTHER_KEY), 1)
    for item in findings:
        assert len(item.message) < 1000
        item.message.encode("utf-8")


def test_v2_network_not_caip2_suggests_the_caip2_id() -> None:
    (finding,) = parse(v2(kind(2, "base"))).findings
    assert "'eip155:8453'" in finding.message


def test_findings_are_capped() -> None:
    supported = parse(v2(*[kind(2, f"bad network {i}") for i in range(30)]))
    assert len(supported.findings) == MAX_FINDINGS + 1
    assert supported.findings[-1].code == "supported-findings-truncated"
    assert "10 more" in supported.findings[-1].message
    assert not supported.valid
    assert len(supported.kinds) == 30


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "supported-not-json"),
        (b"<html>Not found</html>", "supported-not-json"),
        (b"\xff\xfe\x00garbage", "supported-not-json"),
        (b"[" * 100_000, "supported-not-json"),
        (b"[]", "supported-not-object"),
        (b"null", "supported-not-object"),
        (b'"kinds"', "supported-not-object"),
        (b"NaN", "supported-not-json"),
        (b"[" * 65 + b"]" * 65, "supported-not-json"),
        (b'{"kinds": ' + b"[" * 63 + b"]" * 63 + b"}", "supported-kind-not-object"),
    ],
)
def test_junk_bodies(body: bytes, code: str) -> None:
    supported = parse_supported(body)
    assert codes(supported.findings) == [code]
    assert not supported.valid
    assert not supported.usable
    assert supported.kinds == ()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)
_kind_like = st.fixed_dictionaries(
    {},
    optional={
        "x402Version": st.sampled_from([1, 2, "2", 3, None, True]),
        "scheme": st.sampled_from(["exact", "", 1]),
        "network": st.sampled_from(["base", "eip155:8453", SOLANA, "solana", "", 5]),
        "extra": st.one_of(
            _json, st.fixed_dictionaries({"feePayer": st.one_of(_json, st.just(FEE_PAYER))})
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    supported = parse_supported(body)
    assert supported.valid is not any(f.severity is Severity.ERROR for f in supported.findings)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "kinds": st.one_of(_json, st.lists(_kind_like, max_size=4)),
            "extensions": _json,
            "signers": st.one_of(_json, st.dictionaries(st.text(max_size=10), _json, max_size=3)),
        },
    )
)
def test_arbitrary_documents_never_raise(document: dict[str, Any]) -> None:
    supported = parse_supported(json.dumps(document).encode())
    assert all(f.code in FACILITATOR_CODES for f in supported.findings)
    for network in ("eip155:8453", "base", SOLANA, "solana"):
        for version in (1, 2):
            extra = {"feePayer": OTHER_KEY}
            offer = Offer(0, "exact", network, "1", "0x", "0x", 60, extra, True)
            verdict, _ = check_offer(supported, offer, version)
            assert verdict in set(FacilitatorVerdict)


# Cross-check of one offer ---------------------------------------------------------------------


def offer(network: str | None, scheme: str | None = "exact", **extra: Any) -> Offer:
    return Offer(0, scheme, network, "10000", "0xasset", "0xpayto", 60, extra or None, True)


V1_DOC = {"kinds": [kind(1, "base"), kind(1, "solana", feePayer=FEE_PAYER)]}
V1_CAIP2_DOC = {"kinds": [kind(1, "eip155:8453")]}
GROUPED_DOC = {"kinds": {"1": [{"scheme": "exact", "network": "base"}]}}
SOLANA_DOC = v2(kind(2, SOLANA, feePayer=FEE_PAYER))
SOLANA_NO_FEE_DOC = {"kinds": [kind(1, "solana")], "signers": {"solana:*": [FEE_PAYER]}}
UNUSABLE_DOC: dict[str, Any] = {"extensions": [], "signers": {}}
_ABSENT = object()

CROSS_CHECKS: list[tuple[str, Any, bool, Offer, int | None, FacilitatorVerdict, list[str]]] = [
    # id, /supported document (_ABSENT = no facilitator), reachable, offer, version, verdict, codes
    ("supported", fixture06(), True, offer("eip155:8453"), 2, FacilitatorVerdict.SUPPORTED, []),
    (
        "unsupported-network",
        fixture06(),
        True,
        offer("eip155:137"),
        2,
        FacilitatorVerdict.UNSUPPORTED,
        ["facilitator-unsupported"],
    ),
    (
        "unsupported-scheme",
        fixture06(),
        True,
        offer("eip155:8453", scheme="upto"),
        2,
        FacilitatorVerdict.UNSUPPORTED,
        ["facilitator-unsupported"],
    ),
    (
        "version-mismatch-v1-offer-v2-kinds",
        fixture06(),
        True,
        offer("base"),
        1,
        FacilitatorVerdict.UNSUPPORTED,
        ["facilitator-unsupported"],
    ),
    (
        "version-mismatch-v2-offer-v1-kinds",
        V1_DOC,
        True,
        offer("eip155:8453"),
        2,
        FacilitatorVerdict.UNSUPPORTED,
        ["facilitator-unsupported"],
    ),
    ("v1-names", V1_DOC, True, offer("base"), 1, FacilitatorVerdict.SUPPORTED, []),
    (
        "alias-base-eip155-8453-same-version",
        V1_CAIP2_DOC,
        True,
        offer("base"),
        1,
        FacilitatorVerdict.SUPPORTED,
        ["facilitator-network-alias"],
    ),
    (
        "unknown-facilitator",
        _ABSENT,
        True,
        offer("base"),
        1,
        FacilitatorVerdict.UNKNOWN,
        ["facilitator-unknown"],
    ),
    (
        "unreachable",
        _ABSENT,
        False,
        offer("base"),
        1,
        FacilitatorVerdict.UNREACHABLE,
        ["facilitator-unreachable"],
    ),
    (
        "unreachable-wins-over-a-stale-document",
        fixture06(),
        False,
        offer("eip155:8453"),
        2,
        FacilitatorVerdict.UNREACHABLE,
        ["facilitator-unreachable"],
    ),
    (
        "invalid-unusable-document",
        UNUSABLE_DOC,
        True,
        offer("eip155:8453"),
        2,
        FacilitatorVerdict.INVALID,
        ["supported-kinds-missing", "facilitator-invalid"],
    ),
    (
        "grouped-kinds-are-invalid-even-when-a-kind-matches",
        GROUPED_DOC,
        True,
        offer("base"),
        1,
        FacilitatorVerdict.INVALID,
        ["supported-kinds-grouped", "facilitator-invalid"],
    ),
    ("offer-without-network", fixture06(), True, offer(None), 2, FacilitatorVerdict.UNKNOWN, []),
    (
        "offer-without-version",
        fixture06(),
        True,
        offer("eip155:8453"),
        None,
        FacilitatorVerdict.UNKNOWN,
        [],
    ),
    (
        "solana-fee-payer-matches",
        SOLANA_DOC,
        True,
        offer(SOLANA, feePayer=FEE_PAYER),
        2,
        FacilitatorVerdict.SUPPORTED,
        [],
    ),
    (
        "solana-fee-payer-mismatch",
        SOLANA_DOC,
        True,
        offer(SOLANA, feePayer=OTHER_KEY),
        2,
        FacilitatorVerdict.SUPPORTED,
        ["facilitator-feepayer-mismatch"],
    ),
    (
        "matching-solana-kind-without-fee-payer-is-invalid",
        SOLANA_NO_FEE_DOC,
        True,
        offer("solana", feePayer=FEE_PAYER),
        1,
        FacilitatorVerdict.INVALID,
        ["supported-feepayer-missing", "facilitator-kind-invalid"],
    ),
    (
        "matching-solana-kind-with-a-fee-payer-of-the-wrong-type-is-invalid",
        v2(kind(2, SOLANA, feePayer=[FEE_PAYER])),
        True,
        offer(SOLANA, feePayer=FEE_PAYER),
        2,
        FacilitatorVerdict.INVALID,
        ["supported-feepayer-invalid", "facilitator-kind-invalid"],
    ),
    (
        "a-clean-duplicate-of-a-broken-kind-is-used",
        v2(kind(2, SOLANA), SOLANA_OK),
        True,
        offer(SOLANA, feePayer=FEE_PAYER),
        2,
        FacilitatorVerdict.SUPPORTED,
        ["supported-feepayer-missing"],
    ),
    (
        "a-broken-kind-of-another-chain-does-not-matter",
        v2(kind(2, SOLANA), kind(2, "eip155:8453")),
        True,
        offer("eip155:8453"),
        2,
        FacilitatorVerdict.SUPPORTED,
        ["supported-feepayer-missing"],
    ),
    (
        "solana-offer-without-fee-payer-is-the-challenge-validators-job",
        SOLANA_DOC,
        True,
        offer(SOLANA),
        2,
        FacilitatorVerdict.SUPPORTED,
        [],
    ),
]


@pytest.mark.parametrize(
    ("document", "reachable", "the_offer", "version", "verdict", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in CROSS_CHECKS],
)
def test_cross_check(
    document: Any,
    reachable: bool,
    the_offer: Offer,
    version: int | None,
    verdict: FacilitatorVerdict,
    expected: list[str],
) -> None:
    supported = None if document is _ABSENT else parse(document)
    got, findings = check_offer(supported, the_offer, version, reachable=reachable)
    assert (got, codes(findings)) == (verdict, expected)
    for item in findings:
        assert item.severity is FACILITATOR_CODES[item.code].severity


def test_unsupported_names_the_missing_kind_and_what_is_supported() -> None:
    _, (finding,) = check_offer(parse(fixture06()), offer("base"), 1)
    assert finding.path == "accepts[0].network"
    assert finding.severity is Severity.ERROR
    assert "no kind (v1, exact, base)" in finding.message
    assert "supports (v2, exact, eip155:8453)" in finding.message
    _, (finding,) = check_offer(parse(fixture06()), offer("eip155:137"), 2)
    assert "supports nothing" in finding.message


def test_fee_payer_mismatch_says_the_facilitator_will_not_sign() -> None:
    _, (finding,) = check_offer(parse(SOLANA_DOC), offer(SOLANA, feePayer=OTHER_KEY), 2)
    assert finding.path == "accepts[0].extra.feePayer"
    assert "will not sign as this fee payer" in finding.message
    assert FEE_PAYER in finding.message


# A whole challenge ----------------------------------------------------------------------------


def challenge_from(name: str) -> Any:
    if name.endswith(".b64"):
        header = (FIXTURES / name).read_text().strip()
        return parse_challenge({"payment-required": header}, b"{}")
    return parse_challenge({}, (FIXTURES / name).read_bytes())


def test_real_v2_challenge_is_supported_by_fixture_06() -> None:
    challenge = challenge_from("02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64")
    assert facilitator_verdict(parse(fixture06()), challenge) == (FacilitatorVerdict.SUPPORTED, [])


def test_real_v1_dual_rail_challenge_is_unsupported_by_a_v2_only_facilitator() -> None:
    challenge = challenge_from("13-v1-evm-svm-real-skill-registry-dual-rail.json")
    verdict, findings = facilitator_verdict(parse(fixture06()), challenge)
    assert verdict is FacilitatorVerdict.UNSUPPORTED
    assert [f.path for f in findings] == ["accepts[0].network", "accepts[1].network"]
    assert "(v2, exact, eip155:84532)" in findings[0].message  # what it does support


def test_real_v1_dual_rail_challenge_checks_the_solana_fee_payer() -> None:
    challenge = challenge_from("13-v1-evm-svm-real-skill-registry-dual-rail.json")
    document = {"kinds": [kind(1, "base-sepolia"), kind(1, "solana", feePayer=FEE_PAYER)]}
    verdict, findings = facilitator_verdict(parse(document), challenge)
    assert verdict is FacilitatorVerdict.SUPPORTED
    assert [(f.code, f.path) for f in findings] == [
        ("facilitator-feepayer-mismatch", "accepts[1].extra.feePayer")
    ]


def test_headline_offer_decides_and_every_offer_is_reported() -> None:
    body = json.loads((FIXTURES / "13-v1-evm-svm-real-skill-registry-dual-rail.json").read_bytes())
    swapped = copy.deepcopy(body)
    swapped["accepts"].reverse()  # Solana first: it becomes the headline
    challenge = parse_challenge({}, json.dumps(swapped).encode())
    document = {"kinds": [kind(1, "base-sepolia")]}
    verdict, findings = facilitator_verdict(parse(document), challenge)
    assert verdict is FacilitatorVerdict.UNSUPPORTED
    assert [(f.code, f.path) for f in findings] == [
        ("facilitator-unsupported", "accepts[0].network")
    ]


@pytest.mark.parametrize(
    ("document", "reachable", "verdict"),
    [
        (_ABSENT, False, FacilitatorVerdict.UNREACHABLE),  # e.g. the endpoint answered 500
        (_ABSENT, True, FacilitatorVerdict.UNKNOWN),
        (UNUSABLE_DOC, True, FacilitatorVerdict.INVALID),
        (fixture06(), True, FacilitatorVerdict.UNKNOWN),  # no offer to check
    ],
)
def test_verdict_without_a_challenge(
    document: Any, reachable: bool, verdict: FacilitatorVerdict
) -> None:
    supported = None if document is _ABSENT else parse(document)
    assert facilitator_verdict(supported, None, reachable=reachable)[0] is verdict


# Every path from a facilitator's answer to a verdict ------------------------------------------

SELLER = "https://seller.example/pay"
SOLANA_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def v2_challenge(**entry: Any) -> Challenge:
    """Return the parsed v2 challenge of one offer sent in the PAYMENT-REQUIRED header."""
    document = {"x402Version": 2, "resource": {"url": SELLER}, "accepts": [entry]}
    header = base64.b64encode(json.dumps(document).encode()).decode()
    return parse_challenge({"payment-required": header}, b"{}")


EVM_V2 = challenge_from("02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64")  # exact, eip155:84532
EVM_V1 = challenge_from("01-v1-evm-spec-base-sepolia.json")  # exact, base-sepolia


def solana_v2(fee_payer: str) -> Challenge:
    """Return a v2 Solana USDC challenge whose offer names `fee_payer`."""
    return v2_challenge(
        scheme="exact",
        network=SOLANA,
        amount="1000",
        asset=SOLANA_USDC,
        payTo=OTHER_KEY,
        maxTimeoutSeconds=60,
        extra={"feePayer": fee_payer},
    )


SOLANA_V2 = solana_v2(FEE_PAYER)
SOLANA_V2_OTHER_FEE_PAYER = solana_v2(OTHER_KEY)
SEPOLIA_V2 = kind(2, "eip155:84532")


def test_the_challenges_of_the_path_table_are_valid() -> None:
    for challenge in (EVM_V2, EVM_V1, SOLANA_V2, SOLANA_V2_OTHER_FEE_PAYER):
        assert challenge.valid, challenge.findings


Answer = Callable[[httpx.Request], httpx.Response]


def answer(status: int, body: bytes | Any = b"", content_type: str = "application/json") -> Answer:
    """Return a transport handler answering `status` with `body` (JSON-encoded unless bytes)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda request: httpx.Response(
        status, content=content, headers={"content-type": content_type}
    )


def fail(error: type[httpx.TransportError]) -> Answer:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("simulated", request=request)

    return handler


NO_FACILITATOR = object()

# id, the facilitator's answer (NO_FACILITATOR: none is known), challenge (None: the endpoint
# answered no 402), verdict, codes of the findings. Rows are grouped by the path they take.
VERDICT_PATHS: list[tuple[str, Any, Challenge | None, FacilitatorVerdict, list[str]]] = [
    # No facilitator, or nothing to check: unknown.
    ("no-facilitator", NO_FACILITATOR, EVM_V2, FacilitatorVerdict.UNKNOWN, ["facilitator-unknown"]),
    ("no-402-to-check", answer(200, fixture06()), None, FacilitatorVerdict.UNKNOWN, []),
    # The facilitator did not answer usefully at the HTTP level: an outage is unreachable.
    (
        "connect-error",
        fail(httpx.ConnectError),
        EVM_V2,
        FacilitatorVerdict.UNREACHABLE,
        ["facilitator-unreachable"],
    ),
    (
        "read-timeout",
        fail(httpx.ReadTimeout),
        EVM_V2,
        FacilitatorVerdict.UNREACHABLE,
        ["facilitator-unreachable"],
    ),
    ("http-500", answer(500), EVM_V2, FacilitatorVerdict.UNREACHABLE, ["facilitator-unreachable"]),
    ("http-503", answer(503), EVM_V2, FacilitatorVerdict.UNREACHABLE, ["facilitator-unreachable"]),
    ("http-429", answer(429), EVM_V2, FacilitatorVerdict.UNREACHABLE, ["facilitator-unreachable"]),
    (
        "unreachable-without-a-402",
        answer(502),
        None,
        FacilitatorVerdict.UNREACHABLE,
        ["facilitator-unreachable"],
    ),
    # It answered, but not a usable /supported: invalid.
    (
        "http-401",
        answer(401, {"error": "unauthorized"}),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-auth", "facilitator-invalid"],
    ),
    (
        "http-404-wrong-base-url",
        answer(404, b"not found", "text/plain"),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-http-status", "facilitator-invalid"],
    ),
    (
        "html-not-json",
        answer(200, b"<html>facilitator</html>", "text/html"),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-not-json", "facilitator-invalid"],
    ),
    (
        "empty-body",
        answer(200, b""),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-not-json", "facilitator-invalid"],
    ),
    (
        "too-deep",
        answer(200, b"[" * 10_000 + b"]" * 10_000),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-not-json", "facilitator-invalid"],
    ),
    (
        "too-large",
        answer(200, b'{"kinds": [' + b" " * 100_000 + b"]}"),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-too-large", "facilitator-invalid"],
    ),
    (
        "not-an-object",
        answer(200, [SEPOLIA_V2]),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-not-object", "facilitator-invalid"],
    ),
    (
        "unusable-without-a-402",
        answer(200, b"<html>"),
        None,
        FacilitatorVerdict.INVALID,
        ["supported-not-json", "facilitator-invalid"],
    ),
    # A JSON document of a shape the official SDK refuses: invalid, even where a kind matches.
    (
        "kinds-grouped-by-version",
        answer(200, v2(kinds={"2": [SEPOLIA_V2]})),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-kinds-grouped", "facilitator-invalid"],
    ),
    (
        "kinds-grouped-without-a-challenge",
        answer(200, v2(kinds={"2": [SEPOLIA_V2]})),
        None,
        FacilitatorVerdict.INVALID,
        ["supported-kinds-grouped", "facilitator-invalid"],
    ),
    (
        "kinds-missing",
        answer(200, v2(kinds=_DROP)),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-kinds-missing", "facilitator-invalid"],
    ),
    (
        "a-kind-is-not-an-object",
        answer(200, v2(SEPOLIA_V2, "exact")),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-kind-not-object", "facilitator-invalid"],
    ),
    (
        "a-kind-field-is-mistyped",
        answer(200, v2(SEPOLIA_V2, kind(2, 8453))),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-kind-field-invalid", "facilitator-invalid"],
    ),
    (
        "extensions-null",
        answer(200, v2(SEPOLIA_V2, extensions=None)),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-extensions-invalid", "facilitator-invalid"],
    ),
    (
        "signers-entry-not-a-list",
        answer(200, v2(SEPOLIA_V2, signers={"eip155:*": "0xabc"})),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-signers-invalid", "facilitator-invalid"],
    ),
    # A usable document without a kind for the offer: unsupported.
    (
        "no-kind-for-the-network",
        answer(200, v2(kind(2, "eip155:8453"))),
        EVM_V2,
        FacilitatorVerdict.UNSUPPORTED,
        ["facilitator-unsupported"],
    ),
    (
        "no-kind-for-the-version",
        answer(200, fixture06()),
        EVM_V1,
        FacilitatorVerdict.UNSUPPORTED,
        ["facilitator-unsupported"],
    ),
    (
        "empty-kinds",
        answer(200, v2(kinds=[])),
        EVM_V2,
        FacilitatorVerdict.UNSUPPORTED,
        ["supported-kinds-empty", "facilitator-unsupported"],
    ),
    # The kind matching the offer carries an error: invalid.
    (
        "matching-solana-kind-without-fee-payer",
        answer(200, v2(kind(2, SOLANA))),
        SOLANA_V2,
        FacilitatorVerdict.INVALID,
        ["supported-feepayer-missing", "facilitator-kind-invalid"],
    ),
    (
        "matching-solana-kind-with-a-placeholder-fee-payer",
        answer(200, v2(kind(2, SOLANA, feePayer="..."))),
        SOLANA_V2,
        FacilitatorVerdict.INVALID,
        ["supported-feepayer-invalid", "facilitator-kind-invalid"],
    ),
    (
        "matching-kind-has-a-string-version",
        answer(200, v2(kind("2", "eip155:84532"))),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-kind-version-invalid", "facilitator-kind-invalid"],
    ),
    (
        "matching-v2-kind-spells-its-network-the-v1-way",
        answer(200, v2(kind(2, "base-sepolia"))),
        EVM_V2,
        FacilitatorVerdict.INVALID,
        ["supported-network-not-caip2", "facilitator-kind-invalid"],
    ),
    # Matched through a network alias only: supported, with a warning.
    (
        "v1-offer-name-matches-a-v1-kind-caip2-id",
        answer(200, {"kinds": [kind(1, "eip155:84532")]}),
        EVM_V1,
        FacilitatorVerdict.SUPPORTED,
        ["facilitator-network-alias"],
    ),
    # A usable kind for the offer: supported (document findings about other things attached).
    ("spec-document", answer(200, fixture06()), EVM_V2, FacilitatorVerdict.SUPPORTED, []),
    (
        "v1-kind-for-a-v1-offer",
        answer(200, {"kinds": [kind(1, "base-sepolia")]}),
        EVM_V1,
        FacilitatorVerdict.SUPPORTED,
        [],
    ),
    (
        "solana-kind-with-the-offer-fee-payer",
        answer(200, v2(SOLANA_OK)),
        SOLANA_V2,
        FacilitatorVerdict.SUPPORTED,
        [],
    ),
    (
        "solana-offer-with-another-fee-payer",
        answer(200, v2(SOLANA_OK)),
        SOLANA_V2_OTHER_FEE_PAYER,
        FacilitatorVerdict.SUPPORTED,
        ["facilitator-feepayer-mismatch"],
    ),
    (
        "another-kind-is-broken",
        answer(200, v2(SEPOLIA_V2, kind(2, SOLANA))),
        EVM_V2,
        FacilitatorVerdict.SUPPORTED,
        ["supported-feepayer-missing"],
    ),
    (
        "v2-document-without-signers-the-sdk-defaults-them",
        answer(200, v2(SEPOLIA_V2, signers=_DROP)),
        EVM_V2,
        FacilitatorVerdict.SUPPORTED,
        ["supported-signers-missing"],
    ),
]


@pytest.mark.parametrize(
    ("respond", "challenge", "verdict", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in VERDICT_PATHS],
)
def test_every_path_from_an_answer_to_a_verdict(
    respond: Any, challenge: Challenge | None, verdict: FacilitatorVerdict, expected: list[str]
) -> None:
    """Fetch /supported through the real client (transport mocked), then judge the challenge."""
    if respond is NO_FACILITATOR:
        got, findings = facilitator_verdict(None, challenge)
    else:

        async def fetch() -> SupportedResult:
            client = FacilitatorClient(
                user_agent="x402-monitor-test",
                clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
                max_bytes=64 * 1024,
                transport=httpx.MockTransport(respond),
            )
            async with client:
                return await client.supported("https://facilitator.example/facilitator")

        got, findings = asyncio.run(fetch()).verdict(challenge)
    assert (got, codes(findings)) == (verdict, expected)
    for item in findings:
        assert item.severity is FACILITATOR_CODES[item.code].severity


def test_the_path_table_covers_every_verdict() -> None:
    assert {row[3] for row in VERDICT_PATHS} == set(FacilitatorVerdict)


def test_an_invalid_kind_names_the_kind_and_its_error() -> None:
    verdict, findings = check_offer(
        parse(v2(kind(2, SOLANA))), offer(SOLANA, feePayer=OTHER_KEY), 2
    )
    assert verdict is FacilitatorVerdict.INVALID
    item = findings[-1]
    assert item.code == "facilitator-kind-invalid"
    assert item.path == "accepts[0]"
    assert "kinds[0]" in item.message
    assert "(v2, exact, solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp)" in item.message
    assert "extra.feePayer is missing" in item.message


# The code registry ----------------------------------------------------------------------------


def test_codes_are_registered_used_and_distinct_from_the_challenge_codes() -> None:
    assert not set(FACILITATOR_CODES) & set(CODES)
    root = Path(__file__).resolve().parent.parent / "monitor"
    # The registry lives in facilitator_codes.py; the codes must be used by the checks.
    sources = "".join(
        (root / name).read_text()
        for name in ("x402/facilitator.py", "x402/supported_document.py", "discovery/supported.py")
    )
    used = set(re.findall(r'"((?:supported|facilitator)-[a-z0-9-]+)"', sources))
    assert used == set(FACILITATOR_CODES)
    for code, rule in FACILITATOR_CODES.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", code)
        assert rule.meaning
        assert rule.fix
