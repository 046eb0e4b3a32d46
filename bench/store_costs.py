"""Store costs of the probe benchmark: save_round per 1,000 results, with a day of history."""

from __future__ import annotations

import contextlib
import resource
import sqlite3
import statistics
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from throughput_report import Report

from monitor.assess import assess
from monitor.config import Config
from monitor.models import CheckResult, ProbeFacts
from monitor.service import save
from monitor.store import Store, StoredEndpoint

PER = 1000
"""Store and assess costs are reported per this many results."""
HISTORY_STEP = timedelta(minutes=1)


def save_ms(
    store: Store, checks: Sequence[tuple[StoredEndpoint, CheckResult]], config: Config
) -> float:
    """Return the median milliseconds of `save` per PER results, over chunks of PER."""
    times = []
    for start in range(0, len(checks), PER):
        chunk = checks[start : start + PER]
        started = time.perf_counter()
        save(store, chunk, config)
        times.append((time.perf_counter() - started) * PER / len(chunk))
    return statistics.median(times) * 1000


def store_costs(
    store: Store,
    checks: Sequence[tuple[StoredEndpoint, CheckResult]],
    facts: Sequence[ProbeFacts],
    config: Config,
    size: int,
    report: Report,
) -> None:
    """Print what assess and save_round cost per PER results on their own (no probing)."""
    if not checks or not facts:
        return
    started = time.perf_counter()
    for fact in facts:
        assess(fact)
    assess_ms = (time.perf_counter() - started) * 1000 * PER / len(facts)
    ms = save_ms(store, checks, config)
    report.line(
        f"at {size:,}: assess {assess_ms:.0f} ms, save_round {ms:.0f} ms per {PER:,} results "
        f"(store alone: {PER / ms * 1000:,.0f} results/s; the DB holds a few checks each)"
    )


def history_cost(
    database: Path,
    checks: Sequence[tuple[StoredEndpoint, CheckResult]],
    config: Config,
    history: int,
    report: Report,
) -> None:
    """Give every endpoint `history` more checks (one per HISTORY_STEP back), time save_round.

    Copies each endpoint's latest check row back in time with one SQL statement, so the
    checks table looks like a day of probing at a 60 s interval, which the 24-hour latency
    percentiles and the 30-day counts of every save_round read.
    """
    before = database_mb(database)
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(database)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(checks)") if row[1] != "id"]
        step = int(HISTORY_STEP.total_seconds())
        moved = (
            f"strftime('%Y-%m-%d %H:%M:%f000', c.checked_at, '-' || (k.n * {step}) || ' seconds')"
        )
        values = ", ".join(moved if column == "checked_at" else f"c.{column}" for column in columns)
        db.execute(
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)"
            f" INSERT INTO checks ({', '.join(columns)}) SELECT {values} FROM checks AS c, k"
            " WHERE c.id IN (SELECT MAX(id) FROM checks GROUP BY endpoint_id)",
            (history,),
        )
        added = db.total_changes
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filled = time.perf_counter() - started
    store = Store.open(f"sqlite:///{database}")
    try:
        ms = save_ms(store, checks[:PER], config)
    finally:
        store.close()
    per_check = (database_mb(database) - before) * 1e6 / max(added, 1)
    report.line(
        f"with {history:,} checks per endpoint in the DB ({added:,} rows added in {filled:.0f} s):"
        f" save_round {ms:,.0f} ms per {PER:,} results (store alone: {PER / ms * 1000:,.0f}/s)"
    )
    daily = 20_000 * 1440
    report.line(
        f"size per stored check: {per_check:.0f} B, so 20,000 endpoints at 60 s add "
        f"{daily * per_check / 1e9:.1f} GB of raw checks a day"
    )


def database_mb(database: Path) -> float:
    """Return the size of the SQLite database with its WAL and shared-memory files, in MB."""
    return sum(p.stat().st_size for p in database.parent.glob(f"{database.name}*")) / 1e6


def count_checks(database: Path) -> int:
    store = Store.open(f"sqlite:///{database}")
    try:
        return store.count_checks()
    finally:
        store.close()


def peak_rss_mb() -> float:
    """Return the benchmark process's peak resident set size (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
