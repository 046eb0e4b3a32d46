"""Statements of a round's hot path, compiled once per dialect and run through the DBAPI.

SQLAlchemy's execute() rebuilds every parameter set through generic machinery that costs more
than SQLite's own work for the thousands of rows of a round. A DriverStatement compiles its
statement once per dialect, converts each parameter with the bind processor SQLAlchemy itself
would apply to it (the column's or bind parameter's type, for that dialect), and hands the
rows to the DBAPI in the dialect's paramstyle with Connection.exec_driver_sql. Only for
statements whose every column is given: defaults computed by SQLAlchemy are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """Each parameter's name once, with its bind processor in `processors`."""
    processors: tuple[Callable[[Any], Any] | None, ...]
    order: tuple[str, ...] | None
    """Positional paramstyles: the names in the order the SQL takes them (repeats included);
    None for named paramstyles and when that order is `names` itself."""
    positional: bool


class DriverStatement:
    """A Core statement (or text) to run with plain values, compiled once per dialect."""

    def __init__(self, statement: ClauseElement, keys: Sequence[str] = ()) -> None:
        """Keep `statement`; `keys` name the columns an INSERT or UPDATE sets in every row."""
        self._statement = statement
        self._keys = list(keys)
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """Run once with `values`; return the DBAPI's rows, unprocessed."""
        compiled = self._for(connection.dialect)
        return connection.exec_driver_sql(compiled.sql, _parameters(compiled, values)).all()

    def executemany(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per parameter set in `rows` (one DBAPI executemany)."""
        if rows:
            compiled = self._for(connection.dialect)
            connection.exec_driver_sql(compiled.sql, [_parameters(compiled, row) for row in rows])

    def _for(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, str(dialect.paramstyle))
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _compile(self._statement, self._keys, dialect)
        return found


def _compile(statement: ClauseElement, keys: list[str], dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect, column_keys=keys or None)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError(f"{statement} needs SQLAlchemy-side defaults: give every column")
    positional = bool(dialect.positional)
    order = tuple(compiled.positiontup) if positional else None
    names = tuple(dict.fromkeys(order)) if order is not None else tuple(compiled.binds)
    processors = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    return _Compiled(
        compiled.string, names, processors, None if order == names else order, positional
    )


def _parameters(compiled: _Compiled, values: Mapping[str, Any]) -> Any:
    converted = [
        values[name] if process is None else process(values[name])
        for name, process in zip(compiled.names, compiled.processors, strict=True)
    ]
    if not compiled.positional:
        return dict(zip(compiled.names, converted, strict=True))
    if compiled.order is None:
        return tuple(converted)
    by_name = dict(zip(compiled.names, converted, strict=True))
    return tuple(by_name[name] for name in compiled.order)
