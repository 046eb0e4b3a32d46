"""Helpers of the store's set-based SQL: typed datetime parameters and chunked IN (...) lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import BindParameter, bindparam
from sqlmodel.sql.sqltypes import UTCDateTime

CHUNK = 500
"""Endpoint ids per IN (...) list: far below SQLite's bound-parameter limit."""

T = TypeVar("T")


def moment(name: str) -> BindParameter[datetime]:
    """Return a datetime bind parameter typed like the columns, so comparisons are exact."""
    return bindparam(name, type_=UTCDateTime())


SINCE = moment("since")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(chunk: Sequence[int]) -> str:
    return ", ".join(f":id{index}" for index in range(len(chunk)))


def params(chunk: Sequence[int]) -> dict[str, int]:
    return {f"id{index}": value for index, value in enumerate(chunk)}
