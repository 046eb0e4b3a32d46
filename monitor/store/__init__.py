"""Persist endpoints, checks and flips with SQLModel; derive figures with SQL aggregates.

Edge module: owns sqlmodel/SQLAlchemy. The tables are private; callers see `Store` and frozen
records. SQLite (WAL, busy timeout, foreign keys) by default, any SQLAlchemy URL otherwise.
A probe round is saved in one transaction; nothing loads all checks into Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, insert, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, col, create_engine, select

from monitor.config import ThresholdsConfig
from monitor.models import (
    AssetVerdict,
    CheckResult,
    EndpointSpec,
    FacilitatorVerdict,
    JsonValue,
    Outcome,
    Status,
    StoreError,
)
from monitor.stats import (
    LATENCY_WINDOW,
    UPTIME_WINDOW,
    EndpointState,
    Flip,
    OutcomeCounts,
    advance,
)
from monitor.store.queries import chunks, latency_percentiles, outcome_counts
from monitor.store.tables import (
    INDEXES,
    MIGRATIONS,
    SCHEMA_VERSION,
    CheckRow,
    EndpointRow,
    FlipRow,
    SchemaRow,
    dump,
    load,
    safe_url,
    sqlite_pragmas,
)
from monitor.urls import slug_for

__all__ = [
    "SCHEMA_VERSION",
    "Store",
    "StoredCheck",
    "StoredEndpoint",
    "StoredFlip",
    "WindowFigures",
]


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
class StoredCheck:
    """One row of an endpoint's check history."""

    checked_at: datetime
    outcome: Outcome
    method: str
    http_status: int | None
    latency_ms: float | None
    error: str | None


class Store:
    """The monitor's database: one writer, short transactions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating or upgrading) the database at a SQLAlchemy URL.

        Raises StoreError when the database belongs to a newer monitor or to something else.
        """
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False} if is_sqlite else {})
        if is_sqlite:
            event.listen(engine, "connect", sqlite_pragmas)
        store = cls(engine)
        store._prepare_schema(url)
        return store

    def close(self) -> None:
        """Release every connection."""
        self._engine.dispose()

    def _prepare_schema(self, url: str) -> None:
        with self._engine.begin() as connection:
            tables = set(inspect(connection).get_table_names())
            if not tables:
                SQLModel.metadata.create_all(connection)
                connection.execute(insert(SchemaRow).values(id=1, version=SCHEMA_VERSION))
            elif "monitor_schema" not in tables:
                raise StoreError(
                    f"{safe_url(url)} is not an x402 monitor database (it has tables but no "
                    "monitor_schema): set `database` to a new file"
                )
            else:
                version = connection.execute(text("SELECT version FROM monitor_schema")).scalar()
                if version is None or version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{safe_url(url)} has schema version {version}, newer than this monitor "
                        f"understands ({SCHEMA_VERSION}): upgrade x402-monitor, or set "
                        "`database` to a new file"
                    )
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[step](connection)
                    connection.execute(text("UPDATE monitor_schema SET version = :v"), {"v": step})
            for statement in INDEXES:
                connection.execute(text(statement))

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            yield session

    def sync_config_endpoints(self, specs: Sequence[EndpointSpec], now: datetime) -> None:
        """Insert or update the endpoints of config.yaml; config values override stored ones.

        Endpoints no longer in config keep their history and stay listed (`in_config` False).
        """
        by_slug = {slug_for(spec.url, spec.method): spec for spec in specs}
        with self._session() as session:
            rows = {row.slug: row for row in session.exec(select(EndpointRow))}
            for row in rows.values():
                row.in_config = row.slug in by_slug
            for slug, spec in by_slug.items():
                row = rows.get(slug) or EndpointRow(
                    slug=slug, url=spec.url, method=spec.method, first_seen_at=now
                )
                row.in_config = True
                row.source = spec.source
                row.body_json = dump(spec.body) if spec.has_body else None
                row.has_body = spec.has_body
                row.title = spec.title
                row.category = spec.category
                row.facilitator = spec.facilitator
                row.input_schema_json = dump(spec.input_schema)
                session.add(row)

    def endpoints(self, urls: Iterable[str] | None = None) -> list[StoredEndpoint]:
        """Return stored endpoints (all, or those whose URL is in `urls`), ordered by URL."""
        query = select(EndpointRow).order_by(col(EndpointRow.url), col(EndpointRow.method))
        if urls is not None:
            query = query.where(col(EndpointRow.url).in_(list(urls)))
        with self._session() as session:
            return [_stored(row) for row in session.exec(query)]

    def save_round(
        self,
        results: Sequence[tuple[int, CheckResult]],
        thresholds: ThresholdsConfig,
        interval: timedelta,
    ) -> list[StoredFlip]:
        """Store a round of checks and advance each endpoint's state, in one transaction.

        `results` pairs endpoint ids with their check. Returns the flips the round caused.
        """
        if not results:
            return []
        ordered = sorted(results, key=lambda pair: (pair[0], pair[1].checked_at))
        flips: list[StoredFlip] = []
        with self._session() as session:
            session.execute(insert(CheckRow), [_check_values(eid, r) for eid, r in ordered])
            ids = sorted({endpoint_id for endpoint_id, _ in ordered})
            latest = max(result.checked_at for _, result in ordered)
            percentiles = latency_percentiles(session, ids, latest - LATENCY_WINDOW)
            rows = {
                row.id: row
                for chunk in chunks(ids)
                for row in session.exec(select(EndpointRow).where(col(EndpointRow.id).in_(chunk)))
            }
            for endpoint_id, result in ordered:
                row = rows[endpoint_id]
                p50 = percentiles.get(endpoint_id, (None, None))[0]
                state, flip = advance(
                    _state(row), result.outcome, result.checked_at, p50, thresholds, result.error
                )
                _apply(row, state, result, interval)
                session.add(row)
                if flip is not None:
                    flips.append(StoredFlip(endpoint_id, flip))
                    session.add(
                        FlipRow(
                            endpoint_id=endpoint_id,
                            at=flip.at,
                            from_status=flip.from_status.value,
                            to_status=flip.to_status.value,
                            reason=flip.reason,
                        )
                    )
        return flips

    def window_figures(self, ids: Sequence[int], now: datetime) -> dict[int, WindowFigures]:
        """Return 30-day outcome counts and 24-hour p50/p95 for the given endpoints."""
        with self._session() as session:
            percentiles = latency_percentiles(session, ids, now - LATENCY_WINDOW)
            figures: dict[int, WindowFigures] = {}
            for eid, (counts, offer_keys) in outcome_counts(
                session, ids, now - UPTIME_WINDOW
            ).items():
                p50, p95 = percentiles.get(eid, (None, None))
                figures[eid] = WindowFigures(counts, p50, p95, offers_stable=offer_keys <= 1)
            return figures

    def recent_checks(self, endpoint_id: int, limit: int = 20) -> list[StoredCheck]:
        """Return the latest checks of an endpoint, newest first."""
        query = (
            select(CheckRow)
            .where(CheckRow.endpoint_id == endpoint_id)
            .order_by(col(CheckRow.checked_at).desc(), col(CheckRow.id).desc())
            .limit(limit)
        )
        with self._session() as session:
            return [
                StoredCheck(
                    row.checked_at,
                    Outcome(row.outcome),
                    row.method,
                    row.http_status,
                    row.latency_ms,
                    row.error,
                )
                for row in session.exec(query)
            ]

    def flips(self, endpoint_id: int) -> list[Flip]:
        """Return an endpoint's flips, oldest first."""
        query = (
            select(FlipRow)
            .where(FlipRow.endpoint_id == endpoint_id)
            .order_by(col(FlipRow.at), col(FlipRow.id))
        )
        with self._session() as session:
            return [
                Flip(r.at, Status(r.from_status), Status(r.to_status), r.reason)
                for r in session.exec(query)
            ]

    def count_checks(self) -> int:
        """Return how many raw checks are stored."""
        with self._session() as session:
            return int(session.execute(text("SELECT COUNT(*) FROM checks")).scalar_one())


def _state(row: EndpointRow) -> EndpointState:
    return EndpointState(
        status=Status(row.status),
        consecutive_failures=row.consecutive_failures,
        consecutive_hard=row.consecutive_hard,
        consecutive_passes=row.consecutive_passes,
        conclusive_checks=row.conclusive_checks,
        non_hard_checks=row.non_hard_checks,
        recovering=row.recovering,
        last_checked_at=row.last_checked_at,
        last_healthy_at=row.last_healthy_at,
        last_outcome=Outcome(row.last_outcome) if row.last_outcome else None,
    )


def _apply(
    row: EndpointRow, state: EndpointState, result: CheckResult, interval: timedelta
) -> None:
    row.status = state.status.value
    row.consecutive_failures = state.consecutive_failures
    row.consecutive_hard = state.consecutive_hard
    row.consecutive_passes = state.consecutive_passes
    row.conclusive_checks = state.conclusive_checks
    row.non_hard_checks = state.non_hard_checks
    row.recovering = state.recovering
    row.last_outcome = state.last_outcome.value if state.last_outcome else None
    row.last_checked_at = state.last_checked_at
    row.last_healthy_at = state.last_healthy_at
    row.next_check_at = result.checked_at + interval
    row.last_http_status = result.http_status
    row.last_latency_ms = result.latency_ms
    row.last_error = result.error
    challenge = result.challenge
    row.x402_version = challenge.version if challenge else None
    row.payment_requirements_valid = challenge.valid if challenge else None
    offer = challenge.headline_offer if challenge else None
    row.asset_verdict = result.asset_verdict.value if challenge else None
    row.facilitator_verdict = result.facilitator_verdict.value
    row.network = offer.caip2 or offer.network if offer else None
    row.asset = offer.asset if offer else None
    row.price = offer.price if offer else None
    if challenge is not None and challenge.valid:
        row.challenge_input_json = dump(challenge.input_schema)
        row.challenge_output_json = dump(challenge.output_schema)
    if result.outcome is Outcome.PASS:
        row.pass_asset_verified = result.asset_verdict is AssetVerdict.VERIFIED
        row.pass_facilitator_supported = result.facilitator_verdict is FacilitatorVerdict.SUPPORTED


def _check_values(endpoint_id: int, result: CheckResult) -> dict[str, Any]:
    challenge = result.challenge
    offer = challenge.first_valid_offer if challenge else None
    headline = challenge.headline_offer if challenge else None
    return {
        "endpoint_id": endpoint_id,
        "checked_at": result.checked_at,
        "outcome": result.outcome.value,
        "method": result.method,
        "method_guessed": result.method_guessed,
        "http_status": result.http_status,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "x402_version": result.x402_version,
        "payment_requirements_valid": result.payment_requirements_valid,
        "findings_json": dump([f.as_dict() for f in result.findings]) if challenge else None,
        "offer_key": (
            f"{offer.network}|{offer.asset}|{offer.amount}|{offer.pay_to}" if offer else None
        ),
        "asset_verdict": result.asset_verdict.value if challenge else None,
        "facilitator_verdict": result.facilitator_verdict.value,
        "network": (headline.caip2 or headline.network) if headline else None,
        "price": headline.price if headline else None,
    }


def _stored(row: EndpointRow) -> StoredEndpoint:
    assert row.id is not None
    declared_input = load(row.input_schema_json)
    learned_input = load(row.challenge_input_json)
    spec = EndpointSpec(
        url=row.url,
        method=row.method,
        body=load(row.body_json),
        has_body=row.has_body,
        title=row.title,
        category=row.category,
        facilitator=row.facilitator,
        input_schema=declared_input if declared_input is not None else learned_input,
        source=row.source,
    )
    return StoredEndpoint(
        id=row.id,
        slug=row.slug,
        spec=spec,
        state=_state(row),
        first_seen_at=row.first_seen_at,
        in_config=row.in_config,
        next_check_at=row.next_check_at,
        last_http_status=row.last_http_status,
        last_latency_ms=row.last_latency_ms,
        last_error=row.last_error,
        x402_version=row.x402_version,
        payment_requirements_valid=row.payment_requirements_valid,
        output_schema=load(row.challenge_output_json),
        asset_verdict=AssetVerdict(row.asset_verdict) if row.asset_verdict else None,
        facilitator_verdict=(
            FacilitatorVerdict(row.facilitator_verdict) if row.facilitator_verdict else None
        ),
        network=row.network,
        asset=row.asset,
        price=row.price,
        pass_asset_verified=row.pass_asset_verified,
        pass_facilitator_supported=row.pass_facilitator_supported,
    )
