"""Page histories from the store: recent checks, latency series, 30 days, flips, findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.config import ThresholdsConfig
from monitor.models import (
    Challenge,
    CheckResult,
    EndpointSpec,
    Finding,
    Offer,
    Outcome,
    Severity,
    Status,
)
from monitor.store import Store

THRESHOLDS = ThresholdsConfig()
INTERVAL = timedelta(hours=1)
URL = "https://seller.example/pay"
START = datetime(2026, 11, 1, tzinfo=UTC)


def _result(at: datetime, outcome: Outcome, latency: float | None) -> CheckResult:
    challenge = None
    if outcome is Outcome.PASS:
        offer = Offer(0, "exact", "eip155:8453", "1", "0xa", "0xb", 60, None, valid=True)
        warning = Finding(
            "asset-unverified", Severity.WARNING, "asset unknown; check it", "accepts[0].asset"
        )
        challenge = Challenge(
            2,
            "header",
            {"resource": {"description": "A  paid thing "}},
            (offer,),
            (warning,),
            valid=True,
        )
    status = {Outcome.PASS: 402, Outcome.HARD_FAIL: None}.get(outcome, 404)
    return CheckResult(URL, "GET", False, at, outcome, status, latency, None, challenge)


def test_page_history_covers_recent_checks_days_latency_and_flips(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    store.sync_config_endpoints([EndpointSpec(URL, "GET")], START)
    endpoint_id = store.endpoints()[0].id
    # 3 days of hourly checks: passes, with a 3-hour outage (hard failures) on day 2.
    for hour in range(72):
        at = START + timedelta(hours=hour)
        outcome = Outcome.HARD_FAIL if 30 <= hour < 33 else Outcome.PASS
        latency = None if outcome is Outcome.HARD_FAIL else 100.0 + hour
        store.save_round([(endpoint_id, _result(at, outcome, latency))], THRESHOLDS, INTERVAL)
    now = START + timedelta(hours=72, minutes=30)
    store.roll_up_and_prune(now, keep_raw=timedelta(days=2))  # day 1 and 2 rolled, day 1 raw gone

    history = store.page_histories([endpoint_id], now)[endpoint_id]
    assert [line.checked_at for line in history.recent] == [
        START + timedelta(hours=71 - offset) for offset in range(20)
    ]
    assert {line.status for line in history.recent} == {Status.HEALTHY}
    assert history.findings == [
        Finding("asset-unverified", Severity.WARNING, "asset unknown; check it", "accepts[0].asset")
    ]
    # 24 h of points, oldest first; hard failures have no latency.
    assert len(history.latency_24h) == 23  # hours 49..71: the last 24 h before 72:30
    assert history.latency_24h[0].at == START + timedelta(hours=49)
    assert all(point.latency_ms is not None for point in history.latency_24h)
    # The 30 days of the window, oldest first, zero where nothing was checked.
    assert len(history.days) == 30
    assert history.days[-1].day == now.date()
    by_day = {day.day: day for day in history.days}
    first, second, third = (START + timedelta(days=n) for n in range(3))
    assert (by_day[first.date()].passes, by_day[first.date()].hard_fails) == (24, 0)
    assert (by_day[second.date()].passes, by_day[second.date()].hard_fails) == (21, 3)
    assert by_day[third.date()].passes == 24
    assert by_day[second.date()].uptime == 21 / 24
    assert by_day[first.date()].p50_ms == 100.0 + 11  # nearest rank of 100..123
    assert by_day[(START - timedelta(days=1)).date()].uptime is None
    # Flips, newest first: healthy, degraded, down, degraded (recovering), healthy.
    transitions = [(flip.from_status, flip.to_status) for flip in history.flips]
    assert transitions == [
        (Status.DEGRADED, Status.HEALTHY),
        (Status.DOWN, Status.DEGRADED),
        (Status.DEGRADED, Status.DOWN),
        (Status.HEALTHY, Status.DEGRADED),
        (Status.UNKNOWN, Status.HEALTHY),
    ]
    assert store.endpoints()[0].description == "A  paid thing"
