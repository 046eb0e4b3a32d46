"""Set-based SQL over the checks table: latency percentiles and outcome counts per endpoint."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

from monitor.stats import OutcomeCounts
from monitor.store.tables import from_db_text

CHUNK = 500
"""Endpoint ids per IN (...) list: far below SQLite's bound-parameter limit."""
SINCE = bindparam("since", type_=UTCDateTime())
"""Typed, so the bound datetime is formatted exactly as stored datetimes are compared."""


def latency_percentiles(
    session: Session, ids: Sequence[int], since: datetime
) -> dict[int, tuple[float | None, float | None]]:
    """Return nearest-rank p50 and p95 per endpoint over answered checks since `since`.

    Window functions rank the bounded 24-hour window inside the database; fewer than three
    samples give None, as stats.percentile does.
    """
    result: dict[int, tuple[float | None, float | None]] = {}
    for chunk in chunks(ids):
        rows = session.execute(
            text(
                "WITH ranked AS (SELECT endpoint_id, latency_ms,"
                " ROW_NUMBER() OVER (PARTITION BY endpoint_id ORDER BY latency_ms) AS rn,"
                " COUNT(*) OVER (PARTITION BY endpoint_id) AS n"
                " FROM checks WHERE checked_at >= :since AND latency_ms IS NOT NULL"
                f" AND http_status IS NOT NULL AND endpoint_id IN ({marks(chunk)}))"
                " SELECT endpoint_id, MAX(n),"
                " MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN latency_ms END),"
                " MAX(CASE WHEN rn = (n * 95 + 99) / 100 THEN latency_ms END)"
                " FROM ranked GROUP BY endpoint_id"
            ).bindparams(SINCE),
            {"since": since, **params(chunk)},
        )
        for endpoint_id, count, p50, p95 in rows:
            result[endpoint_id] = (p50, p95) if count >= 3 else (None, None)
    return result


def chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def marks(chunk: Sequence[int]) -> str:
    return ", ".join(f":id{index}" for index in range(len(chunk)))


def params(chunk: Sequence[int]) -> dict[str, int]:
    return {f"id{index}": value for index, value in enumerate(chunk)}


def outcome_counts(
    session: Session, ids: Sequence[int], since: datetime
) -> dict[int, tuple[OutcomeCounts, int]]:
    """Return per endpoint its outcome counts since `since` and its number of distinct offers.

    The offer count is over passes only (price, asset and payTo of the first valid offer): more
    than one means the price or the payee changed in the window.
    """
    result: dict[int, tuple[OutcomeCounts, int]] = {}
    for chunk in chunks(ids):
        rows = session.execute(
            text(
                "SELECT endpoint_id,"
                " SUM(CASE WHEN outcome = 'pass' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN outcome = 'soft_fail' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN outcome = 'hard_fail' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN outcome = 'inconclusive' THEN 1 ELSE 0 END),"
                " MIN(checked_at),"
                " COUNT(DISTINCT CASE WHEN outcome = 'pass' THEN offer_key END)"
                f" FROM checks WHERE checked_at >= :since AND endpoint_id IN ({marks(chunk)})"
                " GROUP BY endpoint_id"
            ).bindparams(SINCE),
            {"since": since, **params(chunk)},
        )
        for endpoint_id, passes, soft, hard, inconclusive, first, offer_keys in rows:
            counts = OutcomeCounts(passes, soft, hard, inconclusive, from_db_text(first))
            result[endpoint_id] = (counts, offer_keys)
    return result
