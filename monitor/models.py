"""Core value types shared by every module: enums, frozen records and the error tree.

Stdlib only. Nothing here does I/O, reads the clock or the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

JsonValue = Any
"""A value decoded from JSON (dict, list, str, int, float, bool or None)."""


class Outcome(StrEnum):
    """Classification of one check (DESIGN.md, "Outcome of one check")."""

    PASS = "pass"
    SOFT_FAIL = "soft_fail"
    HARD_FAIL = "hard_fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def conclusive(self) -> bool:
        """Return whether this outcome counts towards streaks, uptime and status."""
        return self is not Outcome.INCONCLUSIVE


class Status(StrEnum):
    """Derived health of an endpoint (DESIGN.md, "Status")."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


class Severity(StrEnum):
    """Weight of a validation finding: only `error` makes an offer or challenge invalid."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


MAX_ERROR_CHARS = 300
"""Characters of a check's error text (pages show it in a table cell): one line, cleaned."""


class ProbeErrorKind(StrEnum):
    """Why a probe got no usable HTTP answer."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BLOCKED = "blocked"
    """Refused by the monitor's own address policy before any byte was sent."""
    PROTOCOL = "protocol"
    """The peer answered something that is not valid HTTP."""
    PROXY = "proxy"
    """The monitor's egress proxy could not be reached or refused the tunnel (not the
    endpoint's fault)."""
    MONITOR = "monitor"
    """The monitor itself failed while probing (a defect of ours, logged with its traceback);
    the check says nothing about the endpoint."""


class AssetVerdict(StrEnum):
    """Whether an offer's asset is a known token with the right EIP-712 domain."""

    VERIFIED = "verified"
    """Known asset on its network, and `extra.name`/`extra.version` match the token."""
    MISMATCH = "mismatch"
    """Known asset with a wrong EIP-712 domain: signatures will not verify (an error)."""
    UNVERIFIED = "unverified"
    """Unknown asset on a known network: legal, but nothing to check it against (a warning)."""
    UNKNOWN = "unknown"
    """No challenge, or no readable offer."""


class FacilitatorVerdict(StrEnum):
    """Whether the listing's facilitator can settle the endpoint's offer."""

    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"
    """Its /supported lists no kind for the offer's (x402Version, scheme, network)."""
    UNREACHABLE = "unreachable"
    INVALID = "invalid"
    """Its /supported answered something malformed."""
    UNKNOWN = "unknown"
    """No facilitator is known for the endpoint, or there is no offer to check."""


@dataclass(frozen=True)
class Finding:
    """One validation result: a stable code, its severity, a message for the owner, a JSON path."""

    code: str
    severity: Severity
    message: str
    path: str = ""

    def as_dict(self) -> dict[str, str]:
        """Return the JSON form used by `monitor check --json` and the pages."""
        return {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "path": self.path,
        }


@dataclass(frozen=True)
class Offer:
    """One `accepts[]` entry of a challenge, with v1/v2 field names folded together."""

    index: int
    scheme: str | None
    network: str | None
    amount: str | None
    asset: str | None
    pay_to: str | None
    max_timeout_seconds: int | None
    extra: Mapping[str, JsonValue] | None
    valid: bool
    """True when no `error` finding concerns this entry."""
    caip2: str | None = None
    """The network as a CAIP-2 id (v1 names mapped), None when unknown."""
    asset_verdict: AssetVerdict = AssetVerdict.UNKNOWN
    price: str | None = None
    """Display price: `$5.00`, `0.05 MegaUSD`, or atomic units with the asset address."""


@dataclass(frozen=True)
class Challenge:
    """A decoded and validated 402 payment challenge.

    `source` says where it was read from ("header" for v2 `PAYMENT-REQUIRED`, "body" for the
    JSON body); None when no challenge could be found at all. `valid` is True when the challenge
    parsed and at least one offer is valid (DESIGN.md, "Validation findings").
    """

    version: int | None
    source: str | None
    document: Mapping[str, JsonValue] | None
    offers: tuple[Offer, ...]
    findings: tuple[Finding, ...]
    valid: bool
    input_schema: Mapping[str, JsonValue] | None = None
    """The request description the seller publishes (v1 `outputSchema.input`, v2 bazaar)."""
    output_schema: Mapping[str, JsonValue] | None = None

    @property
    def first_valid_offer(self) -> Offer | None:
        """Return the first offer without error findings, if any."""
        return next((offer for offer in self.offers if offer.valid), None)

    @property
    def headline_offer(self) -> Offer | None:
        """Return the offer pages headline: the first valid one, else the first one."""
        return self.first_valid_offer or next(iter(self.offers), None)

    @property
    def asset_verdict(self) -> AssetVerdict:
        """Return the asset verdict of the headline offer (`unknown` without offers)."""
        offer = self.headline_offer
        return offer.asset_verdict if offer else AssetVerdict.UNKNOWN


@dataclass(frozen=True)
class EndpointSpec:
    """What the operator or a catalogue says about an endpoint (not what we measured).

    `url` is normalised; `method` is None when nothing declares one (the probe then guesses).
    """

    url: str
    method: str | None = None
    body: JsonValue = None
    has_body: bool = False
    """True when `body` was configured explicitly (so a configured `null` is honoured)."""
    title: str | None = None
    category: str | None = None
    facilitator: str | None = None
    input_schema: Mapping[str, JsonValue] | None = None
    source: str = "config"


@dataclass(frozen=True)
class ProbeFacts:
    """What one unpaid request observed, before any judgement.

    `headers` has lower-case names; repeated headers are joined with ", ". `latency_ms` runs
    from request start to response headers of the final hop. `error_kind` is set when no
    HTTP answer was obtained (then `http_status` is None).
    """

    url: str
    method: str
    method_guessed: bool
    started_at: datetime
    http_status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    body_truncated: bool = False
    """The body went on past `body` (it was cut at the probe's `max_body_bytes`)."""
    body_error: str | None = None
    """Why the body could not be read as sent (e.g. a Content-Encoding that is not decoded,
    or a decompression bomb); `body` then holds what was read before, possibly nothing."""
    latency_ms: float | None = None
    final_url: str | None = None
    redirects: int = 0
    error_kind: ProbeErrorKind | None = None
    error: str | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """The judgement of one check: outcome, error text for pages, challenge verdict."""

    url: str
    method: str
    method_guessed: bool
    checked_at: datetime
    outcome: Outcome
    http_status: int | None
    latency_ms: float | None
    error: str | None
    challenge: Challenge | None
    facilitator_verdict: FacilitatorVerdict = FacilitatorVerdict.UNKNOWN
    facilitator_findings: tuple[Finding, ...] = ()
    """Findings of the facilitator cross-check (its /supported and the offer)."""

    @property
    def x402_version(self) -> int | None:
        """Return the protocol version of the challenge, if one was decoded."""
        return self.challenge.version if self.challenge else None

    @property
    def payment_requirements_valid(self) -> bool | None:
        """Return the challenge verdict, or None when the answer was not a 402."""
        return self.challenge.valid if self.challenge else None

    @property
    def asset_verdict(self) -> AssetVerdict:
        """Return the asset verdict of the challenge's headline offer."""
        return self.challenge.asset_verdict if self.challenge else AssetVerdict.UNKNOWN

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Return every validation finding: the challenge's, then the facilitator check's."""
        own = self.challenge.findings if self.challenge else ()
        return own + self.facilitator_findings


class MonitorError(Exception):
    """Base of every error the monitor reports to a user without a traceback."""


class ConfigError(MonitorError):
    """The configuration is invalid; each line of `problems` names a key path and the fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StoreError(MonitorError):
    """The database cannot be used as it is (for example, a schema from a newer version)."""
