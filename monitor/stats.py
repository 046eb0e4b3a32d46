"""Derive an endpoint's figures: streaks, status with hysteresis, percentiles, uptime, score.

Core module, pure: every function takes `now` or the check time as a parameter and works on
small inputs (one endpoint's state, aggregate counts, a bounded latency window) that the store
computes with SQL. The definitions are DESIGN.md's; tests pin them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.config import ThresholdsConfig
from monitor.models import Outcome, Status

SCORE_VERSION = "score-v1"
"""Published with the formula; bump it whenever the formula changes."""
UNRATED_BELOW = 10
"""Conclusive checks (30 days) needed before a score is published."""
PERCENTILE_MIN_SAMPLES = 3
LATENCY_WINDOW = timedelta(hours=24)
UPTIME_WINDOW = timedelta(days=30)
DOWN_SCORE_CAP = 40


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile (`fraction` in (0, 1]) or None below 3 samples.

    Nearest rank: the value at position ceil(fraction * n) of the sorted sample, so the result
    is always a latency that was really observed.
    """
    if len(values) < PERCENTILE_MIN_SAMPLES:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class EndpointState:
    """The running state kept on the endpoint row and advanced by each check."""

    status: Status = Status.UNKNOWN
    consecutive_failures: int = 0
    """Conclusive checks since the last pass (soft and hard both count)."""
    consecutive_hard: int = 0
    consecutive_passes: int = 0
    conclusive_checks: int = 0
    non_hard_checks: int = 0
    """Conclusive checks that were not hard failures (0 means "every check so far failed hard")."""
    recovering: bool = False
    """Set when the endpoint went down; cleared once `recover_after` passes made it healthy."""
    last_checked_at: datetime | None = None
    last_healthy_at: datetime | None = None
    last_outcome: Outcome | None = None
    """Outcome of the latest conclusive check."""


@dataclass(frozen=True)
class Flip:
    """A change of status, with its time and a reason written for people."""

    at: datetime
    from_status: Status
    to_status: Status
    reason: str


def advance(
    state: EndpointState,
    outcome: Outcome,
    checked_at: datetime,
    p50_ms: float | None,
    thresholds: ThresholdsConfig,
    error: str | None = None,
) -> tuple[EndpointState, Flip | None]:
    """Apply one check to an endpoint's state; return the new state and the flip it caused.

    Inconclusive checks only move `last_checked_at`: they neither add to nor reset a streak.
    `p50_ms` is the 24-hour p50 including this check (None while unknown).
    """
    if not outcome.conclusive:
        return replace(state, last_checked_at=checked_at), None
    passed = outcome is Outcome.PASS
    hard = outcome is Outcome.HARD_FAIL
    counted = replace(
        state,
        consecutive_failures=0 if passed else state.consecutive_failures + 1,
        consecutive_hard=state.consecutive_hard + 1 if hard else 0,
        consecutive_passes=state.consecutive_passes + 1 if passed else 0,
        conclusive_checks=state.conclusive_checks + 1,
        non_hard_checks=state.non_hard_checks + (0 if hard else 1),
        last_checked_at=checked_at,
        last_healthy_at=checked_at if passed else state.last_healthy_at,
        last_outcome=outcome,
    )
    status, reason = _status_of(counted, p50_ms, thresholds, error)
    recovering = counted.recovering
    if status is Status.DOWN:
        recovering = True
    elif status is Status.HEALTHY:
        recovering = False
    new_state = replace(counted, status=status, recovering=recovering)
    if status is state.status:
        return new_state, None
    return new_state, Flip(checked_at, state.status, status, reason)


def _status_of(
    state: EndpointState, p50_ms: float | None, thresholds: ThresholdsConfig, error: str | None
) -> tuple[Status, str]:
    """Return the status DESIGN.md defines for a state that has at least one conclusive check."""
    cause = f" ({error})" if error else ""
    if state.non_hard_checks == 0:
        checks = "check" if state.conclusive_checks == 1 else "checks"
        return Status.DOWN, f"every check so far failed hard: {state.conclusive_checks} {checks}"
    if state.consecutive_hard >= thresholds.down_after:
        return Status.DOWN, f"{state.consecutive_hard} consecutive hard failures{cause}"
    budget_ms = thresholds.latency_budget.total_seconds() * 1000
    if state.last_outcome is Outcome.PASS:
        if p50_ms is not None and p50_ms > budget_ms:
            return Status.DEGRADED, f"p50 latency {p50_ms:.0f} ms over budget {budget_ms:.0f} ms"
        if state.recovering and state.consecutive_passes < thresholds.recover_after:
            return (
                Status.DEGRADED,
                f"recovering: {state.consecutive_passes} of {thresholds.recover_after} passes",
            )
        if state.recovering:
            return Status.HEALTHY, f"recovered after {state.consecutive_passes} passes in a row"
        return Status.HEALTHY, "valid 402 challenge"
    kind = "hard failure" if state.last_outcome is Outcome.HARD_FAIL else "soft failure"
    return Status.DEGRADED, f"{kind}{cause}"


@dataclass(frozen=True)
class OutcomeCounts:
    """Checks of one endpoint in a window, by outcome (from a SQL aggregate)."""

    passes: int = 0
    soft_fails: int = 0
    hard_fails: int = 0
    inconclusive: int = 0
    first_check_at: datetime | None = None

    @property
    def conclusive(self) -> int:
        """Return the checks that count (all but inconclusive)."""
        return self.passes + self.soft_fails + self.hard_fails

    @property
    def uptime(self) -> float | None:
        """Return passes / conclusive checks, or None without any conclusive check."""
        return self.passes / self.conclusive if self.conclusive else None

    @property
    def reachability(self) -> float | None:
        """Return (passes + soft failures) / conclusive: it answered, payable or not."""
        return (self.passes + self.soft_fails) / self.conclusive if self.conclusive else None


def coverage(counts: OutcomeCounts, now: datetime, window: timedelta = UPTIME_WINDOW) -> timedelta:
    """Return how much of the uptime window the history really covers (at most the window)."""
    if counts.first_check_at is None:
        return timedelta(0)
    return min(window, max(timedelta(0), now - counts.first_check_at))


@dataclass(frozen=True)
class ScoreInputs:
    """What the reliability score is computed from."""

    status: Status
    counts: OutcomeCounts
    p50_ms: float | None
    consecutive_failures: int
    has_pass: bool
    """A pass exists in the window: the challenge of the latest pass was valid."""
    asset_verified: bool
    facilitator_supported: bool
    offers_stable: bool
    """Price and payTo of every pass in 30 days are the same."""


def latency_points(p50_ms: float | None) -> int:
    """Return the latency part of the score (0-20) for a p50."""
    if p50_ms is None:
        return 0
    for limit_ms, points in ((300, 20), (1000, 15), (2000, 10), (5000, 5)):
        if p50_ms < limit_ms:
            return points
    return 0


def streak_points(consecutive_failures: int) -> int:
    """Return the streak part of the score (0-10)."""
    if consecutive_failures == 0:
        return 10
    return 5 if consecutive_failures <= 2 else 0


def reliability_score(inputs: ScoreInputs) -> int | None:
    """Return the 0-100 reliability score of DESIGN.md, or None (unrated) below 10 checks.

    availability 50 x uptime; latency 20; conformance 15 (valid challenge, asset verified,
    facilitator supports the offer: 5 each, from the latest pass); streak 10; stability 5
    (price and payTo unchanged over 30 days). Capped at 40 while down.
    """
    uptime = inputs.counts.uptime
    if inputs.counts.conclusive < UNRATED_BELOW or uptime is None:
        return None
    conformance = (
        (5 if inputs.has_pass else 0)
        + (5 if inputs.has_pass and inputs.asset_verified else 0)
        + (5 if inputs.has_pass and inputs.facilitator_supported else 0)
    )
    total = (
        50 * uptime
        + latency_points(inputs.p50_ms)
        + conformance
        + streak_points(inputs.consecutive_failures)
        + (5 if inputs.has_pass and inputs.offers_stable else 0)
    )
    score = math.floor(total + 0.5)
    return min(score, DOWN_SCORE_CAP) if inputs.status is Status.DOWN else score


@dataclass(frozen=True)
class EndpointFigures:
    """Everything published about an endpoint's health at one moment."""

    status: Status
    consecutive_failures: int
    last_checked_at: datetime | None
    last_healthy_at: datetime | None
    p50_ms: float | None
    p95_ms: float | None
    uptime_30d: float | None
    reachability_30d: float | None
    coverage: timedelta
    conclusive_30d: int
    score: int | None


def figures_of(
    state: EndpointState,
    counts: OutcomeCounts,
    p50_ms: float | None,
    p95_ms: float | None,
    now: datetime,
    *,
    offers_stable: bool = True,
    asset_verified: bool = False,
    facilitator_supported: bool = False,
) -> EndpointFigures:
    """Combine an endpoint's state and its window aggregates into its published figures."""
    score = reliability_score(
        ScoreInputs(
            status=state.status,
            counts=counts,
            p50_ms=p50_ms,
            consecutive_failures=state.consecutive_failures,
            has_pass=state.last_healthy_at is not None,
            asset_verified=asset_verified,
            facilitator_supported=facilitator_supported,
            offers_stable=offers_stable,
        )
    )
    return EndpointFigures(
        status=state.status,
        consecutive_failures=state.consecutive_failures,
        last_checked_at=state.last_checked_at,
        last_healthy_at=state.last_healthy_at,
        p50_ms=p50_ms,
        p95_ms=p95_ms,
        uptime_30d=counts.uptime,
        reachability_30d=counts.reachability,
        coverage=coverage(counts, now),
        conclusive_30d=counts.conclusive,
        score=score,
    )
