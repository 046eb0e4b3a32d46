"""The private SQLModel tables, schema version and migrations, and value conversions.

Only the store package imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlmodel import Field, SQLModel

from monitor.models import JsonValue, Status
from monitor.store.latency import backfill_recent_latency

SCHEMA_VERSION = 7


class SchemaRow(SQLModel, table=True):
    __tablename__ = "monitor_schema"
    id: int = Field(default=1, primary_key=True)
    version: int


class EndpointRow(SQLModel, table=True):
    __tablename__ = "endpoints"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, index=True)
    url: str
    method: str | None = None
    body_json: str | None = None
    has_body: bool = False
    title: str | None = None
    category: str | None = None
    facilitator: str | None = None
    input_schema_json: str | None = None
    source: str = "config"
    in_config: bool = False
    first_seen_at: datetime
    # Learned from the latest decoded challenge.
    challenge_input_json: str | None = None
    challenge_output_json: str | None = None
    # Current state (advanced by every check, see stats.advance).
    status: str = Status.UNKNOWN.value
    consecutive_failures: int = 0
    consecutive_hard: int = 0
    consecutive_passes: int = 0
    conclusive_checks: int = 0
    non_hard_checks: int = 0
    recovering: bool = False
    last_outcome: str | None = None
    last_checked_at: datetime | None = None
    last_healthy_at: datetime | None = None
    next_check_at: datetime | None = Field(default=None, index=True)
    last_http_status: int | None = None
    last_latency_ms: float | None = None
    last_error: str | None = None
    x402_version: int | None = None
    payment_requirements_valid: bool | None = None
    # Verdicts of the latest check (schema 2), and of the latest pass for the score.
    asset_verdict: str | None = None
    facilitator_verdict: str | None = None
    network: str | None = None
    asset: str | None = None
    price: str | None = None
    pass_asset_verified: bool = False
    pass_facilitator_supported: bool = False
    # Figures as of the latest check (schema 3), so a snapshot is one plain SELECT.
    uptime_30d: float | None = None
    reachability_30d: float | None = None
    window_passes: int = 0
    window_soft_fails: int = 0
    window_hard_fails: int = 0
    window_inconclusive: int = 0
    window_first_check_at: datetime | None = None
    offers_stable: bool = True
    window_day: str | None = None
    """First day (YYYY-MM-DD) of the 30-day window the window_* counts are for (schema 6): the
    day-aligned window only drops checks when this day moves, so a save just adds to them."""
    last_offer_key: str | None = None
    """Offer (network, asset, amount, payTo) of the latest pass, to keep offers_stable running."""
    p50_ms: float | None = None
    p95_ms: float | None = None
    score: int | None = None
    # Alerting (schema 4): the alert state machine's state as JSON, and whether it fires.
    alert_json: str | None = None
    alert_firing: bool = False
    description: str | None = None
    """What the seller says the endpoint does (from its latest challenge; schema 4)."""
    # Catalogue facts (schema 5).
    kind: str = "http"
    """http, or mcp (indexed and shown, never probed over HTTP)."""
    tool_name: str | None = None
    provider: str | None = None
    catalogue_json: str | None = None
    """The raw catalogue item the endpoint was last indexed from."""
    last_seen_at: datetime | None = None
    missed_crawls: int = 0
    delisted: bool = False


class CheckRow(SQLModel, table=True):
    __tablename__ = "checks"
    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoints.id", ondelete="CASCADE")
    checked_at: datetime
    outcome: str
    method: str
    method_guessed: bool = False
    http_status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    x402_version: int | None = None
    payment_requirements_valid: bool | None = None
    findings_json: str | None = None
    offer_key: str | None = None
    """Price, asset and payTo of the first valid offer: stability compares these."""
    asset_verdict: str | None = None
    facilitator_verdict: str | None = None
    network: str | None = None
    price: str | None = None
    status: str | None = None
    """The endpoint's status right after this check (schema 4)."""
    recent_latency_ms: float | None = None
    """latency_ms of an answered check while it is young enough for the 24-hour percentiles,
    NULL once older than the latency horizon (schema 7): the partial indexes on it hold about
    one window of rows per endpoint however long raw checks are kept (see store.latency)."""


class FlipRow(SQLModel, table=True):
    __tablename__ = "flips"
    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="endpoints.id", index=True, ondelete="CASCADE")
    at: datetime
    from_status: str
    to_status: str
    reason: str


class DailyRollupRow(SQLModel, table=True):
    """One endpoint's checks of one UTC day, kept after the raw rows are deleted."""

    __tablename__ = "daily_rollups"
    endpoint_id: int = Field(foreign_key="endpoints.id", primary_key=True, ondelete="CASCADE")
    day: str = Field(primary_key=True)
    """UTC date, YYYY-MM-DD."""
    passes: int = 0
    soft_fails: int = 0
    hard_fails: int = 0
    inconclusive: int = 0
    first_check_at: datetime
    latency_count: int = 0
    latency_sum_ms: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    # A fixed latency histogram (answered checks with latency <= bound), additive across days.
    le_100ms: int = 0
    le_300ms: int = 0
    le_1s: int = 0
    le_2s: int = 0
    le_5s: int = 0
    offer_key: str | None = None
    """The day's single offer of its passes, `*` when it changed within the day."""


class NotificationRow(SQLModel, table=True):
    """The outbox: one notification for one channel, written with the change that caused it."""

    __tablename__ = "notifications"
    id: int | None = Field(default=None, primary_key=True)
    notification_id: str = Field(index=True)
    channel: str
    endpoint_id: int | None = Field(default=None, foreign_key="endpoints.id", ondelete="CASCADE")
    event: str
    message_json: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True)
    state: str = "pending"
    """pending, sent, or failed (permanently, or after the last retry)."""
    last_detail: str | None = None
    sent_at: datetime | None = None


class CrawlRow(SQLModel, table=True):
    """Where a source's crawl stands, so a crash mid-crawl resumes instead of restarting."""

    __tablename__ = "crawls"
    source: str = Field(primary_key=True)
    started_at: datetime | None = None
    """Start of the crawl in progress (None when none is)."""
    next_offset: int = 0
    completed_crawls: int = 0
    last_complete_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None


class StateRow(SQLModel, table=True):
    """Small persistent facts of the monitor itself (e.g. how far rollups have gone)."""

    __tablename__ = "monitor_state"
    key: str = Field(primary_key=True)
    value: str


CHECKS = SQLModel.metadata.tables["checks"]
ENDPOINTS = SQLModel.metadata.tables["endpoints"]
FLIPS = SQLModel.metadata.tables["flips"]
NOTIFICATIONS = SQLModel.metadata.tables["notifications"]
"""The Core tables, for executemany statements that skip the ORM unit of work."""

INDEXES = (
    # Covering the 24-hour latency window (percentiles): no table lookups per check row.
    "CREATE INDEX IF NOT EXISTS ix_checks_latency_window"
    " ON checks (endpoint_id, checked_at, latency_ms, http_status)",
    # Only the young answered checks (see CheckRow.recent_latency_ms), so that ranking the
    # latency window walks one window of index entries, not the whole retention.
    "CREATE INDEX IF NOT EXISTS ix_checks_recent_latency"
    " ON checks (endpoint_id, recent_latency_ms, checked_at)"
    " WHERE recent_latency_ms IS NOT NULL",
    # recent_latency_ms is in the key too: SQLite reads a partial index's own predicate column
    # from the table unless the index holds it, which would cost a row lookup per entry.
    "CREATE INDEX IF NOT EXISTS ix_checks_recent_time"
    " ON checks (endpoint_id, checked_at, recent_latency_ms) WHERE recent_latency_ms IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ix_checks_time ON checks (checked_at)",
    "CREATE INDEX IF NOT EXISTS ix_rollups_day ON daily_rollups (day)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_notifications_id_channel"
    " ON notifications (notification_id, channel)",
)

Migration = Callable[[Connection], None]


def _add_verdict_columns(connection: Connection) -> None:
    """Schema 2: asset/facilitator verdicts, network and price on checks and endpoints."""
    for table, columns in (
        ("checks", ("asset_verdict", "facilitator_verdict", "network", "price")),
        ("endpoints", ("asset_verdict", "facilitator_verdict", "network", "asset", "price")),
    ):
        for column in columns:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} VARCHAR"))
    for column in ("pass_asset_verified", "pass_facilitator_supported"):
        connection.execute(
            text(f"ALTER TABLE endpoints ADD COLUMN {column} BOOLEAN NOT NULL DEFAULT FALSE")
        )


def _add_rollups_and_figures(connection: Connection) -> None:
    """Schema 3: per-day rollups, the monitor's own state, figures on the endpoint row."""
    tables = SQLModel.metadata.tables
    SQLModel.metadata.create_all(
        connection, tables=[tables["daily_rollups"], tables["monitor_state"]]
    )
    for column, kind in (
        ("uptime_30d", "FLOAT"),
        ("reachability_30d", "FLOAT"),
        ("window_passes", "INTEGER NOT NULL DEFAULT 0"),
        ("window_soft_fails", "INTEGER NOT NULL DEFAULT 0"),
        ("window_hard_fails", "INTEGER NOT NULL DEFAULT 0"),
        ("window_inconclusive", "INTEGER NOT NULL DEFAULT 0"),
        ("window_first_check_at", "TIMESTAMP WITH TIME ZONE"),
        ("offers_stable", "BOOLEAN NOT NULL DEFAULT TRUE"),
        ("p50_ms", "FLOAT"),
        ("p95_ms", "FLOAT"),
        ("score", "INTEGER"),
    ):
        connection.execute(text(f"ALTER TABLE endpoints ADD COLUMN {column} {kind}"))


def _add_alerting(connection: Connection) -> None:
    """Schema 4: per-check status, alert state on endpoints, the notification outbox."""
    connection.execute(text("ALTER TABLE checks ADD COLUMN status VARCHAR"))
    connection.execute(text("ALTER TABLE endpoints ADD COLUMN alert_json VARCHAR"))
    connection.execute(text("ALTER TABLE endpoints ADD COLUMN description VARCHAR"))
    connection.execute(
        text("ALTER TABLE endpoints ADD COLUMN alert_firing BOOLEAN NOT NULL DEFAULT FALSE")
    )
    SQLModel.metadata.create_all(connection, tables=[SQLModel.metadata.tables["notifications"]])


def _add_catalogue(connection: Connection) -> None:
    """Schema 5: catalogue facts and delisting on endpoints, per-source crawl state."""
    for column, kind in (
        ("kind", "VARCHAR NOT NULL DEFAULT 'http'"),
        ("tool_name", "VARCHAR"),
        ("provider", "VARCHAR"),
        ("catalogue_json", "VARCHAR"),
        ("last_seen_at", "TIMESTAMP WITH TIME ZONE"),
        ("missed_crawls", "INTEGER NOT NULL DEFAULT 0"),
        ("delisted", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ):
        connection.execute(text(f"ALTER TABLE endpoints ADD COLUMN {column} {kind}"))
    SQLModel.metadata.create_all(connection, tables=[SQLModel.metadata.tables["crawls"]])


def _add_running_window(connection: Connection) -> None:
    """Schema 6: incremental 30-day counts (window day, latest offer), a covering index."""
    connection.execute(text("ALTER TABLE endpoints ADD COLUMN window_day VARCHAR"))
    connection.execute(text("ALTER TABLE endpoints ADD COLUMN last_offer_key VARCHAR"))
    # Replaced by the covering ix_checks_latency_window (same leading columns).
    connection.execute(text("DROP INDEX IF EXISTS ix_checks_endpoint_time"))


def _add_recent_latency(connection: Connection) -> None:
    """Schema 7: checks keep a copy of their latency while young (the percentile index).

    Copies the latency of answered checks of the last window (plus the expiry lag) before the
    newest check, and records that horizon: older windows are ranked from the full table.
    """
    connection.execute(text("ALTER TABLE checks ADD COLUMN recent_latency_ms FLOAT"))
    newest = from_db_text(connection.execute(text("SELECT MAX(checked_at) FROM checks")).scalar())
    if newest is not None:
        backfill_recent_latency(connection, newest)


MIGRATIONS: dict[int, Migration] = {
    2: _add_verdict_columns,
    3: _add_rollups_and_figures,
    4: _add_alerting,
    5: _add_catalogue,
    6: _add_running_window,
    7: _add_recent_latency,
}
"""Steps from version N-1 to N, applied in order on open; version 1 is the initial schema."""


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def dump(value: JsonValue) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def load(value: str | None) -> JsonValue:
    return None if value is None else json.loads(value)


def from_db_text(moment: datetime | str | None) -> datetime | None:
    """Read a datetime from a raw SQL aggregate (SQLite returns MIN() of a column as text)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
