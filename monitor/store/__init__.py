"""Persist endpoints, checks and flips with SQLModel; derive figures with SQL aggregates.

Edge module: owns sqlmodel/SQLAlchemy. The tables are private; callers see `Store` and frozen
records. SQLite (WAL, busy timeout, foreign keys) by default, any SQLAlchemy URL otherwise.
A probe round is saved in one transaction of set-based Core statements (store.rounds); nothing
loads all checks into Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, event, insert, inspect, or_, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select

from monitor.config import ThresholdsConfig
from monitor.models import CheckResult, EndpointSpec, StoreError
from monitor.schedule import resume_at
from monitor.stats import LATENCY_WINDOW
from monitor.store.catalogue_index import CatalogueMethods, PageCounts
from monitor.store.details import PageHistory, page_histories
from monitor.store.latency import latency_horizon, latency_percentiles
from monitor.store.mapping import stored_endpoint
from monitor.store.outbox import AlertContext, OutboxMethods, Outgoing
from monitor.store.records import CrawlState, StoredEndpoint, StoredFlip, WindowFigures
from monitor.store.rollups import delete_raw, roll_up, window_counts
from monitor.store.rounds import save_round_resilient
from monitor.store.tables import (
    INDEXES,
    MIGRATIONS,
    SCHEMA_VERSION,
    EndpointRow,
    SchemaRow,
    dump,
    safe_url,
    sqlite_pragmas,
)
from monitor.urls import slug_for

__all__ = [
    "SCHEMA_VERSION",
    "AlertContext",
    "CrawlState",
    "Outgoing",
    "PageCounts",
    "PageHistory",
    "Store",
    "StoredEndpoint",
    "StoredFlip",
    "WindowFigures",
]


class Store(CatalogueMethods, OutboxMethods):
    """The monitor's database: one writer, short transactions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating or upgrading) the database at a SQLAlchemy URL.

        Raises StoreError, one line naming `database`, when it cannot be opened (its folder
        cannot be created, the file is no SQLite database, no driver, no connection), or
        belongs to a newer monitor or to something else. Passwords are never shown.
        """
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(
                "database: not a file path nor a SQLAlchemy URL (such as "
                "postgresql+psycopg://user@host/db)"
            ) from None
        is_sqlite = parsed.get_backend_name() == "sqlite"
        where = parsed.database if is_sqlite and parsed.database else safe_url(url)
        if is_sqlite and parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                reason = f"cannot create its folder {folder}: {error.strerror or error}"
                raise StoreError(f"database: cannot open {where} ({reason})") from None
        try:
            engine = create_engine(
                url, connect_args={"check_same_thread": False} if is_sqlite else {}
            )
        except (ArgumentError, ImportError) as error:
            reason = f"no driver for {parsed.drivername}: {error}"
            raise StoreError(f"database: cannot open {where} ({reason})") from None
        if is_sqlite:
            event.listen(engine, "connect", sqlite_pragmas)
        store = cls(engine)
        try:
            store._prepare_schema(url)
        except SQLAlchemyError as error:
            engine.dispose()
            # The driver's own words ("unable to open database file"), not SQLAlchemy's SQL dump.
            detail = str(error.orig if isinstance(error, DBAPIError) else error).strip()
            reason = detail.splitlines()[0] if detail else type(error).__name__
            raise StoreError(f"database: cannot open {where} ({reason})") from None
        except BaseException:
            engine.dispose()
            raise
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
            return [stored_endpoint(row) for row in session.exec(query)]

    def save_round(
        self,
        results: Sequence[tuple[int, CheckResult]],
        thresholds: ThresholdsConfig,
        interval: timedelta,
        alerts: AlertContext | None = None,
    ) -> list[StoredFlip]:
        """Store a round of checks and advance each endpoint's state, in one transaction.

        A round that the database refuses is saved endpoint by endpoint, and an endpoint whose
        check cannot be stored gets an inconclusive stand-in (see save_round_resilient).
        `results` pairs endpoint ids with their check. With `alerts`, each endpoint's alert
        state advances too and its notifications enter the outbox in the same transaction.
        Returns the flips the round caused.
        """
        if not results:
            return []
        return save_round_resilient(self._engine, results, thresholds, interval, alerts)

    def window_figures(self, ids: Sequence[int], now: datetime) -> dict[int, WindowFigures]:
        """Return 30-day outcome counts and 24-hour p50/p95 for the given endpoints."""
        with self._engine.begin() as connection:
            horizon = latency_horizon(connection)
            percentiles = latency_percentiles(connection, ids, now - LATENCY_WINDOW, horizon)
            figures: dict[int, WindowFigures] = {}
            for eid, (counts, stable, _) in window_counts(connection, ids, now).items():
                p50, p95 = percentiles.get(eid, (None, None))
                figures[eid] = WindowFigures(counts, p50, p95, offers_stable=stable)
            return figures

    def due(self, now: datetime, limit: int, exclude: Iterable[int] = ()) -> list[StoredEndpoint]:
        """Return up to `limit` endpoints whose next check is due, most overdue first."""
        skip = list(exclude)
        query = (
            select(EndpointRow)
            .where(col(EndpointRow.next_check_at) <= now)
            .order_by(col(EndpointRow.next_check_at))
            .limit(limit)
        )
        if skip:
            query = query.where(col(EndpointRow.id).not_in(skip))
        with self._session() as session:
            return [stored_endpoint(row) for row in session.exec(query)]

    def resume(self, now: datetime, interval: timedelta) -> int:
        """Give every overdue or never-scheduled endpoint its next slot after `now`.

        Spreads a backlog over one interval at start-up (see monitor.schedule). Returns how
        many endpoints were rescheduled.
        """
        with self._session() as session:
            rows = session.exec(
                select(EndpointRow.id, EndpointRow.slug).where(
                    or_(
                        col(EndpointRow.next_check_at).is_(None),
                        col(EndpointRow.next_check_at) <= now,
                    ),
                    col(EndpointRow.delisted).is_(False),
                    EndpointRow.kind == "http",
                )
            ).all()
            if rows:
                session.execute(
                    update(EndpointRow),
                    [
                        {"id": row_id, "next_check_at": resume_at(slug, interval, None, now)}
                        for row_id, slug in rows
                    ],
                )
            return len(rows)

    def roll_up_and_prune(self, now: datetime, keep_raw: timedelta) -> tuple[int, int]:
        """Roll up ended days, then delete raw checks older than `keep_raw` that are rolled up.

        Returns (rollup rows written, raw checks deleted).
        """
        with self._engine.begin() as connection:
            written = roll_up(connection, now)
            deleted = delete_raw(connection, now, keep_raw)
        return written, deleted

    def page_histories(self, ids: Sequence[int], now: datetime) -> dict[int, PageHistory]:
        """Return what endpoint pages show of each endpoint's history (see store.details)."""
        with self._engine.begin() as connection:
            return page_histories(connection, ids, now)

    def count_checks(self) -> int:
        """Return how many raw checks are stored."""
        with self._session() as session:
            return int(session.execute(text("SELECT COUNT(*) FROM checks")).scalar_one())
