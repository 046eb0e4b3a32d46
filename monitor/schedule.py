"""When each endpoint is due: a stable phase per endpoint spreads checks over the interval.

Core module, pure. Every endpoint owns a fixed offset within the probe interval (a hash of its
slug), and is checked at the slots `epoch + offset + k * interval`. 20,000 endpoints therefore
spread evenly over the interval instead of firing together, keep their rhythm across restarts,
and an overdue backlog (after downtime) is spread over one interval rather than fired at once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def phase(slug: str, interval: timedelta) -> timedelta:
    """Return the endpoint's stable offset within the interval, in [0, interval)."""
    digest = int.from_bytes(hashlib.sha256(slug.encode()).digest()[:8], "big")
    micros = max(1, round(interval.total_seconds() * 1_000_000))
    return timedelta(microseconds=digest % micros)


def next_slot(slug: str, interval: timedelta, after: datetime) -> datetime:
    """Return the endpoint's first slot strictly after `after`.

    Slots are `epoch + phase + k * interval`; the result lies in (after, after + interval].
    """
    micros = max(1, round(interval.total_seconds() * 1_000_000))
    start = _EPOCH + phase(slug, interval)
    elapsed = round((after - start).total_seconds() * 1_000_000)
    return start + timedelta(microseconds=(elapsed // micros + 1) * micros)


def next_check_at(slug: str, interval: timedelta, checked_at: datetime) -> datetime:
    """Return when an endpoint checked at `checked_at` is due again (its next slot)."""
    return next_slot(slug, interval, checked_at)


def resume_at(slug: str, interval: timedelta, due: datetime | None, now: datetime) -> datetime:
    """Return the due time to keep at start-up: unchanged if in the future, else the next slot.

    Overdue and never-checked endpoints get their next slot after `now`, which spreads a
    backlog of any size evenly over one interval (no thundering herd after downtime).
    """
    if due is not None and due > now:
        return due
    return next_slot(slug, interval, now)
