"""Set-based reads for endpoint pages: recent checks, latency series, days, flips.

Each query covers many endpoints at once (window functions, one pass per chunk of ids) and is
bounded by time (24 h of raw checks, 30 days of rollups) or by rank (the last N rows).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, text

from monitor.models import Finding, Outcome, Severity, Status
from monitor.snapshot import CheckLine, DayFigures, FlipLine, LatencyPoint
from monitor.stats import percentile
from monitor.store.queries import SINCE, chunks, marks, params
from monitor.store.rollups import WINDOW_DAYS, day_start, rolled_until, window_start
from monitor.store.tables import from_db_text

RECENT_CHECKS = 20
FLIPS_PER_ENDPOINT = 50


@dataclass
class PageHistory:
    """What the store knows about one endpoint's history, for its page."""

    recent: list[CheckLine]
    findings: list[Finding]
    latency_24h: list[LatencyPoint]
    days: list[DayFigures]
    flips: list[FlipLine]


def page_histories(
    connection: Connection, ids: Sequence[int], now: datetime
) -> dict[int, PageHistory]:
    """Return every endpoint's page history, computed with a few set-based queries."""
    histories = {endpoint_id: PageHistory([], [], [], [], []) for endpoint_id in ids}
    for chunk in chunks(ids):
        _recent(connection, chunk, histories)
        _latency(connection, chunk, now, histories)
        _days(connection, chunk, now, histories)
        _flips(connection, chunk, histories)
    return histories


def _recent(connection: Connection, chunk: Sequence[int], out: dict[int, PageHistory]) -> None:
    rows = connection.execute(
        text(
            "SELECT endpoint_id, checked_at, outcome, status, http_status, latency_ms, error,"
            " findings_json, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY endpoint_id"
            " ORDER BY checked_at DESC, id DESC) AS rn FROM checks"
            f" WHERE endpoint_id IN ({marks(chunk)})) AS ranked WHERE rn <= :limit"
            " ORDER BY endpoint_id, rn"
        ),
        {"limit": RECENT_CHECKS, **params(chunk)},
    )
    for endpoint_id, at, outcome, status, http, latency, error, findings, rank in rows:
        checked_at = from_db_text(at)
        assert checked_at is not None
        history = out[endpoint_id]
        history.recent.append(
            CheckLine(
                checked_at,
                Outcome(outcome),
                Status(status) if status else Status.UNKNOWN,
                http,
                latency,
                error,
            )
        )
        if rank == 1 and findings:
            history.findings = [
                Finding(item["code"], Severity(item["severity"]), item["message"], item["path"])
                for item in json.loads(findings)
            ]


def _latency(
    connection: Connection, chunk: Sequence[int], now: datetime, out: dict[int, PageHistory]
) -> None:
    rows = connection.execute(
        text(
            "SELECT endpoint_id, checked_at, latency_ms, http_status FROM checks"
            f" WHERE checked_at >= :since AND endpoint_id IN ({marks(chunk)})"
            " ORDER BY endpoint_id, checked_at"
        ).bindparams(SINCE),
        {"since": now - timedelta(hours=24), **params(chunk)},
    )
    for endpoint_id, at, latency, http in rows:
        moment = from_db_text(at)
        assert moment is not None
        out[endpoint_id].latency_24h.append(
            LatencyPoint(moment, latency if http is not None else None)
        )


def _days(
    connection: Connection, chunk: Sequence[int], now: datetime, out: dict[int, PageHistory]
) -> None:
    """Fill the 30 days of the window: rolled-up days from rollups, the others from raw rows."""
    start = window_start(now)
    until = rolled_until(connection)
    found: dict[int, dict[date, DayFigures]] = defaultdict(dict)
    rollups = connection.execute(
        text(
            "SELECT endpoint_id, day, passes, soft_fails, hard_fails, inconclusive, p50_ms"
            " FROM daily_rollups WHERE day >= :first AND day < :until"
            f" AND endpoint_id IN ({marks(chunk)})"
        ),
        {
            "first": start.date().isoformat(),
            "until": (until or start.date()).isoformat(),
            **params(chunk),
        },
    )
    for endpoint_id, day, passes, soft, hard, inconclusive, p50 in rollups:
        when = date.fromisoformat(day)
        found[endpoint_id][when] = DayFigures(when, passes, soft, hard, inconclusive, p50)
    raw_since = max(start, day_start(until)) if until else start
    raw = connection.execute(
        text(
            "SELECT endpoint_id, checked_at, outcome, latency_ms, http_status FROM checks"
            f" WHERE checked_at >= :since AND endpoint_id IN ({marks(chunk)})"
        ).bindparams(SINCE),
        {"since": raw_since, **params(chunk)},
    )
    tallies: dict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    latencies: dict[tuple[int, date], list[float]] = defaultdict(list)
    index = {Outcome.PASS: 0, Outcome.SOFT_FAIL: 1, Outcome.HARD_FAIL: 2, Outcome.INCONCLUSIVE: 3}
    for endpoint_id, at, outcome, latency, http in raw:
        moment = from_db_text(at)
        assert moment is not None
        key = (endpoint_id, moment.date())
        tallies[key][index[Outcome(outcome)]] += 1
        if latency is not None and http is not None:
            latencies[key].append(latency)
    for (endpoint_id, day), (passes, soft, hard, inconclusive) in tallies.items():
        p50 = percentile(latencies[(endpoint_id, day)], 0.5)
        found[endpoint_id][day] = DayFigures(day, passes, soft, hard, inconclusive, p50)
    for endpoint_id in chunk:
        for offset in range(WINDOW_DAYS):
            day = start.date() + timedelta(days=offset)
            out[endpoint_id].days.append(
                found[endpoint_id].get(day, DayFigures(day, 0, 0, 0, 0, None))
            )


def _flips(connection: Connection, chunk: Sequence[int], out: dict[int, PageHistory]) -> None:
    rows = connection.execute(
        text(
            "SELECT endpoint_id, at, from_status, to_status, reason FROM (SELECT *,"
            " ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY at DESC, id DESC) AS rn"
            f" FROM flips WHERE endpoint_id IN ({marks(chunk)})) AS ranked WHERE rn <= :limit"
            " ORDER BY endpoint_id, rn"
        ),
        {"limit": FLIPS_PER_ENDPOINT, **params(chunk)},
    )
    for endpoint_id, at, from_status, to_status, reason in rows:
        moment = from_db_text(at)
        assert moment is not None
        out[endpoint_id].flips.append(
            FlipLine(moment, Status(from_status), Status(to_status), reason)
        )
