"""What the publishing edges (metrics, site) read: one immutable picture of the monitor.

Core module, stdlib only. The service builds a snapshot after each round from the store and
its own counters; metrics and site render it and never query the store themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from monitor.models import AssetVerdict, FacilitatorVerdict, Finding, JsonValue, Outcome, Status

PROBE_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the probe duration histogram; +Inf is implicit."""


@dataclass(frozen=True)
class EndpointSnapshot:
    """One endpoint's identity and current figures."""

    slug: str
    url: str
    method: str | None
    title: str | None
    category: str | None
    network: str | None
    """CAIP-2 id of the headline offer, when known."""
    source: str
    status: Status
    up: bool | None
    """True when the latest conclusive check passed (blackbox's probe_success); None before."""
    consecutive_failures: int
    uptime_30d: float | None
    score: int | None
    payment_requirements_valid: bool | None
    """The latest check's challenge verdict; None when that check got no 402 to judge."""
    asset_verified: bool | None
    """`asset_verified_flag` of the latest check's asset verdict (None: not known)."""
    facilitator_supported: bool | None
    """`facilitator_supported_flag` of the latest check's facilitator verdict (None: not known)."""
    last_check_at: datetime | None
    p50_ms: float | None = None
    p95_ms: float | None = None
    listing: str | None = None
    """Why the endpoint is listed but not probed: "delisted" or "MCP tool"; None otherwise."""


def asset_verified_flag(verdict: AssetVerdict | None) -> bool | None:
    """Return what `x402_asset_verified` publishes for an asset verdict (None: no series).

    True for a known token with the right EIP-712 domain; False for a mismatch and for an
    unknown token (nothing verified it); None when the verdict is unknown (no readable offer)
    or missing (the latest check got no 402). The same verdict the endpoint's page shows.
    """
    if verdict is None or verdict is AssetVerdict.UNKNOWN:
        return None
    return verdict is AssetVerdict.VERIFIED


def facilitator_supported_flag(verdict: FacilitatorVerdict | None) -> bool | None:
    """Return what `x402_facilitator_supported` publishes for a verdict (None: no series).

    True when the facilitator can settle the headline offer; False when it cannot say so
    (unsupported, invalid, unreachable); None when no facilitator is known or there was no
    offer to check (UNKNOWN), or no verdict is stored yet.
    """
    if verdict is None or verdict is FacilitatorVerdict.UNKNOWN:
        return None
    return verdict is FacilitatorVerdict.SUPPORTED


@dataclass(frozen=True)
class DurationHistogram:
    """Cumulative probe durations: counts per upper bound of PROBE_DURATION_BUCKETS, + Inf."""

    bucket_counts: tuple[int, ...] = (0,) * (len(PROBE_DURATION_BUCKETS) + 1)
    """Non-cumulative count per bucket; the last one is the +Inf overflow."""
    total_seconds: float = 0.0

    @property
    def count(self) -> int:
        """Return the number of observations."""
        return sum(self.bucket_counts)

    def observe(self, seconds: float) -> DurationHistogram:
        """Return a histogram with one more observation."""
        index = next(
            (i for i, bound in enumerate(PROBE_DURATION_BUCKETS) if seconds <= bound),
            len(PROBE_DURATION_BUCKETS),
        )
        counts = list(self.bucket_counts)
        counts[index] += 1
        return DurationHistogram(tuple(counts), self.total_seconds + seconds)


@dataclass(frozen=True)
class MonitorSnapshot:
    """The whole monitor at one moment: endpoints plus the monitor's own counters."""

    taken_at: datetime
    endpoints: tuple[EndpointSnapshot, ...] = ()
    probes_total: Mapping[Outcome, int] = field(default_factory=dict)
    probe_durations: DurationHistogram = DurationHistogram()
    scheduler_lag_seconds: float = 0.0
    """How late the last dispatch tick ran compared with its schedule."""
    probes_in_flight: int = 0
    rounds_total: int = 0
    last_round_at: datetime | None = None
    """End of the last probe round that completed and was stored."""
    alerts_firing: int = 0
    notifications_total: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Delivery attempts by (channel, result): result is sent, retry or failed."""
    discovery_items: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Items of each source's latest crawl by (source, result): seen, new, updated, delisted,
    rejected_<reason>."""
    last_discovery_at: Mapping[str, datetime] = field(default_factory=dict)
    """End of each source's latest complete crawl."""


@dataclass(frozen=True)
class CheckLine:
    """One row of "Recent Health Checks": time, status after the check, HTTP, latency, error."""

    checked_at: datetime
    outcome: Outcome
    status: Status
    http_status: int | None
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True)
class DayFigures:
    """One UTC day of an endpoint's history (a cell of the 30-day uptime bar)."""

    day: date
    passes: int
    soft_fails: int
    hard_fails: int
    inconclusive: int
    p50_ms: float | None

    @property
    def uptime(self) -> float | None:
        """Return passes / conclusive checks of the day, None without conclusive checks."""
        conclusive = self.passes + self.soft_fails + self.hard_fails
        return self.passes / conclusive if conclusive else None


@dataclass(frozen=True)
class FlipLine:
    """A status change, for the feed and the page."""

    at: datetime
    from_status: Status
    to_status: Status
    reason: str


@dataclass(frozen=True)
class LatencyPoint:
    """One point of a latency chart: a time and a latency in ms (None = no answer)."""

    at: datetime
    latency_ms: float | None


@dataclass(frozen=True)
class EndpointDetail:
    """Everything one endpoint page shows, beyond its summary row."""

    summary: EndpointSnapshot
    description: str | None
    x402_version: int | None
    price: str | None
    asset: str | None
    """Token address (or code) of the headline offer."""
    asset_name: str | None
    """Human name of the token when known (e.g. "USD Coin")."""
    network_name: str | None
    """Human name of the network when known (e.g. "Base")."""
    provider: str | None
    indexed_at: datetime
    last_healthy_at: datetime | None
    reachability_30d: float | None
    coverage_days: float
    """How many days of history the 30-day figures really cover."""
    payment_requirements_valid: bool | None
    asset_verdict: AssetVerdict | None
    facilitator_verdict: FacilitatorVerdict | None
    facilitator: str | None
    findings: tuple[tuple[Finding, str], ...]
    """Every finding of the latest check with its fix."""
    input_schema: JsonValue
    output_schema: JsonValue
    recent_checks: tuple[CheckLine, ...]
    """The last 20 checks, newest first."""
    latency_24h: tuple[LatencyPoint, ...]
    """Every answered check of the last 24 h, oldest first."""
    latency_7d: tuple[LatencyPoint, ...]
    """Daily p50 of the last 7 days that had checks, oldest first (from the rollups)."""
    days: tuple[DayFigures, ...]
    """The 30 UTC days of the window, oldest first (days without checks included, zeroed)."""
    flips: tuple[FlipLine, ...]
    """Status changes, newest first (bounded)."""
    catalogue_item: JsonValue = None
    """The raw catalogue item the endpoint was indexed from (discovery), if any."""
