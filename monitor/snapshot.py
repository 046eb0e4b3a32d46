"""What the publishing edges (metrics, site) read: one immutable picture of the monitor.

Core module, stdlib only. The service builds a snapshot after each round from the store and
its own counters; metrics and site render it and never query the store themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from monitor.models import Outcome, Status

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
    asset_verified: bool | None
    facilitator_supported: bool | None
    last_check_at: datetime | None
    p50_ms: float | None = None
    p95_ms: float | None = None


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
