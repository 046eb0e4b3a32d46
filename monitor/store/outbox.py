"""Alert state and the notification outbox: written in the round's transaction, sent later.

Each notice of the alert state machine becomes one outbox row per channel that wants it,
keyed by (notification id, channel) so writing it twice is harmless. Delivery reads due rows,
and records each attempt; a restart therefore neither loses nor repeats a notification.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, insert, text
from sqlmodel import Session, col, select

from monitor.alert_config import AlertsConfig, EndpointAlerts
from monitor.alerting import (
    AlertEvent,
    AlertState,
    Notice,
    NotificationMessage,
    notification_id,
    on_check,
    on_tick,
)
from monitor.models import Outcome
from monitor.store.mapping import stored_endpoint
from monitor.store.queries import moment
from monitor.store.records import StoredEndpoint
from monitor.store.tables import NOTIFICATIONS, EndpointRow, NotificationRow, load

PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True)
class AlertContext:
    """What alerting needs besides the checks: the config, overrides and page links."""

    config: AlertsConfig
    overrides: Mapping[str, EndpointAlerts]
    """Per-endpoint settings by URL (`endpoints[].alerts`)."""
    site_base_url: str | None = None

    def policy_for(self, url: str) -> EndpointAlerts:
        """Return the endpoint's overrides (defaults when it has none)."""
        return self.overrides.get(url, EndpointAlerts())


@dataclass(frozen=True)
class Outgoing:
    """One outbox row ready to send."""

    row_id: int
    channel: str
    attempts: int
    message: NotificationMessage


class AlertSubject(Protocol):
    """What an alert step reads of an endpoint, and the alert state it writes back.

    An EndpointRow, or a round's working copy of one (store.round_state.RoundEndpoint).
    """

    alert_json: str | None
    alert_firing: bool

    @property
    def id(self) -> int | None: ...
    @property
    def slug(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def consecutive_failures(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def last_healthy_at(self) -> datetime | None: ...


def alert_step(
    connection: Connection,
    row: AlertSubject,
    context: AlertContext,
    at: datetime,
    outcome: Outcome | None,
) -> None:
    """Advance an endpoint's alert by a check (`outcome`) or a tick (None); queue its notices."""
    settings = context.policy_for(row.url)
    if not settings.enabled:
        return
    policy = settings.apply(context.config.policy)
    muted = context.config.muted(row.url, at)
    state = AlertState.from_json(load(row.alert_json) or {})
    if outcome is None:
        state, notices = on_tick(state, at, policy, muted)
    else:
        state, notices = on_check(state, outcome, at, policy, muted)
    row.alert_json = json.dumps(state.to_json(), sort_keys=True)
    row.alert_firing = state.firing
    for notice in notices:
        message = build_message(row, state, notice, context.site_base_url)
        for channel in context.config.channels:
            if channel.wants(row.url, row.category):
                _enqueue(connection, row, channel.name, message, at)


def build_message(
    row: AlertSubject, state: AlertState, notice: Notice, site_base_url: str | None
) -> NotificationMessage:
    """Return the message of a notice about an endpoint, as it stands in `row`."""
    return NotificationMessage(
        event=notice.event,
        notification_id=notification_id(row.slug, notice),
        url=row.url,
        slug=row.slug,
        title=row.title,
        category=row.category,
        status=row.status,
        consecutive_failures=row.consecutive_failures,
        last_error=row.last_error,
        last_healthy=row.last_healthy_at,
        page_url=f"{site_base_url}endpoints/{row.slug}.html" if site_base_url else None,
        at=notice.at,
        fired_at=state.fired_at,
    )


def _enqueue(
    connection: Connection,
    row: AlertSubject,
    channel: str,
    message: NotificationMessage,
    at: datetime,
) -> None:
    exists = connection.execute(
        select(NOTIFICATIONS.c.id).where(
            NOTIFICATIONS.c.notification_id == message.notification_id,
            NOTIFICATIONS.c.channel == channel,
        )
    ).first()
    if exists is not None:
        return  # the same notice written twice (a replayed round) stays one notification
    connection.execute(
        insert(NOTIFICATIONS).values(
            notification_id=message.notification_id,
            channel=channel,
            endpoint_id=row.id,
            event=str(message.event),
            message_json=json.dumps(message_to_json(message), sort_keys=True),
            created_at=at,
            next_attempt_at=at,
            attempts=0,
            state=PENDING,
        )
    )


def tick_rows(session: Session) -> Sequence[EndpointRow]:
    """Return endpoints whose alert may need a tick (firing, flapping, or told it fires)."""
    return session.exec(
        select(EndpointRow).where(
            col(EndpointRow.alert_json).is_not(None),
            col(EndpointRow.alert_firing)
            | col(EndpointRow.alert_json).contains('"flapping": true')
            | col(EndpointRow.alert_json).contains('"last_notice": "firing"')
            | col(EndpointRow.alert_json).contains('"last_notice": "reminder"')
            | col(EndpointRow.alert_json).contains('"last_notice": "flapping"'),
        )
    ).all()


def due(session: Session, now: datetime, limit: int) -> list[Outgoing]:
    """Return pending notifications whose next attempt has come, oldest first."""
    rows = session.exec(
        select(NotificationRow)
        .where(NotificationRow.state == PENDING, col(NotificationRow.next_attempt_at) <= now)
        .order_by(col(NotificationRow.next_attempt_at), col(NotificationRow.id))
        .limit(limit)
    ).all()
    return [
        Outgoing(
            row.id or 0, row.channel, row.attempts, message_from_json(json.loads(row.message_json))
        )
        for row in rows
    ]


def record(
    session: Session,
    row_id: int,
    *,
    ok: bool,
    permanent: bool,
    detail: str,
    now: datetime,
    retry_in: timedelta,
    max_attempts: int,
) -> str:
    """Record one delivery attempt; return the row's new state."""
    row = session.get(NotificationRow, row_id)
    if row is None:
        return FAILED
    row.attempts += 1
    row.last_detail = detail[:500]
    if ok:
        row.state, row.sent_at = SENT, now
    elif permanent or row.attempts >= max_attempts:
        row.state = FAILED
    else:
        row.next_attempt_at = now + retry_in
    session.add(row)
    return row.state


def retry_pending_now(session: Session, now: datetime) -> int:
    """Make every pending notification due at once (after a restart); return how many."""
    result = session.execute(
        text("UPDATE notifications SET next_attempt_at = :now WHERE state = 'pending'").bindparams(
            moment("now")
        ),
        {"now": now},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def message_to_json(message: NotificationMessage) -> dict[str, object]:
    """Return the message as plain JSON (for the outbox row)."""
    return {
        "event": str(message.event),
        "notification_id": message.notification_id,
        "url": message.url,
        "slug": message.slug,
        "title": message.title,
        "category": message.category,
        "status": message.status,
        "consecutive_failures": message.consecutive_failures,
        "last_error": message.last_error,
        "last_healthy": message.last_healthy.isoformat() if message.last_healthy else None,
        "page_url": message.page_url,
        "at": message.at.isoformat(),
        "fired_at": message.fired_at.isoformat() if message.fired_at else None,
    }


def message_from_json(data: Mapping[str, object]) -> NotificationMessage:
    """Rebuild a message written by `message_to_json`."""

    def moment(key: str) -> datetime | None:
        value = data.get(key)
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    at = moment("at")
    assert at is not None
    return NotificationMessage(
        event=AlertEvent(str(data["event"])),
        notification_id=str(data["notification_id"]),
        url=str(data["url"]),
        slug=str(data["slug"]),
        title=_text(data.get("title")),
        category=_text(data.get("category")),
        status=str(data["status"]),
        consecutive_failures=int(str(data.get("consecutive_failures", 0))),
        last_error=_text(data.get("last_error")),
        last_healthy=moment("last_healthy"),
        page_url=_text(data.get("page_url")),
        at=at,
        fired_at=moment("fired_at"),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class OutboxMethods:
    """Store methods for alert state and the outbox (mixed into Store)."""

    def _session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError  # provided by Store

    def alert_tick(self, now: datetime, alerts: AlertContext) -> None:
        """Advance the alerts that may remind, settle or catch up; queue their notices."""
        with self._session() as session:
            for row in tick_rows(session):
                alert_step(session.connection(), row, alerts, now, None)
                session.add(row)

    def due_notifications(self, now: datetime, limit: int = 100) -> list[Outgoing]:
        """Return pending notifications whose next attempt has come."""
        with self._session() as session:
            return due(session, now, limit)

    def record_delivery(
        self,
        row_id: int,
        *,
        ok: bool,
        permanent: bool,
        detail: str,
        now: datetime,
        retry_in: timedelta,
        max_attempts: int,
    ) -> str:
        """Record one delivery attempt of an outbox row; return its new state."""
        with self._session() as session:
            return record(
                session,
                row_id,
                ok=ok,
                permanent=permanent,
                detail=detail,
                now=now,
                retry_in=retry_in,
                max_attempts=max_attempts,
            )

    def retry_pending_now(self, now: datetime) -> int:
        """Make every pending notification due now (at start-up); return how many."""
        with self._session() as session:
            return retry_pending_now(session, now)

    def notification_states(self) -> dict[str, int]:
        """Return how many outbox rows are pending, sent and failed."""
        with self._session() as session:
            rows = session.execute(text("SELECT state, COUNT(*) FROM notifications GROUP BY state"))
            return {state: int(count) for state, count in rows}

    def firing(self) -> list[StoredEndpoint]:
        """Return the endpoints whose alert is firing, by URL."""
        query = (
            select(EndpointRow).where(col(EndpointRow.alert_firing)).order_by(col(EndpointRow.url))
        )
        with self._session() as session:
            return [stored_endpoint(row) for row in session.exec(query)]
