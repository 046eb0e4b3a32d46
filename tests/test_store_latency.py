"""Latency p50/p95 from the store equal a brute-force nearest-rank over the last 24 hours.

Random latencies with many ties, checks without an HTTP answer, rounds of several checks per
endpoint, windows that slide past old checks, rounds saved out of order, and an upgrade from
schema 6: every figure must equal stats.percentile over the answered checks of the window.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import ThresholdsConfig
from monitor.models import Challenge, CheckResult, EndpointSpec, Offer, Outcome
from monitor.stats import LATENCY_WINDOW, percentile
from monitor.store import Store
from monitor.store.nearest_rank import percentile_walks

T0 = datetime(2026, 11, 1, tzinfo=UTC)
THRESHOLDS = ThresholdsConfig()
INTERVAL = timedelta(minutes=10)
URLS = [f"https://seller{index}.example/pay" for index in range(4)]
Saved = list[tuple[int, CheckResult]]


def _brute_force(values: list[float]) -> tuple[float | None, float | None]:
    return percentile(values, 0.5), percentile(values, 0.95)


@pytest.mark.parametrize("seed", range(300))
def test_rank_walks_merge_removed_and_added_values_exactly(seed: int) -> None:
    rng = random.Random(seed)
    stored = sorted(float(rng.randint(1, 6)) for _ in range(rng.randint(0, 30)))  # many ties
    removed = sorted(rng.sample(stored, rng.randint(0, min(4, len(stored)))))
    added = sorted(float(rng.randint(0, 7)) for _ in range(rng.randint(0, 4)))
    remaining = list(stored)
    for value in removed:
        remaining.remove(value)
    expected = _brute_force(remaining + added)
    walks = percentile_walks(len(stored), removed, added)
    if walks is None:
        assert expected == (None, None)
        return
    found = []
    for walk in walks:
        offset, limit = walk.span()
        order = sorted(stored, reverse=walk.descending)
        found.append(walk.pick(order[offset : offset + limit]))  # what the index walk returns
    assert tuple(found) == expected


def _result(url: str, at: datetime, latency: float | None, answered: bool) -> CheckResult:
    if not answered:
        return CheckResult(url, "GET", False, at, Outcome.HARD_FAIL, None, latency, "timeout", None)
    offer = Offer(0, "exact", "eip155:8453", "1000", "0xa", "0xb", 60, None, valid=True)
    challenge = Challenge(2, "header", {}, (offer,), (), valid=True)
    return CheckResult(url, "GET", False, at, Outcome.PASS, 402, latency, None, challenge)


def _expected(saved: Saved, endpoint_id: int, since: datetime) -> tuple[float | None, float | None]:
    return _brute_force(
        [
            result.latency_ms
            for eid, result in saved
            if eid == endpoint_id
            and result.checked_at >= since
            and result.http_status is not None
            and result.latency_ms is not None
        ]
    )


def _random_round(rng: random.Random, ids: dict[str, int], at: datetime) -> Saved:
    batch = []
    for url in rng.sample(URLS, rng.randint(1, len(URLS))):
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            when = at - timedelta(minutes=rng.randint(0, 20))
            latency = None if rng.random() < 0.05 else float(rng.choice((5, 10, 10, 20, 35, 80)))
            batch.append((ids[url], _result(url, when, latency, answered=rng.random() > 0.15)))
    return batch


def _open(tmp_path: Path) -> tuple[Store, dict[str, int]]:
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    store.sync_config_endpoints([EndpointSpec(url, "GET") for url in URLS], T0)
    return store, {endpoint.spec.url: endpoint.id for endpoint in store.endpoints()}


def _check_stored_figures(store: Store, saved: Saved, batch: Saved) -> None:
    since = max(result.checked_at for _, result in batch) - LATENCY_WINDOW
    stored = {endpoint.id: endpoint for endpoint in store.endpoints()}
    for endpoint_id in {eid for eid, _ in batch}:
        figures = (stored[endpoint_id].p50_ms, stored[endpoint_id].p95_ms)
        assert figures == _expected(saved, endpoint_id, since)


@pytest.mark.parametrize("seed", range(3))
def test_saved_percentiles_equal_brute_force_as_the_window_slides(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    store, ids = _open(tmp_path)
    saved: Saved = []
    at = T0
    for _ in range(60):
        at += timedelta(minutes=rng.choice((7, 30, 61, 180)))  # slides past older checks
        # Now and then a round saved late (within the copies' lag) or far out of order.
        late = rng.choice((timedelta(0),) * 6 + (timedelta(minutes=1), timedelta(hours=30)))
        batch = _random_round(rng, ids, at - late)
        store.save_round(batch, THRESHOLDS, INTERVAL)
        saved += batch
        _check_stored_figures(store, saved, batch)
    for now in (at, at + timedelta(hours=3), at - timedelta(hours=40)):
        figures = store.window_figures(list(ids.values()), now)
        for endpoint_id, figure in figures.items():
            expected = _expected(saved, endpoint_id, now - LATENCY_WINDOW)
            assert (figure.p50_ms, figure.p95_ms) == expected


def test_a_schema_6_database_gets_its_window_back(tmp_path: Path) -> None:
    """Upgrading copies the last window's latencies; older windows rank from the full table."""
    rng = random.Random(7)
    store, ids = _open(tmp_path)
    saved: Saved = []
    for hour in range(48):
        batch = _random_round(rng, ids, T0 + timedelta(hours=hour))
        store.save_round(batch, THRESHOLDS, INTERVAL)
        saved += batch
    store.close()
    with sqlite3.connect(tmp_path / "monitor.db") as raw:  # back to what schema 6 stored
        raw.execute("DROP INDEX ix_checks_recent_latency")
        raw.execute("DROP INDEX ix_checks_recent_time")
        raw.execute("ALTER TABLE checks DROP COLUMN recent_latency_ms")
        raw.execute("DELETE FROM monitor_state WHERE key = 'latency_horizon'")
        raw.execute("UPDATE monitor_schema SET version = 6")
    upgraded = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    newest = max(result.checked_at for _, result in saved)
    for now in (newest, newest - timedelta(hours=12)):
        figures = upgraded.window_figures(list(ids.values()), now)
        for endpoint_id, figure in figures.items():
            expected = _expected(saved, endpoint_id, now - LATENCY_WINDOW)
            assert (figure.p50_ms, figure.p95_ms) == expected
    batch = _random_round(rng, ids, newest + timedelta(minutes=30))
    upgraded.save_round(batch, THRESHOLDS, INTERVAL)
    _check_stored_figures(upgraded, saved + batch, batch)
