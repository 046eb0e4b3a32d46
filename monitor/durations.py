"""Durations in config.yaml: `30s`, `5m`, `4h`, `35d`, `250ms` or combined (`1h30m`).

Core module, stdlib and pydantic only. `Duration` is 0s or longer; `PositiveDuration` is
longer than 0s (for periods and timeouts, where 0s would spin or fail at once).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse `30s`, `5m`, `4h`, `35d`, `250ms` or `1h30m` into a timedelta.

    A timedelta passes through. Bare numbers are refused: a unit makes the intent explicit.
    A negative duration (`-5s`, or a negative timedelta) is refused as negative.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"{format_duration(value)} is negative: a duration must be positive")
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 5m or 4h, got {value!r}")
    text = value.strip()
    if text.startswith("-") and _is_duration(text[1:].lstrip()):
        raise ValueError(f"{value!r} is negative: a duration must be positive, such as 30s")
    if not _is_duration(text):
        raise ValueError(f"{value!r} is not a duration: use a number and a unit (ms, s, m, h, d)")
    parts = _DURATION_PART.findall(text)
    return timedelta(seconds=sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts))


def _is_duration(text: str) -> bool:
    parts = _DURATION_PART.findall(text)
    return bool(text) and "".join(number + unit for number, unit in parts) == text


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be positive (longer than 0s), got {format_duration(value)}")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]


def format_duration(value: timedelta) -> str:
    """Render a duration compactly (`10s`, `5m`, `1h30m`, `250ms`) for messages and summaries."""
    if value < timedelta(0):
        return "-" + format_duration(-value)
    millis = round(value.total_seconds() * 1000)
    if millis % 1000:
        return f"{millis}ms" if millis < 1000 else f"{millis / 1000:g}s"
    seconds = millis // 1000
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"
