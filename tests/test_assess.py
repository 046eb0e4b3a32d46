"""Outcome classification: every row of DESIGN.md's outcome table, with real x402 payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.assess import assess
from monitor.models import Outcome, ProbeErrorKind, ProbeFacts

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _header(name: str) -> dict[str, str]:
    return {"payment-required": _fixture(name).decode().strip()}


def facts(
    status: int | None = 402,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    guessed: bool = False,
    error_kind: ProbeErrorKind | None = None,
    error: str | None = None,
) -> ProbeFacts:
    return ProbeFacts(
        url="https://api.example.com/pay",
        method="POST" if guessed else "GET",
        method_guessed=guessed,
        started_at=T0,
        http_status=status,
        headers=headers or {},
        body=body,
        latency_ms=None if status is None else 42.0,
        error_kind=error_kind,
        error=error,
    )


V1_BODY = _fixture("01-v1-evm-spec-base-sepolia.json")
V2_HEADER = _header("02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64")


@pytest.mark.parametrize(
    ("probe", "outcome", "error"),
    [
        # pass: a valid challenge, v1 in the body or v2 in the header
        (facts(body=V1_BODY), Outcome.PASS, None),
        (facts(headers=V2_HEADER, body=b"{}"), Outcome.PASS, None),
        (
            facts(headers=_header("G1-v2-python-sdk-2.25-fastapi-PAYMENT-REQUIRED.b64")),
            Outcome.PASS,
            None,
        ),
        (facts(body=_fixture("11-v1-evm-real-truecast-post-bodyfields.json")), Outcome.PASS, None),
        (
            facts(body=_fixture("13-v1-evm-svm-real-skill-registry-dual-rail.json")),
            Outcome.PASS,
            None,
        ),
        # soft: answered but not payable
        (
            facts(body=_fixture("08-v1-evm-real-aeon-empty-payto-INVALID.json")),
            Outcome.SOFT_FAIL,
            "invalid challenge: ",
        ),
        (facts(body=b""), Outcome.SOFT_FAIL, "invalid challenge: "),
        (facts(body=b"<html>Pay me</html>"), Outcome.SOFT_FAIL, "invalid challenge: "),
        (
            facts(200, body=b"{}"),
            Outcome.SOFT_FAIL,
            "HTTP 200: served without payment (paywall not enforced)",
        ),
        (facts(204), Outcome.SOFT_FAIL, "HTTP 204: served without payment"),
        (facts(400), Outcome.SOFT_FAIL, "HTTP 400"),
        (facts(401), Outcome.SOFT_FAIL, "HTTP 401"),
        (facts(403), Outcome.SOFT_FAIL, "HTTP 403"),
        (facts(405), Outcome.SOFT_FAIL, "HTTP 405"),
        (facts(406), Outcome.SOFT_FAIL, "HTTP 406"),
        (facts(409), Outcome.SOFT_FAIL, "HTTP 409"),
        (facts(415), Outcome.SOFT_FAIL, "HTTP 415"),
        (facts(422), Outcome.SOFT_FAIL, "HTTP 422"),
        (facts(418), Outcome.SOFT_FAIL, "HTTP 418"),
        (facts(304), Outcome.SOFT_FAIL, "HTTP 304"),
        (
            facts(
                None, error_kind=ProbeErrorKind.TOO_MANY_REDIRECTS, error="more than 3 redirects"
            ),
            Outcome.SOFT_FAIL,
            "more than 3 redirects",
        ),
        # hard: not answering, or gone
        (facts(404), Outcome.HARD_FAIL, "HTTP 404"),
        (facts(410), Outcome.HARD_FAIL, "HTTP 410"),
        (facts(500), Outcome.HARD_FAIL, "HTTP 500"),
        (facts(502), Outcome.HARD_FAIL, "HTTP 502"),
        (facts(503), Outcome.HARD_FAIL, "HTTP 503"),
        (
            facts(None, error_kind=ProbeErrorKind.TIMEOUT, error="timeout after 10s"),
            Outcome.HARD_FAIL,
            "timeout after 10s",
        ),
        (
            facts(None, error_kind=ProbeErrorKind.DNS, error="DNS lookup failed for x.invalid"),
            Outcome.HARD_FAIL,
            "DNS lookup failed",
        ),
        (
            facts(None, error_kind=ProbeErrorKind.CONNECT, error="connection refused"),
            Outcome.HARD_FAIL,
            "connection refused",
        ),
        (
            facts(None, error_kind=ProbeErrorKind.TLS, error="TLS error: bad cert"),
            Outcome.HARD_FAIL,
            "TLS error",
        ),
        (
            facts(None, error_kind=ProbeErrorKind.PROTOCOL, error="invalid HTTP"),
            Outcome.HARD_FAIL,
            "invalid HTTP",
        ),
        # inconclusive: we cannot tell
        (facts(429), Outcome.INCONCLUSIVE, "HTTP 429: rate limited"),
        (
            facts(503, headers={"retry-after": "30"}),
            Outcome.INCONCLUSIVE,
            "HTTP 503 with Retry-After",
        ),
        (
            facts(
                None, error_kind=ProbeErrorKind.BLOCKED, error="blocked: loopback address 127.0.0.1"
            ),
            Outcome.INCONCLUSIVE,
            "blocked: loopback",
        ),
        (
            facts(None, error_kind=ProbeErrorKind.PROXY, error="egress proxy: refused (403)"),
            Outcome.INCONCLUSIVE,
            "egress proxy",
        ),
        (
            facts(None, error_kind=ProbeErrorKind.MONITOR, error="monitor error: KeyError: x"),
            Outcome.INCONCLUSIVE,
            "monitor error",
        ),
        (facts(404, guessed=True), Outcome.INCONCLUSIVE, "HTTP 404 to a guessed method (POST)"),
        (facts(405, guessed=True), Outcome.INCONCLUSIVE, "HTTP 405 to a guessed method (POST)"),
        # a guessed method does not excuse other answers
        (facts(500, guessed=True), Outcome.HARD_FAIL, "HTTP 500"),
        (facts(body=V1_BODY, guessed=True), Outcome.PASS, None),
    ],
)
def test_outcome_table(probe: ProbeFacts, outcome: Outcome, error: str | None) -> None:
    result = assess(probe)
    assert result.outcome is outcome
    if error is None:
        assert result.error is None
    else:
        assert result.error is not None
        assert result.error.startswith(error), result.error


def test_invalid_challenge_names_the_field() -> None:
    result = assess(facts(body=_fixture("08-v1-evm-real-aeon-empty-payto-INVALID.json")))
    assert result.payment_requirements_valid is False
    assert result.x402_version == 1
    assert result.error is not None
    assert "payTo" in result.error
    assert any(f.path == "accepts[0].payTo" for f in result.findings)


def test_result_carries_the_challenge_verdict_and_measurements() -> None:
    result = assess(facts(headers=V2_HEADER, body=b"{}"))
    assert result.x402_version == 2
    assert result.payment_requirements_valid is True
    assert result.latency_ms == 42.0
    assert result.checked_at == T0
    assert result.http_status == 402
    offer = result.challenge.first_valid_offer if result.challenge else None
    assert offer is not None
    assert offer.network == "eip155:84532"
    assert offer.amount == "10000"


def test_non_402_answers_carry_no_challenge() -> None:
    result = assess(facts(200, body=V1_BODY))
    assert result.challenge is None
    assert result.payment_requirements_valid is None
    assert result.findings == ()
