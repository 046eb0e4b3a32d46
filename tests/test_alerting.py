"""The alert state machine, table-driven, and the notification payload builders."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from monitor.alert_config import AlertPolicy, EndpointAlerts
from monitor.alerting import (
    ALERTNAME,
    AlertEvent,
    AlertState,
    Notice,
    NotificationMessage,
    alertmanager_alerts,
    notification_id,
    on_check,
    on_tick,
    signature,
    text_message,
    webhook_body,
)
from monitor.models import Outcome

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OUTCOMES = {
    "F": Outcome.HARD_FAIL,
    "S": Outcome.SOFT_FAIL,
    "P": Outcome.PASS,
    "I": Outcome.INCONCLUSIVE,
}
REMIND_30 = {"repeat_interval": timedelta(minutes=30)}
# Every conclusive check flips the alert: flapping rows stay short.
TOGGLE = {
    "failure_threshold": 1,
    "success_threshold": 1,
    "flap_threshold": 3,
    "flap_window": timedelta(minutes=60),
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def play(
    steps: str, policy: AlertPolicy, state: AlertState | None = None
) -> tuple[AlertState, str]:
    """Run steps such as `F@0 P@1! t@5` and return the final state and `event@minute` notices.

    F hard fail, S soft fail, P pass, I inconclusive, t tick; `@minutes` after T0; a trailing
    `!` makes the step muted.
    """
    state = state or AlertState()
    heard: list[str] = []
    for token in steps.split():
        kind, _, when = token.partition("@")
        muted = when.endswith("!")
        time = at(float(when.rstrip("!")))
        if kind == "t":
            state, notices = on_tick(state, time, policy, muted)
        else:
            state, notices = on_check(state, OUTCOMES[kind], time, policy, muted)
        assert len(notices) <= 1, "a step sends at most one notice"
        heard += [f"{n.event}@{(n.at - T0) / timedelta(minutes=1):g}" for n in notices]
    return state, " ".join(heard)


ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    # name, policy changes, steps, notices expected (exactly)
    ("three failures fire once", {}, "F@0 F@1 F@2 F@3 F@4 t@5", "firing@2"),
    ("two failures do not fire", {}, "F@0 F@1 P@2 F@3 F@4 t@5", ""),
    ("soft and hard both count", {}, "S@0 F@1 S@2", "firing@2"),
    ("inconclusive neither fires", {}, "I@0 I@1 I@2 I@3 I@4", ""),
    ("inconclusive does not reset the failures", {}, "F@0 I@1 F@2 I@3 F@4", "firing@4"),
    (
        "inconclusive does not reset the passes",
        {},
        "F@0 F@1 F@2 P@3 I@4 P@5",
        "firing@2 resolved@5",
    ),
    ("inconclusive does not resolve", {}, "F@0 F@1 F@2 I@3 I@4 I@5 t@6", "firing@2"),
    ("two passes resolve", {}, "F@0 F@1 F@2 P@3 P@4 P@5", "firing@2 resolved@4"),
    ("one pass is not enough", {}, "F@0 F@1 F@2 P@3 t@4", "firing@2"),
    ("a failure restarts the passes", {}, "F@0 F@1 F@2 P@3 F@4 P@5 P@6", "firing@2 resolved@6"),
    (
        "send_resolved false: silent recovery, next alert fires again",
        {"send_resolved": False},
        "F@0 F@1 F@2 P@3 P@4 F@5 F@6 F@7",
        "firing@2 firing@7",
    ),
    (
        "reminders every repeat_interval from the last notice",
        REMIND_30,
        "F@0 F@1 F@2 t@10 t@31 t@32 t@40 t@62 t@92",
        "firing@2 reminder@32 reminder@62 reminder@92",
    ),
    (
        "no reminders when repeat_interval is 0",
        {"repeat_interval": timedelta(0)},
        "F@0 F@1 F@2 t@500 t@10000",
        "firing@2",
    ),
    (
        "no reminders after resolving",
        REMIND_30,
        "F@0 F@1 F@2 P@3 P@4 t@40 t@80",
        "firing@2 resolved@4",
    ),
    (
        "no reminder while muted, one at the first unmuted tick",
        REMIND_30,
        "F@0 F@1 F@2 t@32! t@40! t@41 t@42",
        "firing@2 reminder@41",
    ),
    (
        "firing during a mute: nothing, then caught up once",
        {},
        "F@0! F@1! F@2! F@3! t@4! t@5 t@6 F@7",
        "firing@5",
    ),
    ("catch-up also on the first unmuted check", {}, "F@0! F@1! F@2! F@3", "firing@3"),
    ("an inconclusive check does not catch up", {}, "F@0! F@1! F@2! I@3 t@4", "firing@4"),
    (
        "fire and resolve inside a mute: nothing at all",
        {},
        "F@0! F@1! F@2! P@3! P@4! t@5 t@6 P@7",
        "",
    ),
    (
        "notified, then resolved inside a mute: resolved after it",
        {},
        "F@0 F@1 F@2 P@3! P@4! t@5 t@6",
        "firing@2 resolved@5",
    ),
    (
        "notified, resolved and fired again inside a mute: nothing more",
        {},
        "F@0 F@1 F@2 P@3! P@4! F@5! F@6! F@7! t@8",
        "firing@2",
    ),
    (
        "flapping: one notice, silence, settled firing told once",
        TOGGLE,
        "F@0 P@1 F@2 P@3 F@4 P@5 F@6 t@7 t@65 t@66 t@67",
        "firing@0 resolved@1 firing@2 flapping@3 firing@66",
    ),
    (
        "flapping settled in ok: resolved once",
        TOGGLE,
        "F@0 P@1 F@2 P@3 F@4 P@5 t@64 t@65 t@70",
        "firing@0 resolved@1 firing@2 flapping@3 resolved@65",
    ),
    (
        "settling is noticed by a check too",
        TOGGLE,
        "F@0 P@1 F@2 P@3 F@4 P@5 F@70",
        "firing@0 resolved@1 firing@2 flapping@3 firing@70",
    ),
    (
        "no reminders while flapping",
        {**TOGGLE, **REMIND_30},
        "F@0 P@1 F@2 P@3 F@4 t@35 t@63",
        "firing@0 resolved@1 firing@2 flapping@3",
    ),
    (
        "send_resolved false: settled ok is silent, a new episode notifies again",
        {**TOGGLE, "send_resolved": False},
        "F@0 P@1 F@2 P@3 F@4 P@5 t@70 F@80 P@81 F@82 P@83 F@84",
        "firing@0 firing@2 flapping@3 firing@80 firing@82 flapping@83",
    ),
    (
        "changes spread wider than flap_window are not flapping",
        TOGGLE,
        "F@0 P@30 F@61 P@92 F@123",
        "firing@0 resolved@30 firing@61 resolved@92 firing@123",
    ),
    (
        "flips during a mute do not count towards flapping",
        TOGGLE,
        "F@0! P@1! F@2! P@3! F@4 P@5",
        "firing@4 resolved@5",
    ),
    (
        "flapping settled during a mute: the settled state is told after it",
        TOGGLE,
        "F@0 P@1 F@2 P@3 F@4! t@64! t@70 t@71",
        "firing@0 resolved@1 firing@2 flapping@3 firing@70",
    ),
]


@pytest.mark.parametrize(
    ("changes", "steps", "expected"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_state_machine(changes: dict[str, Any], steps: str, expected: str) -> None:
    assert play(steps, AlertPolicy(**changes))[1] == expected


def test_inconclusive_returns_the_state_untouched() -> None:
    state, _ = play("F@0 F@1", AlertPolicy())
    assert on_check(state, Outcome.INCONCLUSIVE, at(2), AlertPolicy(), False) == (state, [])


def test_counters_follow_the_checks() -> None:
    state, _ = play("F@0 F@1 F@2 P@3", AlertPolicy())
    assert (state.firing, state.consecutive_failures, state.consecutive_passes) == (True, 0, 1)
    assert (state.fired_at, state.last_sent_at, state.last_notice) == (
        at(2),
        at(2),
        AlertEvent.FIRING,
    )
    state, _ = play("P@4", AlertPolicy(), state)
    assert (state.firing, state.fired_at, state.last_notice) == (False, at(2), AlertEvent.RESOLVED)
    assert state.changes == (at(2), at(4))


def test_changes_stay_bounded_while_flapping() -> None:
    steps = " ".join(f"{'FP'[i % 2]}@{i}" for i in range(50))
    state, heard = play(steps, AlertPolicy.model_validate(TOGGLE))
    assert state.flapping
    assert heard == "firing@0 resolved@1 firing@2 flapping@3"
    assert len(state.changes) == 4


def test_endpoint_overrides_apply_to_the_policy() -> None:
    policy = AlertPolicy()
    assert EndpointAlerts().apply(policy) == policy
    strict = EndpointAlerts(failure_threshold=1, send_resolved=False).apply(policy)
    assert (strict.failure_threshold, strict.success_threshold) == (1, 2)
    assert play("F@0 P@1 P@2", strict)[1] == "firing@0"
    assert play("F@0 P@1 P@2", policy)[1] == ""


def test_state_round_trips_through_json_and_resumes_identically() -> None:
    policy = AlertPolicy.model_validate(TOGGLE)
    state, _ = play("F@0 P@1 F@2 P@3", policy)
    restored = AlertState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    assert play("F@4 t@70", policy, restored) == play("F@4 t@70", policy, state)
    assert AlertState.from_json({}) == AlertState()
    assert AlertState.from_json(AlertState().to_json()) == AlertState()


# --- payloads ---------------------------------------------------------------------------

FIRED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 12, 5, 30, tzinfo=UTC)


def message(event: AlertEvent = AlertEvent.FIRING, **changes: Any) -> NotificationMessage:
    fields: dict[str, Any] = {
        "event": event,
        "notification_id": "1b4e28ba-2fa1-5d2b-a03e-7a2bf4b2c1de",
        "url": "https://api.example.com/weather",
        "slug": "api-example-com-weather",
        "title": "Weather API",
        "category": "data",
        "status": "down",
        "consecutive_failures": 3,
        "last_error": "HTTP 500",
        "last_healthy": datetime(2026, 3, 1, 11, 58, tzinfo=UTC),
        "page_url": "https://status.example.org/endpoints/api-example-com-weather.html",
        "at": NOW,
        "fired_at": FIRED,
    }
    fields.update(changes)
    return NotificationMessage(**fields)


def test_webhook_body_is_the_documented_json() -> None:
    body = webhook_body(message())
    document = json.loads(body)
    assert document == {
        "event": "firing",
        "notification_id": "1b4e28ba-2fa1-5d2b-a03e-7a2bf4b2c1de",
        "timestamp": "2026-03-01T12:05:30Z",
        "endpoint": {
            "url": "https://api.example.com/weather",
            "slug": "api-example-com-weather",
            "title": "Weather API",
            "category": "data",
            "status": "down",
            "consecutive_failures": 3,
            "last_error": "HTTP 500",
            "last_healthy": "2026-03-01T11:58:00Z",
            "page": "https://status.example.org/endpoints/api-example-com-weather.html",
        },
    }
    assert body == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def test_webhook_body_uses_null_for_unknowns_and_utc_times() -> None:
    offset = timezone(timedelta(hours=2))
    document = json.loads(
        webhook_body(
            message(last_healthy=None, last_error=None, title=None, at=NOW.astimezone(offset))
        )
    )
    assert document["timestamp"] == "2026-03-01T12:05:30Z"
    assert document["endpoint"]["last_healthy"] is None
    assert document["endpoint"]["last_error"] is None
    assert document["endpoint"]["title"] is None


def test_signature_matches_a_known_hmac_vector() -> None:
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert signature("key", body) == expected
    payload = webhook_body(message())
    digest = hmac.new(b"s3cret", payload, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature("s3cret", payload), f"sha256={digest}")


def _by_severity(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {alert["labels"]["severity"]: alert for alert in alerts}


def test_alertmanager_firing_is_one_active_critical_alert() -> None:
    alerts = _by_severity(alertmanager_alerts(message()))
    critical, warning = alerts["critical"], alerts["warning"]
    assert critical["labels"] == {
        "alertname": ALERTNAME,
        "endpoint": "api-example-com-weather",
        "severity": "critical",
    }
    assert critical["startsAt"] == "2026-03-01T12:00:00Z"
    assert "endsAt" not in critical
    assert critical["generatorURL"] == message().page_url
    annotations = critical["annotations"]
    assert set(annotations) == {"summary", "description", "url", "page"}
    assert "Weather API" in annotations["summary"]
    assert "HTTP 500" in annotations["description"]
    assert annotations["url"] == "https://api.example.com/weather"
    assert annotations["page"] == message().page_url
    assert warning["endsAt"] == "2026-03-01T12:05:30Z"  # the other severity is ended


@pytest.mark.parametrize(
    ("event", "active"),
    [
        (AlertEvent.REMINDER, {"critical"}),
        (AlertEvent.FLAPPING, {"warning"}),
        (AlertEvent.RESOLVED, set()),
    ],
)
def test_alertmanager_severity_and_end_per_event(event: AlertEvent, active: set[str]) -> None:
    alerts = _by_severity(alertmanager_alerts(message(event)))
    assert set(alerts) == {"critical", "warning"}
    for severity, alert in alerts.items():
        assert alert["startsAt"] == "2026-03-01T12:00:00Z"
        assert ("endsAt" not in alert) == (severity in active)
        if severity not in active:
            assert alert["endsAt"] == "2026-03-01T12:05:30Z"


def test_alertmanager_test_alert_is_separate_and_ends_itself() -> None:
    (alert,) = alertmanager_alerts(message(AlertEvent.TEST, fired_at=None))
    assert alert["labels"]["alertname"] == "X402NotificationTest"
    assert alert["startsAt"] == "2026-03-01T12:05:30Z"
    assert alert["endsAt"] == "2026-03-01T12:10:30Z"


def test_alertmanager_without_page_omits_links() -> None:
    for alert in alertmanager_alerts(message(page_url=None)):
        assert "generatorURL" not in alert
        assert "page" not in alert["annotations"]


def test_text_message_is_readable_with_the_page_link() -> None:
    title, body = text_message(message())
    assert title == "[FIRING] x402 endpoint down: Weather API"
    assert "URL: https://api.example.com/weather" in body
    assert "Consecutive failures: 3" in body
    assert "Last healthy: 2026-03-01 11:58:00 UTC" in body
    assert f"Page: {message().page_url}" in body
    title, body = text_message(message(AlertEvent.RESOLVED, title=None, last_healthy=None))
    assert title == "[RESOLVED] x402 endpoint recovered: api-example-com-weather"
    assert "Last healthy: never" in body


def test_notification_id_is_stable_and_distinct() -> None:
    notice = Notice(AlertEvent.FIRING, NOW)
    first = notification_id("slug-a", notice)
    assert first == notification_id("slug-a", Notice(AlertEvent.FIRING, NOW))
    assert first == notification_id(
        "slug-a", Notice(AlertEvent.FIRING, NOW.astimezone(timezone(timedelta(hours=-5))))
    )
    assert uuid.UUID(first).version == 5
    others = {
        notification_id("slug-b", notice),
        notification_id("slug-a", Notice(AlertEvent.REMINDER, NOW)),
        notification_id("slug-a", Notice(AlertEvent.FIRING, NOW + timedelta(seconds=1))),
    }
    assert first not in others
    assert len(others) == 3
