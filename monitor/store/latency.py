"""Nearest-rank latency percentiles of the last 24 hours, ranked inside the database.

An answered check keeps a copy of its latency in `checks.recent_latency_ms` while it is young,
and two partial indexes hold only those copies, so about one window per endpoint however long
raw checks are retained: `ix_checks_recent_latency` in latency order, `ix_checks_recent_time`
in time order. Per endpoint, a percentile is one COUNT of its copies and one `ORDER BY
recent_latency_ms LIMIT .. OFFSET rank - 1` walk of the latency index (p95 walks down from the
largest): no sort, no window function, and only a few values per endpoint reach Python.

The walk covers every young copy, with no per-entry time test: the few copies older than the
window (from the last EXPIRY_LAG + EXPIRY_STEP before it) are read by time and left out, and
the round's own latencies, not inserted yet, are merged in, both exactly (store.nearest_rank).
So each check can be written once, with the status it caused.

Saving a round moves the horizon to its window start less EXPIRY_LAG, rounded down to
EXPIRY_STEP, and clears its endpoints' copies older than that. Every answered check at or after
the horizon has its copy, so a window starting there is ranked from the young copies; one
starting earlier (a round saved long out of order, a question about the past) is ranked from
the whole checks table instead, as exactly but with a sort per endpoint.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import Connection, text

from monitor.stats import LATENCY_WINDOW
from monitor.store.driver import DriverStatement
from monitor.store.nearest_rank import RankWalk, percentile_walks
from monitor.store.queries import SINCE, chunks, marks, params

HORIZON_KEY = "latency_horizon"
"""monitor_state key of the horizon (ISO 8601); absent while no copy was ever cleared."""
EXPIRY_LAG = timedelta(minutes=2)
"""Copies outlive the window by this much: a round saved that late is still ranked from them."""
EXPIRY_STEP = timedelta(minutes=1)
"""The horizon moves in steps, so it is written at most once a step."""
WALK_CHUNK = 25
"""Endpoints per ranking statement (50 compound terms): SQLite prepares a statement on each new
connection, and a 300-term one took 20 ms to prepare; this size runs as fast and prepares in 2."""

Percentiles = dict[int, tuple[float | None, float | None]]


@dataclass(frozen=True)
class _Source:
    """Where latencies are walked: the young copies, or the whole table (a window in time)."""

    value: str
    answered: str
    window: str
    """The condition that keeps only the window, for sources holding older rows too."""


_YOUNG = _Source("recent_latency_ms", "recent_latency_ms IS NOT NULL", "")
_ALL_CHECKS = _Source(
    "latency_ms", "latency_ms IS NOT NULL AND http_status IS NOT NULL", " AND checked_at >= :since"
)


def recent_latency(http_status: int | None, latency_ms: float | None) -> float | None:
    """Return what a new check stores in recent_latency_ms: its latency if it got an answer."""
    return latency_ms if http_status is not None else None


def horizon_of(latest: datetime) -> datetime:
    """Return the horizon of a round whose newest check is at `latest`."""
    cutoff = (latest - LATENCY_WINDOW - EXPIRY_LAG).timestamp()
    step = EXPIRY_STEP.total_seconds()
    return datetime.fromtimestamp(cutoff // step * step, UTC)


def latency_horizon(connection: Connection) -> datetime | None:
    """Return the horizon; None means every answered check still has its copy."""
    value = connection.execute(_READ_HORIZON, {"key": HORIZON_KEY}).scalar()
    return datetime.fromisoformat(value) if value else None


def advance_horizon(connection: Connection, latest: datetime) -> datetime:
    """Move the horizon forward to the one of `latest` (never back); return it."""
    stored = latency_horizon(connection)
    horizon = horizon_of(latest)
    if stored is not None and stored >= horizon:
        return stored
    _remember_horizon(connection, horizon)
    return horizon


def clear_old_copies(connection: Connection, ids: Sequence[int], horizon: datetime) -> None:
    """Clear the copies of endpoints `ids` older than the horizon (they leave the indexes)."""
    for chunk in chunks(ids):
        _clear(len(chunk)).executemany(connection, [{"since": horizon, **params(chunk)}])


def backfill_recent_latency(connection: Connection, newest: datetime) -> None:
    """Give the answered checks of the window before `newest` their copy; set the horizon.

    For a database whose checks predate recent_latency_ms (schema 7's migration).
    """
    horizon = horizon_of(newest)
    connection.execute(
        text(
            "UPDATE checks SET recent_latency_ms = latency_ms WHERE checked_at >= :since"
            " AND latency_ms IS NOT NULL AND http_status IS NOT NULL"
        ).bindparams(SINCE),
        {"since": horizon},
    )
    _remember_horizon(connection, horizon)


def latency_percentiles(
    connection: Connection,
    ids: Sequence[int],
    since: datetime,
    horizon: datetime | None,
    pending: Mapping[int, Sequence[float]] | None = None,
) -> Percentiles:
    """Return nearest-rank p50 and p95 per endpoint over answered checks since `since`.

    `pending` holds, per endpoint, the latencies of answered checks since `since` that are
    not stored yet: they count as if they were. Fewer than three samples give None, as
    stats.percentile does; endpoints without any sample are absent. `horizon` is
    latency_horizon's: a window starting before it is ranked from the whole table.
    """
    source = _ALL_CHECKS if horizon is not None and since < horizon else _YOUNG
    pending = pending or {}
    stored: dict[int, int] = {}
    older: dict[int, list[float]] = defaultdict(list)
    for chunk in chunks(ids):
        values = {"since": since, **params(chunk)}
        stored.update(
            (row[0], row[1]) for row in _count(source, len(chunk)).rows(connection, values)
        )
        if source is _YOUNG:
            for endpoint_id, latency in _older_copies(len(chunk)).rows(connection, values):
                older[endpoint_id].append(latency)
    result: Percentiles = {}
    walks: list[tuple[int, RankWalk, RankWalk]] = []
    for endpoint_id in ids:
        added = sorted(pending.get(endpoint_id, ()))
        removed = sorted(older.get(endpoint_id, ()))
        if stored.get(endpoint_id, 0) - len(removed) + len(added) > 0:
            result[endpoint_id] = (None, None)
        pair = percentile_walks(stored.get(endpoint_id, 0), removed, added)
        if pair is not None:
            walks.append((endpoint_id, *pair))
    for part in chunks(walks, WALK_CHUNK):
        result.update(_walk(connection, source, since, part))
    return result


def _walk(
    connection: Connection,
    source: _Source,
    since: datetime,
    part: Sequence[tuple[int, RankWalk, RankWalk]],
) -> Percentiles:
    """Rank a part of the endpoints with one compound statement (two index walks each).

    LIMIT and OFFSET cannot refer to an outer query, so each walk is its own term.
    """
    values: dict[str, object] = {"since": since}
    for index, (endpoint_id, up, down) in enumerate(part):
        values[f"e{index}"] = endpoint_id
        values[f"uo{index}"], values[f"ul{index}"] = up.span()
        values[f"do{index}"], values[f"dl{index}"] = down.span()
    fetched: dict[int, list[float]] = defaultdict(list)
    for term, value in _walks(source, len(part)).rows(connection, values):
        fetched[term].append(value)
    return {
        endpoint_id: (up.pick(fetched[2 * index]), down.pick(fetched[2 * index + 1]))
        for index, (endpoint_id, up, down) in enumerate(part)
    }


_READ_HORIZON = text("SELECT value FROM monitor_state WHERE key = :key")


def _remember_horizon(connection: Connection, horizon: datetime) -> None:
    connection.execute(text("DELETE FROM monitor_state WHERE key = :key"), {"key": HORIZON_KEY})
    connection.execute(
        text("INSERT INTO monitor_state (key, value) VALUES (:key, :value)"),
        {"key": HORIZON_KEY, "value": horizon.isoformat()},
    )


# Statements are built per chunk size and source, and kept: a round uses two or three sizes.


def _statement(sql: str) -> DriverStatement:
    clause = text(sql)
    return DriverStatement(clause.bindparams(SINCE) if ":since" in sql else clause)


@lru_cache(maxsize=8)
def _clear(size: int) -> DriverStatement:
    return _statement(
        "UPDATE checks SET recent_latency_ms = NULL WHERE recent_latency_ms IS NOT NULL"
        f" AND endpoint_id IN ({marks(range(size))}) AND checked_at < :since"
    )


@lru_cache(maxsize=16)
def _count(source: _Source, size: int) -> DriverStatement:
    # One COUNT subquery per endpoint: SQLite counts an index range faster this way than
    # through GROUP BY over an IN list.
    return _statement(
        "SELECT endpoints.id, (SELECT COUNT(*) FROM checks"
        f" WHERE {source.answered} AND checks.endpoint_id = endpoints.id{source.window})"
        f" FROM endpoints WHERE endpoints.id IN ({marks(range(size))})"
    )


@lru_cache(maxsize=8)
def _older_copies(size: int) -> DriverStatement:
    """Return the young copies older than the window: rows (endpoint_id, latency)."""
    return _statement(
        "SELECT endpoint_id, recent_latency_ms FROM checks WHERE recent_latency_ms IS NOT NULL"
        f" AND endpoint_id IN ({marks(range(size))}) AND checked_at < :since"
    )


@lru_cache(maxsize=16)
def _walks(source: _Source, size: int) -> DriverStatement:
    """Return the compound statement of `size` endpoints' walks: rows (term, value).

    Term 2i walks endpoint i up from its smallest value, term 2i + 1 down from its largest.
    """
    terms = []
    for index in range(size):
        for term, direction, key in ((2 * index, "", "u"), (2 * index + 1, " DESC", "d")):
            terms.append(
                f"SELECT * FROM (SELECT {term} AS term, {source.value} AS value FROM checks"
                f" WHERE {source.answered} AND endpoint_id = :e{index}{source.window}"
                f" ORDER BY {source.value}{direction}"
                f" LIMIT :{key}l{index} OFFSET :{key}o{index}) AS walk{term}"
            )
    return _statement(" UNION ALL ".join(terms))
