"""The answer of one delivery attempt, and the wait before retrying a failed one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

RETRY_BASE = timedelta(seconds=10)
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class DeliveryResult:
    """The answer of one delivery attempt.

    `ok` = delivered. Otherwise `permanent` says retrying cannot help (record and stop).
    `status` is the HTTP status when one was received; `detail` is short and secret-free.
    """

    ok: bool
    permanent: bool
    status: int | None
    detail: str


def retry_delay(attempt: int) -> timedelta:
    """Return the wait after failed attempt number `attempt` (1-based): 10 s × 2^(n-1), ≤ 1 h."""
    exponent = min(max(attempt, 1) - 1, 20)  # 2^20 × 10 s is far past the cap already
    return min(RETRY_BASE * (1 << exponent), RETRY_CAP)
