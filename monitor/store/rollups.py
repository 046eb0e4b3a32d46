"""Per-day rollups of raw checks, retention, and 30-day counts that read both.

A UTC day is rolled up once it has ended (plus a grace period for probes still in flight),
and from then on every 30-day figure reads that day from its rollup, never from raw rows. So
deleting raw rows, which retention only does for rolled-up days, cannot change any figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, text

from monitor.stats import OutcomeCounts
from monitor.store.queries import SINCE, chunks, marks, moment, params
from monitor.store.tables import from_db_text

ROLLUP_GRACE = timedelta(minutes=10)
"""A day is rolled up only this long after it ended: late results of its probes land first."""
WINDOW_DAYS = 30
_STATE_KEY = "rolled_until"


def day_start(day: date) -> datetime:
    """Return 00:00 UTC of a day."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def window_start(now: datetime) -> datetime:
    """Return the start of the 30-day window: 00:00 UTC of the 30th day back, today included."""
    return day_start(now.astimezone(UTC).date() - timedelta(days=WINDOW_DAYS - 1))


def rolled_until(connection: Connection) -> date | None:
    """Return the first day NOT rolled up yet (every earlier day is), None before any rollup."""
    value = connection.execute(
        text("SELECT value FROM monitor_state WHERE key = :key"), {"key": _STATE_KEY}
    ).scalar()
    return date.fromisoformat(value) if value else None


def _day_expression(connection: Connection) -> str:
    if connection.dialect.name == "sqlite":
        return "substr(checked_at, 1, 10)"
    return "to_char(checked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def roll_up(connection: Connection, now: datetime) -> int:
    """Roll up every ended day not rolled up yet; return how many rollup rows were written."""
    until = (now.astimezone(UTC) - ROLLUP_GRACE).date()
    start = rolled_until(connection)
    if start is None:
        first = from_db_text(
            connection.execute(text("SELECT MIN(checked_at) FROM checks")).scalar()
        )
        start = first.date() if first else until
    if start >= until:
        _remember(connection, max(start, until))
        return 0
    day = _day_expression(connection)
    answered = "latency_ms IS NOT NULL AND http_status IS NOT NULL"
    period = "checked_at >= :start AND checked_at < :end"
    written = connection.execute(
        text(
            f"INSERT INTO daily_rollups (endpoint_id, day, passes, soft_fails, hard_fails,"
            " inconclusive, first_check_at, latency_count, latency_sum_ms, p50_ms, p95_ms,"
            " le_100ms, le_300ms, le_1s, le_2s, le_5s, offer_key)"
            " SELECT agg.endpoint_id, agg.d, agg.p, agg.s, agg.h, agg.i, agg.f, agg.n, agg.total,"
            " pct.p50, pct.p95, agg.b1, agg.b2, agg.b3, agg.b4, agg.b5, agg.k FROM ("
            f"  SELECT endpoint_id, {day} AS d,"
            "   SUM(CASE WHEN outcome = 'pass' THEN 1 ELSE 0 END) AS p,"
            "   SUM(CASE WHEN outcome = 'soft_fail' THEN 1 ELSE 0 END) AS s,"
            "   SUM(CASE WHEN outcome = 'hard_fail' THEN 1 ELSE 0 END) AS h,"
            "   SUM(CASE WHEN outcome = 'inconclusive' THEN 1 ELSE 0 END) AS i,"
            "   MIN(checked_at) AS f,"
            f"  SUM(CASE WHEN {answered} THEN 1 ELSE 0 END) AS n,"
            f"  COALESCE(SUM(CASE WHEN {answered} THEN latency_ms END), 0) AS total,"
            f"  SUM(CASE WHEN {answered} AND latency_ms <= 100 THEN 1 ELSE 0 END) AS b1,"
            f"  SUM(CASE WHEN {answered} AND latency_ms <= 300 THEN 1 ELSE 0 END) AS b2,"
            f"  SUM(CASE WHEN {answered} AND latency_ms <= 1000 THEN 1 ELSE 0 END) AS b3,"
            f"  SUM(CASE WHEN {answered} AND latency_ms <= 2000 THEN 1 ELSE 0 END) AS b4,"
            f"  SUM(CASE WHEN {answered} AND latency_ms <= 5000 THEN 1 ELSE 0 END) AS b5,"
            "   CASE WHEN COUNT(DISTINCT CASE WHEN outcome = 'pass' THEN offer_key END) > 1"
            "    THEN '*' ELSE MAX(CASE WHEN outcome = 'pass' THEN offer_key END) END AS k"
            f"  FROM checks WHERE {period} GROUP BY endpoint_id, {day}"
            " ) AS agg LEFT JOIN ("
            "  SELECT endpoint_id, d,"
            "   MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN latency_ms END) AS p50,"
            "   MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN latency_ms END) AS p95"
            f"  FROM (SELECT endpoint_id, {day} AS d, latency_ms,"
            f"   ROW_NUMBER() OVER (PARTITION BY endpoint_id, {day} ORDER BY latency_ms) AS rn,"
            f"   COUNT(*) OVER (PARTITION BY endpoint_id, {day}) AS n"
            f"   FROM checks WHERE {period} AND {answered}) AS ranked"
            "  WHERE n >= 3 GROUP BY endpoint_id, d"
            " ) AS pct ON pct.endpoint_id = agg.endpoint_id AND pct.d = agg.d"
        ).bindparams(moment("start"), moment("end")),
        {"start": day_start(start), "end": day_start(until)},
    )
    _remember(connection, until)
    return int(written.rowcount or 0)


def delete_raw(connection: Connection, now: datetime, keep: timedelta) -> int:
    """Delete raw checks older than `keep` that are already rolled up; return how many."""
    until = rolled_until(connection)
    if until is None:
        return 0
    cutoff = min(now - keep, day_start(until))
    deleted = connection.execute(
        text("DELETE FROM checks WHERE checked_at < :since").bindparams(SINCE),
        {"since": cutoff},
    )
    return int(deleted.rowcount or 0)


def window_counts(
    connection: Connection, ids: Sequence[int], now: datetime
) -> dict[int, tuple[OutcomeCounts, bool, str | None]]:
    """Return per endpoint its 30-day counts, whether its offer stayed the same, and the offer.

    The offer is the one of its passes when there was exactly one (else any, or None).

    Rolled-up days come from `daily_rollups`, the rest from raw checks: the two never overlap.
    """
    start = window_start(now)
    until = rolled_until(connection)
    raw_since = max(start, day_start(until)) if until else start
    result: dict[int, tuple[OutcomeCounts, bool, str | None]] = {}
    for chunk in chunks(ids):
        rows = connection.execute(
            text(
                "SELECT endpoint_id, SUM(p), SUM(s), SUM(h), SUM(i), MIN(f),"
                " COUNT(DISTINCT k), MAX(CASE WHEN k = '*' THEN 1 ELSE 0 END),"
                " MAX(CASE WHEN k <> '*' THEN k END) FROM ("
                "  SELECT endpoint_id, passes AS p, soft_fails AS s, hard_fails AS h,"
                "   inconclusive AS i, first_check_at AS f, offer_key AS k FROM daily_rollups"
                "  WHERE day >= :first_day AND day < :until_day"
                f"  AND endpoint_id IN ({marks(chunk)})"
                "  UNION ALL"
                "  SELECT endpoint_id, CASE WHEN outcome = 'pass' THEN 1 ELSE 0 END,"
                "   CASE WHEN outcome = 'soft_fail' THEN 1 ELSE 0 END,"
                "   CASE WHEN outcome = 'hard_fail' THEN 1 ELSE 0 END,"
                "   CASE WHEN outcome = 'inconclusive' THEN 1 ELSE 0 END, checked_at,"
                "   CASE WHEN outcome = 'pass' THEN offer_key END FROM checks"
                f"  WHERE checked_at >= :since AND endpoint_id IN ({marks(chunk)})"
                " ) AS window_rows GROUP BY endpoint_id"
            ).bindparams(SINCE),
            {
                "first_day": start.date().isoformat(),
                "until_day": until.isoformat() if until else start.date().isoformat(),
                "since": raw_since,
                **params(chunk),
            },
        )
        for endpoint_id, passes, soft, hard, inconclusive, first, keys, changed, key in rows:
            counts = OutcomeCounts(passes, soft, hard, inconclusive, from_db_text(first))
            result[endpoint_id] = (counts, keys <= 1 and not changed, key)
    return result


def _remember(connection: Connection, until: date) -> None:
    connection.execute(text("DELETE FROM monitor_state WHERE key = :key"), {"key": _STATE_KEY})
    connection.execute(
        text("INSERT INTO monitor_state (key, value) VALUES (:key, :value)"),
        {"key": _STATE_KEY, "value": until.isoformat()},
    )
