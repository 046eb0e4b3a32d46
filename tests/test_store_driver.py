"""DriverStatement: the same rows as SQLAlchemy's execute, in positional and named paramstyles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, insert, text

from monitor.store.driver import DriverStatement
from monitor.store.queries import SINCE

T0 = datetime(2026, 11, 1, tzinfo=UTC)
METADATA = MetaData()
EVENTS = Table(
    "events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("size", Integer, nullable=False),
    Column("weight", Integer, nullable=False, default=1),
)


@pytest.mark.parametrize("paramstyle", ["qmark", "named"])
def test_rows_written_and_read_match_sqlalchemy(paramstyle: str) -> None:
    engine = create_engine("sqlite://", paramstyle=paramstyle)
    METADATA.create_all(engine)
    write = DriverStatement(insert(EVENTS), ["at", "size", "weight"])
    # :since appears twice: positional paramstyles take it twice, named ones once.
    read = DriverStatement(
        text(
            "SELECT size FROM events WHERE at >= :since AND size >= :least"
            " UNION ALL SELECT -size FROM events WHERE at >= :since ORDER BY 1"
        ).bindparams(SINCE)
    )
    rows = [{"at": T0 + timedelta(minutes=n), "size": n, "weight": 2} for n in range(5)]
    with engine.begin() as connection:
        write.executemany(connection, rows)
        found = read.rows(connection, {"since": T0 + timedelta(minutes=2), "least": 3})
        stored = connection.execute(
            text("SELECT at, size FROM events WHERE at >= :since ORDER BY id").bindparams(SINCE),
            {"since": T0 + timedelta(minutes=3)},
        ).all()
    assert [row[0] for row in found] == [-4, -3, -2, 3, 4]
    assert [row[1] for row in stored] == [3, 4]  # datetimes were written as SQLAlchemy writes them


def test_statements_needing_sqlalchemy_defaults_are_refused() -> None:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    without_weight = DriverStatement(insert(EVENTS), ["at", "size"])
    with engine.begin() as connection, pytest.raises(ValueError, match="give every column"):
        without_weight.executemany(connection, [{"at": T0, "size": 1}])
