"""Endpoint rows while a round is applied: read as plain rows, written back where they changed.

The round's endpoints are read with one SELECT per chunk (no ORM objects), advanced in Python
(store.rounds), and written back with one executemany UPDATE per set of changed columns:
columns most checks change are always written, the others only when their value differs from
the one read, which keeps the statement short and the number of column sets small.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from monitor.models import CheckResult
from monitor.schedule import next_check_at
from monitor.stats import EndpointState, OutcomeCounts, figures_of
from monitor.store.driver import DriverStatement
from monitor.store.latency import Percentiles
from monitor.store.mapping import counts_of, state_of
from monitor.store.queries import chunks
from monitor.store.tables import ENDPOINTS

_READ = (
    "id",
    "slug",
    "url",
    "title",
    "category",
    "status",
    "consecutive_failures",
    "consecutive_hard",
    "consecutive_passes",
    "conclusive_checks",
    "non_hard_checks",
    "recovering",
    "last_outcome",
    "last_checked_at",
    "last_healthy_at",
    "last_error",
    "alert_json",
    "alert_firing",
    "pass_asset_verified",
    "pass_facilitator_supported",
    "window_passes",
    "window_soft_fails",
    "window_hard_fails",
    "window_inconclusive",
    "window_first_check_at",
    "offers_stable",
    "window_day",
    "last_offer_key",
    "uptime_30d",
    "reachability_30d",
    "score",
    "last_http_status",
    "x402_version",
    "payment_requirements_valid",
    "asset_verdict",
    "facilitator_verdict",
    "network",
    "asset",
    "price",
    "description",
    "challenge_input_json",
    "challenge_output_json",
)
"""The columns a round reads: what it advances, and what it compares before writing."""
_SELECT = select(*(ENDPOINTS.c[name] for name in _READ))


@dataclass(slots=True)
class RoundEndpoint:
    """One endpoint while a round is applied to it: the columns it reads, and its changes."""

    id: int
    slug: str
    url: str
    title: str | None
    category: str | None
    state: EndpointState
    last_error: str | None
    alert_json: str | None
    alert_firing: bool
    pass_asset_verified: bool
    pass_facilitator_supported: bool
    counts: OutcomeCounts
    offers_stable: bool
    window_day: str | None
    last_offer_key: str | None
    stored: Mapping[Any, Any]
    """The columns as read, so that only changed ones are written."""
    latest: CheckResult | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    """Columns copied from the latest check (HTTP status, verdicts, challenge schemas...)."""

    # Read by alert messages (store.outbox.AlertSubject), like EndpointRow's columns.
    @property
    def status(self) -> str:
        return self.state.status.value

    @property
    def consecutive_failures(self) -> int:
        return self.state.consecutive_failures

    @property
    def last_healthy_at(self) -> datetime | None:
        return self.state.last_healthy_at


def read_endpoints(connection: Connection, ids: Sequence[int]) -> dict[int, RoundEndpoint]:
    """Return the round's endpoints by id (ids without a row are absent)."""
    endpoints: dict[int, RoundEndpoint] = {}
    for chunk in chunks(ids):
        for row in connection.execute(_SELECT.where(ENDPOINTS.c.id.in_(chunk))):
            endpoints[row.id] = RoundEndpoint(
                id=row.id,
                slug=row.slug,
                url=row.url,
                title=row.title,
                category=row.category,
                state=state_of(row),
                last_error=row.last_error,
                alert_json=row.alert_json,
                alert_firing=row.alert_firing,
                pass_asset_verified=row.pass_asset_verified,
                pass_facilitator_supported=row.pass_facilitator_supported,
                counts=counts_of(row),
                offers_stable=row.offers_stable,
                window_day=row.window_day,
                last_offer_key=row.last_offer_key,
                stored=row._mapping,
            )
    return endpoints


def write_endpoints(
    connection: Connection,
    endpoints: Iterable[RoundEndpoint],
    percentiles: Percentiles,
    latest: datetime,
    interval: timedelta,
    with_alerts: bool,
) -> None:
    """Write every endpoint's changed columns: one executemany UPDATE per set of columns.

    Columns most checks change are written as they are; the others only where they differ
    from the stored value, which keeps the statement short and the sets of columns few.
    """
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for endpoint in endpoints:
        p50, p95 = percentiles.get(endpoint.id, (None, None))
        changed = _always_written(endpoint, p50, p95, interval)
        stored = endpoint.stored
        for name, value in _compared(endpoint, p50, latest, with_alerts).items():
            if stored.get(name, _UNREAD) != value:
                changed[name] = value
        by_columns[tuple(changed)].append(changed)
    for columns, rows in by_columns.items():
        _update(columns).executemany(connection, rows)


_UNREAD = object()


@lru_cache(maxsize=64)
def _update(columns: tuple[str, ...]) -> DriverStatement:
    keys = [name for name in columns if name != "endpoint"]
    statement = update(ENDPOINTS).where(ENDPOINTS.c.id == bindparam("endpoint"))
    return DriverStatement(statement, keys)


def _always_written(
    endpoint: RoundEndpoint, p50: float | None, p95: float | None, interval: timedelta
) -> dict[str, Any]:
    state, counts = endpoint.state, endpoint.counts
    assert endpoint.latest is not None  # every endpoint read had a check in the round
    return {
        "endpoint": endpoint.id,
        "next_check_at": next_check_at(endpoint.slug, interval, endpoint.latest.checked_at),
        "last_checked_at": state.last_checked_at,
        "last_healthy_at": state.last_healthy_at,
        "last_latency_ms": endpoint.latest.latency_ms,
        "conclusive_checks": state.conclusive_checks,
        "non_hard_checks": state.non_hard_checks,
        "consecutive_passes": state.consecutive_passes,
        "consecutive_failures": state.consecutive_failures,
        "window_passes": counts.passes,
        "window_soft_fails": counts.soft_fails,
        "window_hard_fails": counts.hard_fails,
        "window_inconclusive": counts.inconclusive,
        "p50_ms": p50,
        "p95_ms": p95,
    }


def _compared(
    endpoint: RoundEndpoint, p50: float | None, latest: datetime, with_alerts: bool
) -> dict[str, Any]:
    state, counts = endpoint.state, endpoint.counts
    values: dict[str, Any] = {
        **endpoint.facts,
        "status": state.status.value,
        "consecutive_hard": state.consecutive_hard,
        "recovering": state.recovering,
        "last_outcome": state.last_outcome.value if state.last_outcome else None,
        "last_error": endpoint.last_error,
        "pass_asset_verified": endpoint.pass_asset_verified,
        "pass_facilitator_supported": endpoint.pass_facilitator_supported,
        "window_first_check_at": counts.first_check_at,
        "offers_stable": endpoint.offers_stable,
        "window_day": endpoint.window_day,
        "last_offer_key": endpoint.last_offer_key,
        "uptime_30d": counts.uptime,
        "reachability_30d": counts.reachability,
        "score": figures_of(
            state,
            counts,
            p50,
            None,  # the score reads p50 only
            latest,
            offers_stable=endpoint.offers_stable,
            asset_verified=endpoint.pass_asset_verified,
            facilitator_supported=endpoint.pass_facilitator_supported,
        ).score,
    }
    if with_alerts:
        values["alert_json"] = endpoint.alert_json
        values["alert_firing"] = endpoint.alert_firing
    return values
