"""Rollups, retention and scheduling in the store: figures survive raw deletion unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import ThresholdsConfig
from monitor.models import Challenge, CheckResult, EndpointSpec, Offer, Outcome
from monitor.schedule import next_slot
from monitor.stats import OutcomeCounts
from monitor.store import Store

THRESHOLDS = ThresholdsConfig()
INTERVAL = timedelta(hours=1)
URLS = [f"https://seller{index}.example/pay" for index in range(3)]


def _result(url: str, at: datetime, outcome: Outcome, latency: float, amount: str) -> CheckResult:
    challenge = None
    status = {Outcome.PASS: 402, Outcome.SOFT_FAIL: 404, Outcome.INCONCLUSIVE: 429}.get(outcome)
    if outcome is Outcome.PASS:
        offer = Offer(0, "exact", "eip155:8453", amount, "0xa", "0xb", 60, None, valid=True)
        challenge = Challenge(2, "header", {}, (offer,), (), valid=True)
    return CheckResult(url, "GET", False, at, outcome, status, latency, None, challenge)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    opened.sync_config_endpoints(
        [EndpointSpec(url, "GET") for url in URLS], datetime(2026, 10, 1, tzinfo=UTC)
    )
    return opened


def _fill(store: Store, start: datetime, days: int) -> None:
    """Store hourly checks with a varied, deterministic mix of outcomes and latencies."""
    ids = {endpoint.spec.url: endpoint.id for endpoint in store.endpoints()}
    outcomes = [
        Outcome.PASS,
        Outcome.PASS,
        Outcome.SOFT_FAIL,
        Outcome.HARD_FAIL,
        Outcome.INCONCLUSIVE,
    ]
    for hour in range(days * 24):
        at = start + timedelta(hours=hour)
        batch = []
        for index, url in enumerate(URLS):
            outcome = outcomes[(hour * (index + 1)) % len(outcomes)]
            latency = 50.0 + (hour * 37 + index * 11) % 900
            amount = "1000" if hour < days * 12 or index != 2 else "2000"  # seller2 changes price
            batch.append((ids[url], _result(url, at, outcome, latency, amount)))
        store.save_round(batch, THRESHOLDS, INTERVAL)


def _figures(store: Store, now: datetime) -> dict[int, tuple[OutcomeCounts, bool]]:
    figures = store.window_figures([endpoint.id for endpoint in store.endpoints()], now)
    return {eid: (f.counts, f.offers_stable) for eid, f in figures.items()}


def test_rollup_and_retention_keep_30_day_figures_identical(store: Store) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    _fill(store, start, days=40)
    now = start + timedelta(days=40, hours=1)
    before = _figures(store, now)
    stored_before = {e.id: (e.counts_30d, e.offers_stable, e.score) for e in store.endpoints()}

    written, deleted = store.roll_up_and_prune(now, keep_raw=timedelta(days=2))
    assert written == 40 * len(URLS)  # every ended day of every endpoint
    assert deleted > 0
    assert store.count_checks() < 3 * 24 * len(URLS)  # raw rows bounded by retention
    assert _figures(store, now) == before

    # A second run is idempotent and nothing left to roll up.
    assert store.roll_up_and_prune(now, keep_raw=timedelta(days=2)) == (0, 0)
    assert _figures(store, now) == before

    # New checks after the rollup are still counted on top of the rolled-up days.
    _fill(store, start + timedelta(days=40, hours=1), days=1)
    later = now + timedelta(days=1)
    after_more = _figures(store, later)
    store.roll_up_and_prune(later, keep_raw=timedelta(days=2))
    assert _figures(store, later) == after_more
    assert {e.id for e in store.endpoints()} == set(stored_before)


def test_offer_change_is_remembered_by_the_rollup(store: Store) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    _fill(store, start, days=4)
    now = start + timedelta(days=4, hours=1)
    store.roll_up_and_prune(now, keep_raw=timedelta(days=2))
    stable = {
        e.spec.url: f[1]
        for e in store.endpoints()
        for eid, f in _figures(store, now).items()
        if eid == e.id
    }
    assert stable == {URLS[0]: True, URLS[1]: True, URLS[2]: False}


def test_days_older_than_30_leave_the_window(store: Store) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    _fill(store, start, days=35)
    now = start + timedelta(days=35, hours=1)
    store.roll_up_and_prune(now, keep_raw=timedelta(days=2))
    for counts, _ in _figures(store, now).values():
        total = counts.conclusive + counts.inconclusive
        # Today (no check yet) and the 29 full days before it: never the 35 days stored.
        assert total == 29 * 24


def test_due_and_resume_spread_the_backlog(store: Store) -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert store.due(now, limit=10) == []  # never scheduled: nothing due until resumed
    assert store.resume(now, INTERVAL) == len(URLS)
    scheduled = {e.slug: e.next_check_at for e in store.endpoints()}
    for slug, when in scheduled.items():
        assert when == next_slot(slug, INTERVAL, now)
    assert store.due(now, limit=10) == []
    later = now + INTERVAL
    due = store.due(later, limit=10)
    assert {e.slug for e in due} == set(scheduled)
    times = [e.next_check_at for e in due if e.next_check_at is not None]
    assert times == sorted(times)
    assert len(store.due(later, limit=2)) == 2
    first = due[0].id
    assert first not in {e.id for e in store.due(later, limit=10, exclude=[first])}
    # Resuming again keeps due times that are still in the future.
    assert store.resume(now, INTERVAL) == 0


def test_running_counts_on_the_row_equal_a_full_recount(store: Store) -> None:
    """Saves add to the stored 30-day counts and recount only when the window day moves."""
    start = datetime(2026, 10, 1, 5, tzinfo=UTC)
    _fill(store, start, days=33)  # crosses many window-day changes; seller2 changes price
    last = start + timedelta(days=33) - timedelta(hours=1)
    recount = store.window_figures([e.id for e in store.endpoints()], last)
    for endpoint in store.endpoints():
        figures = recount[endpoint.id]
        assert endpoint.counts_30d == figures.counts, endpoint.spec.url
        assert endpoint.offers_stable == figures.offers_stable, endpoint.spec.url
    # Rolling up and pruning keeps them equal too.
    store.roll_up_and_prune(last + timedelta(minutes=30), keep_raw=timedelta(days=2))
    recount = store.window_figures([e.id for e in store.endpoints()], last)
    assert {e.id: e.counts_30d for e in store.endpoints()} == {
        eid: figures.counts for eid, figures in recount.items()
    }
