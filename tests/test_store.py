"""Store on a real SQLite file: schema, reopen, one transaction per round, SQL aggregates."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import IntegrityError

from monitor.config import ThresholdsConfig
from monitor.models import (
    Challenge,
    CheckResult,
    EndpointSpec,
    Offer,
    Outcome,
    Status,
    StoreError,
)
from monitor.schedule import next_check_at
from monitor.stats import percentile
from monitor.store import SCHEMA_VERSION, Store
from monitor.store import tables as store_tables

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
INTERVAL = timedelta(minutes=5)
THRESHOLDS = ThresholdsConfig()
A = "https://a.example/pay"
B = "https://b.example/pay"


def _offer(amount: str = "10000", pay_to: str = "0xabc") -> Offer:
    return Offer(0, "exact", "eip155:8453", amount, "0xasset", pay_to, 60, None, valid=True)


def _result(
    url: str,
    at: datetime,
    outcome: Outcome,
    latency: float | None = 100.0,
    status: int | None = 402,
    offer: Offer | None = None,
) -> CheckResult:
    challenge = None
    if outcome is Outcome.PASS:
        challenge = Challenge(
            version=2,
            source="header",
            document={},
            offers=(offer or _offer(),),
            findings=(),
            valid=True,
            input_schema={"method": "POST", "bodyFields": {"q": {"required": True}}},
        )
    return CheckResult(url, "GET", False, at, outcome, status, latency, None, challenge)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/nested/dir/monitor.db"


@pytest.fixture
def store(db_url: str) -> Store:
    opened = Store.open(db_url)
    opened.sync_config_endpoints(
        [EndpointSpec(A, "GET", title="A"), EndpointSpec(B, None, title="B")], T0
    )
    return opened


def _ids(store: Store) -> dict[str, int]:
    return {endpoint.spec.url: endpoint.id for endpoint in store.endpoints()}


def test_open_creates_the_file_with_wal_and_schema_version(db_url: str, tmp_path: Path) -> None:
    Store.open(db_url).close()
    path = tmp_path / "nested/dir/monitor.db"
    assert path.exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM monitor_schema").fetchone()[0] == SCHEMA_VERSION
        tables = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert {"endpoints", "checks", "flips", "monitor_schema"} <= tables


def test_sync_config_and_reopen_keeps_everything(store: Store, db_url: str) -> None:
    ids = _ids(store)
    store.save_round([(ids[A], _result(A, T0, Outcome.PASS))], THRESHOLDS, INTERVAL)
    store.close()

    reopened = Store.open(db_url)
    endpoints = {endpoint.spec.url: endpoint for endpoint in reopened.endpoints()}
    assert endpoints[A].state.status is Status.HEALTHY
    assert endpoints[A].state.last_healthy_at == T0
    assert endpoints[A].next_check_at == next_check_at(endpoints[A].slug, INTERVAL, T0)
    assert endpoints[A].first_seen_at == T0
    # The request description learned from the challenge becomes the endpoint's input schema.
    assert endpoints[A].spec.input_schema == {
        "method": "POST",
        "bodyFields": {"q": {"required": True}},
    }
    assert endpoints[B].state.status is Status.UNKNOWN
    assert reopened.count_checks() == 1

    # Removing an endpoint from config keeps it and its history.
    reopened.sync_config_endpoints([EndpointSpec(B, None, title="B renamed")], T0)
    endpoints = {endpoint.spec.url: endpoint for endpoint in reopened.endpoints()}
    assert endpoints[A].in_config is False
    assert endpoints[B].spec.title == "B renamed"
    assert reopened.count_checks() == 1
    assert reopened.endpoints([A])[0].spec.url == A


def test_a_round_is_one_transaction(store: Store) -> None:
    ids = _ids(store)
    engine = store._engine
    commits: list[int] = []

    def on_commit(_conn: Connection) -> None:
        commits.append(1)

    event.listen(engine, "commit", on_commit)
    store.save_round(
        [
            (ids[A], _result(A, T0, Outcome.PASS)),
            (ids[B], _result(B, T0, Outcome.HARD_FAIL, None, None)),
        ],
        THRESHOLDS,
        INTERVAL,
    )
    assert len(commits) == 1


def test_a_check_the_database_refuses_does_not_cost_the_round(store: Store) -> None:
    ids = _ids(store)
    bad = replace(_result(B, T0, Outcome.PASS), error="lone \ud800 surrogate")  # not UTF-8
    flips = store.save_round(
        [(ids[A], _result(A, T0, Outcome.PASS)), (ids[B], bad)], THRESHOLDS, INTERVAL
    )
    assert store.count_checks() == 2
    a, b = store.endpoints([A, B])
    assert a.state.status is Status.HEALTHY
    assert [f.endpoint_id for f in flips] == [ids[A]]
    assert b.last_error == "monitor error: the check could not be stored (UnicodeEncodeError)"
    assert b.state.status is Status.UNKNOWN  # the stand-in is inconclusive
    assert b.next_check_at is not None
    assert b.next_check_at > T0  # rescheduled as usual


def test_a_check_of_an_unknown_endpoint_does_not_cost_the_round(store: Store) -> None:
    ids = _ids(store)
    store.save_round(
        [(ids[A], _result(A, T0, Outcome.PASS)), (9999, _result(B, T0, Outcome.PASS))],
        THRESHOLDS,
        INTERVAL,
    )
    assert store.count_checks() == 1
    assert store.endpoints([A])[0].state.status is Status.HEALTHY


def test_a_round_nothing_of_which_can_be_stored_raises_and_stores_nothing(store: Store) -> None:
    with pytest.raises(IntegrityError):  # foreign keys are enforced
        store.save_round(
            [(9998, _result(A, T0, Outcome.PASS)), (9999, _result(B, T0, Outcome.PASS))],
            THRESHOLDS,
            INTERVAL,
        )
    assert store.count_checks() == 0
    assert store.endpoints([A])[0].state.status is Status.UNKNOWN


def test_state_flips_and_recent_checks(store: Store) -> None:
    a = _ids(store)[A]
    sequence = [Outcome.PASS, Outcome.HARD_FAIL, Outcome.HARD_FAIL, Outcome.HARD_FAIL, Outcome.PASS]
    all_flips = []
    for minute, outcome in enumerate(sequence):
        status = 402 if outcome is Outcome.PASS else 500
        result = _result(A, T0 + timedelta(minutes=minute), outcome, status=status)
        all_flips += store.save_round([(a, result)], THRESHOLDS, INTERVAL)
    transitions = [(f.flip.from_status, f.flip.to_status) for f in all_flips]
    assert transitions == [
        (Status.UNKNOWN, Status.HEALTHY),
        (Status.HEALTHY, Status.DEGRADED),
        (Status.DEGRADED, Status.DOWN),
        (Status.DOWN, Status.DEGRADED),
    ]
    history = store.page_histories([a], T0 + timedelta(minutes=5))[a]
    stored = [(f.from_status, f.to_status) for f in reversed(history.flips)]  # newest first
    assert stored == transitions
    endpoint = store.endpoints([A])[0]
    assert endpoint.state.consecutive_failures == 0
    assert endpoint.state.recovering is True
    recent = history.recent[:3]
    assert [check.status for check in recent] == [Status.DEGRADED, Status.DOWN, Status.DEGRADED]
    assert [check.checked_at for check in recent] == [
        T0 + timedelta(minutes=4),
        T0 + timedelta(minutes=3),
        T0 + timedelta(minutes=2),
    ]
    assert [check.outcome for check in recent] == [
        Outcome.PASS,
        Outcome.HARD_FAIL,
        Outcome.HARD_FAIL,
    ]


def test_sql_percentiles_match_the_core_definition(store: Store) -> None:
    a = _ids(store)[A]
    latencies = [120.0, 80.0, 300.0, 95.0, 101.0, 2000.0, 150.0]
    rounds = [
        (a, _result(A, T0 + timedelta(minutes=i), Outcome.PASS, latency))
        for i, latency in enumerate(latencies)
    ]
    # Timeouts (no HTTP answer) and checks older than 24 h are outside the latency window.
    rounds.append((a, _result(A, T0 + timedelta(minutes=30), Outcome.HARD_FAIL, 9999.0, None)))
    rounds.append((a, _result(A, T0 - timedelta(hours=25), Outcome.PASS, 5.0)))
    store.save_round(rounds, THRESHOLDS, INTERVAL)
    figures = store.window_figures([a], T0 + timedelta(hours=1))[a]
    assert figures.p50_ms == percentile(latencies, 0.5) == 120.0
    assert figures.p95_ms == percentile(latencies, 0.95) == 2000.0


def test_percentiles_need_three_samples(store: Store) -> None:
    a = _ids(store)[A]
    store.save_round(
        [(a, _result(A, T0 + timedelta(minutes=i), Outcome.PASS, 50.0)) for i in range(2)],
        THRESHOLDS,
        INTERVAL,
    )
    figures = store.window_figures([a], T0 + timedelta(minutes=5))[a]
    assert figures.p50_ms is None
    assert figures.p95_ms is None


def test_uptime_window_is_a_real_30_days(store: Store) -> None:
    a = _ids(store)[A]
    now = T0 + timedelta(days=40)
    rows = [
        (a, _result(A, now - timedelta(days=31), Outcome.HARD_FAIL, status=500)),  # outside
        (a, _result(A, now - timedelta(days=29), Outcome.PASS)),
        (a, _result(A, now - timedelta(days=10), Outcome.SOFT_FAIL, status=404)),
        (a, _result(A, now - timedelta(days=2), Outcome.INCONCLUSIVE, status=429)),
        (a, _result(A, now - timedelta(days=1), Outcome.PASS)),
    ]
    store.save_round(rows, THRESHOLDS, INTERVAL)
    figures = store.window_figures([a], now)[a]
    assert figures.counts.passes == 2
    assert figures.counts.soft_fails == 1
    assert figures.counts.hard_fails == 0
    assert figures.counts.inconclusive == 1
    assert figures.counts.uptime == pytest.approx(2 / 3)
    assert figures.counts.first_check_at == now - timedelta(days=29)


def test_offer_stability_counts_distinct_price_and_payee(store: Store) -> None:
    a, b = _ids(store)[A], _ids(store)[B]
    store.save_round(
        [
            (a, _result(A, T0, Outcome.PASS, offer=_offer("10000"))),
            (a, _result(A, T0 + timedelta(minutes=1), Outcome.PASS, offer=_offer("10000"))),
            (b, _result(B, T0, Outcome.PASS, offer=_offer("10000"))),
            (b, _result(B, T0 + timedelta(minutes=1), Outcome.PASS, offer=_offer("20000"))),
        ],
        THRESHOLDS,
        INTERVAL,
    )
    figures = store.window_figures([a, b], T0 + timedelta(minutes=2))
    assert figures[a].offers_stable is True
    assert figures[b].offers_stable is False


def test_newer_schema_is_refused_with_instructions(db_url: str) -> None:
    Store.open(db_url).close()
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE monitor_schema SET version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer than this monitor understands"):
        Store.open(db_url)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE something (x INTEGER)")
    with pytest.raises(StoreError, match="not an x402 monitor database"):
        Store.open(f"sqlite:///{path}")


def test_older_schema_is_upgraded_in_place(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(db_url)
    store.sync_config_endpoints([EndpointSpec(A, "GET")], T0)
    store.close()

    def add_note_column(connection: Connection) -> None:
        connection.execute(text("ALTER TABLE endpoints ADD COLUMN note TEXT"))

    monkeypatch.setattr("monitor.store.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(store_tables.MIGRATIONS, SCHEMA_VERSION + 1, add_note_column)
    upgraded = Store.open(db_url)
    assert [endpoint.spec.url for endpoint in upgraded.endpoints()] == [A]
    upgraded.close()
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as raw:
        assert raw.execute("SELECT version FROM monitor_schema").fetchone()[0] == SCHEMA_VERSION + 1
        columns = {row[1] for row in raw.execute("PRAGMA table_info(endpoints)")}
    assert "note" in columns


def test_schema_1_database_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    """A database written by the first release (schema 1) opens, upgrades and keeps its rows."""
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as raw:
        raw.executescript((Path(__file__).parent / "fixtures" / "schema-v1.sql").read_text())
        raw.execute(
            "INSERT INTO endpoints (id, slug, url, method, has_body, source, in_config,"
            " first_seen_at, status, consecutive_failures, consecutive_hard, consecutive_passes,"
            " conclusive_checks, non_hard_checks, recovering, last_outcome, last_healthy_at)"
            " VALUES (1, 'a-example-pay-767c099e', ?, 'GET', 0, 'config', 1,"
            " '2026-11-01 12:00:00.000000', 'healthy', 0, 0, 1, 1, 1, 0, 'pass',"
            " '2026-11-01 12:00:00.000000')",
            (A,),
        )
        raw.execute(
            "INSERT INTO checks (endpoint_id, checked_at, outcome, method, method_guessed,"
            " http_status, latency_ms) VALUES (1, '2026-11-01 12:00:00.000000', 'pass', 'GET',"
            " 0, 402, 100.0)"
        )
    url = f"sqlite:///{path}"
    upgraded = Store.open(url)
    endpoint = upgraded.endpoints([A])[0]
    assert endpoint.state.status is Status.HEALTHY
    assert endpoint.state.last_healthy_at == T0
    assert endpoint.asset_verdict is None
    assert endpoint.pass_asset_verified is False
    assert upgraded.count_checks() == 1
    upgraded.save_round([(1, _result(A, T0 + INTERVAL, Outcome.PASS))], THRESHOLDS, INTERVAL)
    assert upgraded.endpoints([A])[0].asset_verdict is not None
    assert upgraded.count_checks() == 2
    upgraded.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version FROM monitor_schema").fetchone()[0] == SCHEMA_VERSION
