"""Judge one probe: response facts -> CheckResult (outcome, error text, challenge verdict).

Core module, pure. The outcome table is DESIGN.md's "Outcome of one check"; the error text is
what the "Recent Health Checks" table shows ("HTTP 404", "timeout after 10s", ...).
Challenges go through `CHALLENGES`, a memo of each endpoint's last one: most checks see the
same challenge as the previous check, and a hit returns it without parsing it again.
"""

from __future__ import annotations

from http import HTTPStatus

from monitor.models import MAX_ERROR_CHARS, CheckResult, Outcome, ProbeErrorKind, ProbeFacts
from monitor.untrusted import bound
from monitor.x402 import ChallengeMemo, first_error

_SOFT_STATUSES = frozenset({400, 401, 403, 405, 406, 409, 415, 422})
_GONE_STATUSES = frozenset({404, 410})
_NOT_THE_ENDPOINTS_FAULT = frozenset(
    {ProbeErrorKind.BLOCKED, ProbeErrorKind.PROXY, ProbeErrorKind.MONITOR}
)
"""Our address policy, our egress proxy, or a defect of ours: the check says nothing."""
_HARD_ERRORS = frozenset(
    {ProbeErrorKind.DNS, ProbeErrorKind.CONNECT, ProbeErrorKind.TLS, ProbeErrorKind.TIMEOUT}
)

CHALLENGES = ChallengeMemo()
"""Each endpoint's last challenge, by (url, method); sized for DESIGN.md's 20,000 endpoints."""


def assess(facts: ProbeFacts) -> CheckResult:
    """Classify a probe's facts into pass / soft_fail / hard_fail / inconclusive.

    - 402 with a valid challenge: pass; 402 without one: soft_fail with the first error
      (a body cut at probe.max_body_bytes, or unreadable as sent, says so).
    - 2xx: soft_fail (the paywall is not enforced); 400/401/403/405/406/409/415/422: soft_fail.
    - DNS/connect/TLS errors, timeouts, 5xx, 404/410 with the declared method: hard_fail.
    - 429, 503 with Retry-After, our own address policy or egress proxy, a failure of the
      monitor itself, 404/405 with a guessed method: inconclusive. Too many redirects:
      soft_fail. Invalid HTTP: hard_fail.
    """
    outcome, error = _classify(facts)
    challenge = None
    if facts.http_status == HTTPStatus.PAYMENT_REQUIRED:
        challenge = CHALLENGES.parse(
            (facts.url, facts.method),
            facts.headers,
            facts.body,
            body_truncated=facts.body_truncated,
            body_error=facts.body_error,
        )
        if challenge.valid:
            outcome, error = Outcome.PASS, None
        else:
            problem = first_error(challenge)
            detail = problem.message if problem else "no payment requirements"
            # The finding may be long (500 characters): the check's error text is one bound.
            outcome, error = (
                Outcome.SOFT_FAIL,
                bound(f"invalid challenge: {detail}", MAX_ERROR_CHARS),
            )
    return CheckResult(
        url=facts.url,
        method=facts.method,
        method_guessed=facts.method_guessed,
        checked_at=facts.started_at,
        outcome=outcome,
        http_status=facts.http_status,
        latency_ms=facts.latency_ms,
        error=error,
        challenge=challenge,
    )


def _classify(facts: ProbeFacts) -> tuple[Outcome, str | None]:
    """Return the outcome and error text of every answer except a 402 (judged by its challenge)."""
    if facts.error_kind is not None:
        error = facts.error or str(facts.error_kind)
        if facts.error_kind in _NOT_THE_ENDPOINTS_FAULT:
            return Outcome.INCONCLUSIVE, error
        if facts.error_kind is ProbeErrorKind.TOO_MANY_REDIRECTS:
            return Outcome.SOFT_FAIL, error
        if facts.error_kind in _HARD_ERRORS or facts.error_kind is ProbeErrorKind.PROTOCOL:
            return Outcome.HARD_FAIL, error
    status = facts.http_status
    if status is None:
        return Outcome.HARD_FAIL, facts.error or "no answer"
    text = f"HTTP {status}"
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return Outcome.INCONCLUSIVE, f"{text}: rate limited"
    if status == HTTPStatus.SERVICE_UNAVAILABLE and "retry-after" in facts.headers:
        return Outcome.INCONCLUSIVE, f"{text} with Retry-After"
    if facts.method_guessed and status in {404, 405}:
        return Outcome.INCONCLUSIVE, f"{text} to a guessed method ({facts.method})"
    if status >= 500:
        return Outcome.HARD_FAIL, text
    if status in _GONE_STATUSES:
        return Outcome.HARD_FAIL, text
    if 200 <= status < 300:
        return Outcome.SOFT_FAIL, f"{text}: served without payment (paywall not enforced)"
    if status in _SOFT_STATUSES:
        return Outcome.SOFT_FAIL, text
    # Any other answer (other 4xx, an unfollowed 3xx, 1xx) came from a live server but cannot be
    # paid by a standard client: it is not down, and not payable either.
    return Outcome.SOFT_FAIL, text
