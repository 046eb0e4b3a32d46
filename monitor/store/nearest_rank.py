"""Find a nearest-rank value with one short index walk, merging in values not stored as walked.

The database walks an index in value order and returns a few values around the rank; some of
the values it walks do not count (`removed`: young copies older than the window) and some
that count are not stored yet (`added`: the round's own latencies). RankWalk says which stored
positions to fetch and picks the exact value from them. Pure: no SQL here.

Why the span suffices, for the rank-th smallest of T = stored - removed + added (|removed| = r,
|added| = a): a stored answer has a copy at a stored position in [rank - a, rank + r], since at
most r stored values before it are removed and at most a values before it are added. For any
candidate x at or above the first fetched value, "how many of T are <= x" is exact from the
fetched values (stored values before the span are all <= x); below it, the count can only
reach rank - 1, so the first candidate reaching rank is the answer.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.stats import PERCENTILE_MIN_SAMPLES


@dataclass(frozen=True)
class RankWalk:
    """The `rank`-th value of an index walk (up: smallest first; down: largest first)."""

    stored: int
    """How many values the walked index range holds."""
    removed: Sequence[float]
    """Values of that range that do not count, ascending."""
    added: Sequence[float]
    """Values that count but are not in the range, ascending."""
    rank: int
    """1-based, in walk order."""
    descending: bool = False

    def span(self) -> tuple[int, int]:
        """Return (offset, limit) of the walk: the stored positions that can hold the value."""
        first = max(1, self.rank - len(self.added))
        last = min(self.stored, self.rank + len(self.removed))
        return first - 1, max(0, last - first + 1)

    def pick(self, fetched: Sequence[float]) -> float:
        """Return the value, given the values the walk fetched over span(), in walk order."""
        before = self.span()[0]
        if not self.removed:  # then the span's values and the added ones hold it in order
            merged = sorted([*fetched, *self.added], reverse=self.descending)
            return merged[self.rank - before - 1]
        sign = -1.0 if self.descending else 1.0
        walked = [sign * value for value in fetched]  # ascending either way
        removed = sorted(sign * value for value in self.removed)
        added = sorted(sign * value for value in self.added)
        for value in sorted({*walked, *added}):
            at_most = (
                before
                + bisect_right(walked, value)
                - bisect_right(removed, value)
                + bisect_right(added, value)
            )
            if at_most >= self.rank:
                return sign * value
        raise AssertionError(f"rank {self.rank} is outside the walked values")


def percentile_walks(
    stored: int, removed: Sequence[float], added: Sequence[float]
) -> tuple[RankWalk, RankWalk] | None:
    """Return the walks of p50 (up) and p95 (down from the largest); None below 3 samples.

    Nearest rank ceil(p * n), in integers as stats.percentile computes it.
    """
    n = stored - len(removed) + len(added)
    if n < PERCENTILE_MIN_SAMPLES:
        return None
    p50 = (n * 50 + 99) // 100
    p95 = (n * 95 + 99) // 100
    return (
        RankWalk(stored, removed, added, p50),
        RankWalk(stored, removed, added, n - p95 + 1, descending=True),
    )
