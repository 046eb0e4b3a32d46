"""Set-based SQL over the checks table: latency percentiles and outcome counts per endpoint."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import BindParameter, bindparam, text
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

CHUNK = 500
"""Endpoint ids per IN (...) list: far below SQLite's bound-parameter limit."""


def moment(name: str) -> BindParameter[datetime]:
    """Return a datetime bind parameter typed like the columns, so comparisons are exact."""
    return bindparam(name, type_=UTCDateTime())


SINCE = moment("since")


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
