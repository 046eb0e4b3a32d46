"""The alert state machine of one endpoint and the payloads its notifications carry.

Core module: stdlib and monitor core only; time always arrives as a parameter. The edge
`monitor.alerts` delivers what is built here; the store persists `AlertState.to_json()`.

State machine (one `AlertState` per endpoint, advanced by `on_check` and `on_tick`):

- `ok` → `firing` when conclusive failures in a row (soft or hard) reach `failure_threshold`;
  `firing` → `ok` after `success_threshold` passes in a row (a failure restarts the count).
  An inconclusive check changes nothing at all: it neither fires, resolves nor resets a streak.
- Every unmuted ok↔firing change is recorded in `changes` (kept within `flap_window`); changes
  during a mute are not, since maintenance flips an endpoint on purpose. When more than
  `flap_threshold` changes fall within `flap_window`, the endpoint is *flapping*: one `flapping`
  notice, then silence for as long as it flaps.
- Flapping *settles* when no change has happened for a whole `flap_window`; the first step
  (tick or check) at or after that moment clears `flapping`.
- Muted steps advance the state but send nothing.

What receivers have been told is `last_notice`. Every step that is neither muted nor inside a
flapping episode *reconciles* it with the current state, so at most one notice per step:

- flapping, and `flapping` not yet told → `flapping` (this is the one flapping notice);
- firing, and the last notice was not `firing`/`reminder` → `firing` (a new alert, the catch-up
  of an alert that started during a mute, or the state an endpoint settled in after flapping);
- ok, and the last notice was `firing`/`reminder`/`flapping` → `resolved` when `send_resolved`;
  otherwise nothing is sent and `last_notice` becomes `resolved` anyway ("deemed told"), so a
  later alert fires normally.

Consequences: an alert that fires during a mute is reported at the first unmuted step; one that
fires and resolves inside a mute sends nothing; one notified before a mute and resolved inside
it sends `resolved` after it; one notified, resolved and fired again inside a mute sends
nothing more (receivers already believe it fires, and reminders continue). Reminders
(`on_tick` only) follow a notified alert every `repeat_interval` after `last_sent_at`; the
first unmuted tick after a long mute may therefore remind at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from monitor.alert_config import AlertPolicy
from monitor.models import JsonValue, Outcome


class AlertEvent(StrEnum):
    """What a notification says about an endpoint."""

    FIRING = "firing"
    RESOLVED = "resolved"
    REMINDER = "reminder"
    FLAPPING = "flapping"
    TEST = "test"


_TOLD_FIRING = (AlertEvent.FIRING, AlertEvent.REMINDER)

ALERTMANAGER_REPOST = timedelta(minutes=1)
"""How often the service re-posts an active alert to Alertmanager channels.

Alertmanager resolves an alert without `endsAt` by itself after its `resolve_timeout`
(default 5 min); re-posting at most every third of it keeps the alert active while it lasts.
Re-post the message of the last notified event while `last_notice` is firing, reminder or
flapping (`alertmanager_alerts` of that event, with the original `fired_at`).
"""

ALERTNAME = "X402EndpointDown"
TEST_ALERTNAME = "X402NotificationTest"
TEST_ALERT_DURATION = timedelta(minutes=5)
"""A test alert posted to Alertmanager ends by itself after this long."""

_ID_NAMESPACE = uuid.UUID("8f4f1d1e-6a43-5c1b-9a52-402402402402")


@dataclass(frozen=True)
class AlertState:
    """The persisted alert state of one endpoint (see the module docstring for the rules).

    `fired_at` is when the current alert fired, or the last one once resolved (Alertmanager's
    `startsAt`). `last_sent_at` is the time of the last firing or reminder notice (reminders
    are measured from it). `changes` holds the times of recent ok↔firing changes
    (at most `flap_threshold + 1`, within `flap_window`). `last_notice` is what receivers were
    last told (module docstring); None = nothing yet.
    """

    firing: bool = False
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    fired_at: datetime | None = None
    last_sent_at: datetime | None = None
    changes: tuple[datetime, ...] = ()
    flapping: bool = False
    last_notice: AlertEvent | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """Return the state as a plain JSON object (datetimes as ISO 8601, offsets kept)."""
        return {
            "firing": self.firing,
            "consecutive_failures": self.consecutive_failures,
            "consecutive_passes": self.consecutive_passes,
            "fired_at": None if self.fired_at is None else self.fired_at.isoformat(),
            "last_sent_at": None if self.last_sent_at is None else self.last_sent_at.isoformat(),
            "changes": [change.isoformat() for change in self.changes],
            "flapping": self.flapping,
            "last_notice": None if self.last_notice is None else str(self.last_notice),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> AlertState:
        """Rebuild a state from `to_json()` output; missing keys take their defaults.

        Raises ValueError (or TypeError) when a present value has the wrong form.
        """
        notice = data.get("last_notice")
        return cls(
            firing=bool(data.get("firing", False)),
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            consecutive_passes=int(data.get("consecutive_passes", 0)),
            fired_at=_opt_datetime(data.get("fired_at")),
            last_sent_at=_opt_datetime(data.get("last_sent_at")),
            changes=tuple(datetime.fromisoformat(text) for text in data.get("changes", [])),
            flapping=bool(data.get("flapping", False)),
            last_notice=None if notice is None else AlertEvent(notice),
        )


@dataclass(frozen=True)
class Notice:
    """One notification to send: what happened and when (the step's time)."""

    event: AlertEvent
    at: datetime


def on_check(
    state: AlertState, outcome: Outcome, at: datetime, policy: AlertPolicy, muted: bool
) -> tuple[AlertState, list[Notice]]:
    """Advance `state` by one check at `at`; return the new state and the notices to send.

    An inconclusive outcome returns `state` unchanged and no notice. Otherwise settle a
    flapping episode that has been quiet for `flap_window`, count the outcome, fire or resolve,
    record the change, detect flapping and, unless `muted`, reconcile (at most one notice).
    """
    if not outcome.conclusive:
        return state, []
    state = _settle(state, at, policy)
    if outcome is Outcome.PASS:
        state = replace(
            state, consecutive_failures=0, consecutive_passes=state.consecutive_passes + 1
        )
    else:
        state = replace(
            state, consecutive_failures=state.consecutive_failures + 1, consecutive_passes=0
        )
    if not state.firing and state.consecutive_failures >= policy.failure_threshold:
        state = _changed(replace(state, firing=True, fired_at=at), at, policy, muted)
    elif state.firing and state.consecutive_passes >= policy.success_threshold:
        state = _changed(replace(state, firing=False), at, policy, muted)
    if muted:
        return state, []
    return _reconcile(state, at, policy)


def on_tick(
    state: AlertState, now: datetime, policy: AlertPolicy, muted: bool
) -> tuple[AlertState, list[Notice]]:
    """Advance `state` to `now` without a check; return the new state and notices to send.

    Settle flapping that has been quiet for a whole `flap_window`; unless `muted`, reconcile
    (post-mute or post-flapping catch-up) and, when that sent nothing, remind of a notified
    firing alert once `repeat_interval` (0 = never) has passed since `last_sent_at`.
    """
    state = _settle(state, now, policy)
    if muted:
        return state, []
    state, notices = _reconcile(state, now, policy)
    if notices or not _reminder_due(state, now, policy):
        return state, notices
    return replace(state, last_notice=AlertEvent.REMINDER, last_sent_at=now), [
        Notice(AlertEvent.REMINDER, now)
    ]


def _changed(state: AlertState, at: datetime, policy: AlertPolicy, muted: bool) -> AlertState:
    """Record an ok↔firing change at `at` and start flapping past `flap_threshold` changes."""
    if muted:
        # Maintenance work often flips an endpoint on purpose: those flips must not add up to
        # a flapping notice once the window ends.
        return state
    recent = tuple(change for change in state.changes if at - change < policy.flap_window)
    # Only the last flap_threshold + 1 changes matter: enough to detect, bounded to store.
    changes = (*recent, at)[-(policy.flap_threshold + 1) :]
    flapping = state.flapping or len(changes) > policy.flap_threshold
    return replace(state, changes=changes, flapping=flapping)


def _settle(state: AlertState, at: datetime, policy: AlertPolicy) -> AlertState:
    """End a flapping episode once no change has happened for a whole `flap_window`."""
    if not state.flapping:
        return state
    if state.changes and at - state.changes[-1] < policy.flap_window:
        return state
    return replace(state, flapping=False, changes=())


def _reconcile(
    state: AlertState, at: datetime, policy: AlertPolicy
) -> tuple[AlertState, list[Notice]]:
    """Tell receivers the current state if it differs from what they were last told."""
    if state.flapping:
        if state.last_notice is AlertEvent.FLAPPING:
            return state, []
        return replace(state, last_notice=AlertEvent.FLAPPING), [Notice(AlertEvent.FLAPPING, at)]
    if state.firing:
        if state.last_notice in _TOLD_FIRING:
            return state, []
        notice = Notice(AlertEvent.FIRING, at)
        return replace(state, last_notice=AlertEvent.FIRING, last_sent_at=at), [notice]
    if state.last_notice in (*_TOLD_FIRING, AlertEvent.FLAPPING):
        resolved = replace(state, last_notice=AlertEvent.RESOLVED)
        return resolved, [Notice(AlertEvent.RESOLVED, at)] if policy.send_resolved else []
    return state, []


def _reminder_due(state: AlertState, now: datetime, policy: AlertPolicy) -> bool:
    return (
        state.firing
        and not state.flapping
        and state.last_notice in _TOLD_FIRING
        and policy.repeat_interval > timedelta(0)
        and state.last_sent_at is not None
        and now - state.last_sent_at >= policy.repeat_interval
    )


def notification_id(slug: str, notice: Notice) -> str:
    """Return the stable id of a notice: a UUIDv5 of slug, event and time (as UTC).

    The same notice always gets the same id, so the outbox (keyed by id and channel) never
    holds it twice, and receivers can de-duplicate on `X-Notification-Id`.
    """
    name = f"{slug}\n{notice.event}\n{_iso(notice.at)}"
    return str(uuid.uuid5(_ID_NAMESPACE, name))


@dataclass(frozen=True)
class NotificationMessage:
    """Everything a channel needs to render one notification about one endpoint.

    `status` is the endpoint's derived status (`down`, `degraded`, ...); `page_url` is the
    endpoint's page on the published site (None when no site URL is configured); `at` is the
    notice time; `fired_at` the start of the alert it concerns (Alertmanager `startsAt`).
    """

    event: AlertEvent
    notification_id: str
    url: str
    slug: str
    title: str | None
    category: str | None
    status: str
    consecutive_failures: int
    last_error: str | None
    last_healthy: datetime | None
    page_url: str | None
    at: datetime
    fired_at: datetime | None = None


def webhook_body(message: NotificationMessage) -> bytes:
    """Return the webhook JSON body (UTF-8, sorted keys, compact); the documented contract:

    `{"endpoint": {"category", "consecutive_failures", "last_error", "last_healthy", "page",
    "slug", "status", "title", "url"}, "event", "notification_id", "timestamp"}`; times are
    ISO 8601 UTC (`2026-01-01T00:00:00Z`), absent values are null.
    """
    document = {
        "event": str(message.event),
        "notification_id": message.notification_id,
        "timestamp": _iso(message.at),
        "endpoint": {
            "url": message.url,
            "slug": message.slug,
            "title": message.title,
            "category": message.category,
            "status": message.status,
            "consecutive_failures": message.consecutive_failures,
            "last_error": message.last_error,
            "last_healthy": _opt_iso(message.last_healthy),
            "page": message.page_url,
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    """Return the `X-Signature-256` value: `sha256=` + hex HMAC-SHA256 of `body` under `secret`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def alertmanager_alerts(message: NotificationMessage) -> list[dict[str, JsonValue]]:
    """Return the `POST /api/v2/alerts` body: the endpoint's whole alert picture.

    One endpoint is one alert `X402EndpointDown{endpoint=<slug>}` whose severity is `critical`
    while firing and `warning` while flapping; each post sets one of them active and ends the
    other (`endsAt` = now), so a change of severity never leaves a stale alert behind. Resolved
    ends both. Active alerts carry no `endsAt`: Alertmanager's `resolve_timeout` applies, hence
    the re-posts every `ALERTMANAGER_REPOST`. A test notice is a separate `X402NotificationTest`
    alert that ends by itself after `TEST_ALERT_DURATION`.
    """
    starts = _iso(message.fired_at or message.at)
    now = _iso(message.at)
    if message.event is AlertEvent.TEST:
        test = _am_alert(message, TEST_ALERTNAME, "info", starts=now)
        test["endsAt"] = _iso(message.at + TEST_ALERT_DURATION)
        return [test]
    active = {
        AlertEvent.FIRING: "critical",
        AlertEvent.REMINDER: "critical",
        AlertEvent.FLAPPING: "warning",
    }.get(message.event)
    alerts: list[dict[str, JsonValue]] = []
    for severity in ("critical", "warning"):
        alert = _am_alert(message, ALERTNAME, severity, starts=starts)
        if severity != active:
            alert["endsAt"] = now
        alerts.append(alert)
    return alerts


def _am_alert(
    message: NotificationMessage, alertname: str, severity: str, *, starts: str
) -> dict[str, JsonValue]:
    title, _ = text_message(message)
    annotations = {
        "summary": title,
        "description": _description(message),
        "url": message.url,
    }
    if message.page_url:
        annotations["page"] = message.page_url
    alert: dict[str, JsonValue] = {
        "labels": {"alertname": alertname, "endpoint": message.slug, "severity": severity},
        "annotations": annotations,
        "startsAt": starts,
    }
    if message.page_url:
        alert["generatorURL"] = message.page_url
    return alert


_HEADLINES = {
    AlertEvent.FIRING: "[FIRING] x402 endpoint down",
    AlertEvent.REMINDER: "[REMINDER] x402 endpoint still down",
    AlertEvent.RESOLVED: "[RESOLVED] x402 endpoint recovered",
    AlertEvent.FLAPPING: "[FLAPPING] x402 endpoint keeps failing and recovering",
    AlertEvent.TEST: "[TEST] x402 monitor test notification",
}


def text_message(message: NotificationMessage) -> tuple[str, str]:
    """Return (title, body) as readable plain text for chat and e-mail channels."""
    title = f"{_HEADLINES[message.event]}: {message.title or message.slug}"
    lines = [
        f"Endpoint: {message.title or message.slug} ({message.slug})",
        f"URL: {message.url}",
        f"Status: {message.status}",
        f"Consecutive failures: {message.consecutive_failures}",
        f"Last error: {message.last_error or '-'}",
        f"Last healthy: {_opt_human(message.last_healthy) or 'never'}",
    ]
    if message.fired_at is not None and message.event is not AlertEvent.TEST:
        lines.append(f"Alert since: {_human(message.fired_at)}")
    if message.event is AlertEvent.FLAPPING:
        lines.append("Further changes stay quiet until the endpoint settles.")
    if message.page_url:
        lines.append(f"Page: {message.page_url}")
    lines.append(f"At: {_human(message.at)} (notification {message.notification_id})")
    return title, "\n".join(lines)


def _description(message: NotificationMessage) -> str:
    return (
        f"{message.url} is {message.status}: {message.consecutive_failures} consecutive "
        f"failures, last error: {message.last_error or '-'}, last healthy: "
        f"{_opt_human(message.last_healthy) or 'never'}"
    )


def _utc(value: datetime) -> datetime:
    # A naive time is taken as UTC: converting it as local time would depend on the host's TZ.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")


def _opt_iso(value: datetime | None) -> str | None:
    return None if value is None else _iso(value)


def _human(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _opt_human(value: datetime | None) -> str | None:
    return None if value is None else _human(value)


def _opt_datetime(value: JsonValue) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value))
