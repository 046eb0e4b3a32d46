"""Frozen records the store hands out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.models import AssetVerdict, EndpointSpec, FacilitatorVerdict, JsonValue
from monitor.stats import EndpointFigures, EndpointState, Flip, OutcomeCounts, figures_of


@dataclass(frozen=True)
class StoredEndpoint:
    """An endpoint as stored: identity, what is declared about it, and its running state."""

    id: int
    slug: str
    spec: EndpointSpec
    state: EndpointState
    first_seen_at: datetime
    in_config: bool
    next_check_at: datetime | None
    last_http_status: int | None
    last_latency_ms: float | None
    last_error: str | None
    x402_version: int | None
    payment_requirements_valid: bool | None
    output_schema: JsonValue
    asset_verdict: AssetVerdict | None
    facilitator_verdict: FacilitatorVerdict | None
    network: str | None
    asset: str | None
    price: str | None
    pass_asset_verified: bool
    """The latest pass had a verified asset (the score's conformance points)."""
    pass_facilitator_supported: bool
    counts_30d: OutcomeCounts
    """Outcome counts of the 30-day window as of the latest check."""
    offers_stable: bool
    p50_ms: float | None
    p95_ms: float | None
    score: int | None
    description: str | None
    alert_firing: bool
    alert: JsonValue
    """The alert state machine's state (AlertState.to_json()), None before any check."""
    kind: str = "http"
    provider: str | None = None
    catalogue_item: JsonValue = None
    delisted: bool = False

    def figures(self, now: datetime) -> EndpointFigures:
        """Return the published figures (coverage measured up to `now`)."""
        return figures_of(
            self.state,
            self.counts_30d,
            self.p50_ms,
            self.p95_ms,
            now,
            offers_stable=self.offers_stable,
            asset_verified=self.pass_asset_verified,
            facilitator_supported=self.pass_facilitator_supported,
        )


@dataclass(frozen=True)
class StoredFlip:
    """A flip as stored, with the endpoint it belongs to."""

    endpoint_id: int
    flip: Flip


@dataclass(frozen=True)
class WindowFigures:
    """SQL aggregates of one endpoint: outcome counts (30 d), latency percentiles (24 h)."""

    counts: OutcomeCounts
    p50_ms: float | None
    p95_ms: float | None
    offers_stable: bool


@dataclass(frozen=True)
class CrawlState:
    """Where a source's catalogue crawl stands."""

    source: str
    started_at: datetime | None
    """Start of the crawl in progress; None when none is (the next one starts at offset 0)."""
    next_offset: int
    completed_crawls: int
    last_complete_at: datetime | None
    last_error: str | None
