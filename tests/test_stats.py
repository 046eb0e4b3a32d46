"""Stats: status hysteresis, streaks, inconclusive exclusion, percentiles, uptime and score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import ThresholdsConfig
from monitor.models import Outcome, Status
from monitor.stats import (
    EndpointState,
    OutcomeCounts,
    ScoreInputs,
    advance,
    coverage,
    figures_of,
    latency_points,
    percentile,
    reliability_score,
    streak_points,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
THRESHOLDS = ThresholdsConfig()
P = Outcome.PASS
S = Outcome.SOFT_FAIL
H = Outcome.HARD_FAIL
I = Outcome.INCONCLUSIVE  # noqa: E741 - reads as a row of outcomes in the tables below
U, OK, DG, DN = Status.UNKNOWN, Status.HEALTHY, Status.DEGRADED, Status.DOWN


def run(
    outcomes: list[Outcome], p50_ms: float | None = 100.0
) -> tuple[list[Status], EndpointState]:
    """Apply outcomes one minute apart; return the status after each, and the final state."""
    state = EndpointState()
    statuses = []
    for minute, outcome in enumerate(outcomes):
        state, _ = advance(state, outcome, T0 + timedelta(minutes=minute), p50_ms, THRESHOLDS)
        statuses.append(state.status)
    return statuses, state


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], []),
        ([I, I], [U, U]),
        ([P], [OK]),
        ([S], [DG]),
        ([H], [DN]),  # every conclusive check so far failed hard
        ([I, H, I, H], [U, DN, DN, DN]),
        ([P, H], [OK, DG]),
        ([P, H, H], [OK, DG, DG]),
        ([P, H, H, H], [OK, DG, DG, DN]),  # down_after = 3 hard failures in a row
        ([P, H, H, S, H], [OK, DG, DG, DG, DG]),  # a soft failure breaks the hard streak
        ([P, H, I, H, I, H], [OK, DG, DG, DG, DG, DN]),  # inconclusive neither adds nor resets
        ([P, S, S, S, S], [OK, DG, DG, DG, DG]),  # soft failures never make it down
        ([P, H, H, H, P], [OK, DG, DG, DN, DG]),  # recovering: one pass is not enough
        ([P, H, H, H, P, P], [OK, DG, DG, DN, DG, OK]),  # recover_after = 2 passes in a row
        ([P, H, H, H, P, S, P], [OK, DG, DG, DN, DG, DG, DG]),  # the pass streak restarted
        ([P, H, H, H, P, S, P, P], [OK, DG, DG, DN, DG, DG, DG, OK]),
        ([H, P], [DN, DG]),  # first-ever hard failure then a pass: recovering
        ([H, P, P], [DN, DG, OK]),
        ([S, P], [DG, OK]),  # never down: one pass is healthy
        ([P, I, I, I], [OK, OK, OK, OK]),
    ],
)
def test_status_hysteresis(outcomes: list[Outcome], expected: list[Status]) -> None:
    assert run(outcomes)[0] == expected


@pytest.mark.parametrize(
    ("outcomes", "failures", "last_healthy_minute"),
    [
        ([], 0, None),
        ([P, S, H], 2, 0),
        ([P, S, I, H, I], 2, 0),  # inconclusive checks do not count
        ([S, H, P], 0, 2),
        ([P, H, H, P, S, S, S, S], 4, 3),  # the counter does not freeze on 4xx
        ([I, I], 0, None),
    ],
)
def test_consecutive_failures_and_last_healthy(
    outcomes: list[Outcome], failures: int, last_healthy_minute: int | None
) -> None:
    _, state = run(outcomes)
    assert state.consecutive_failures == failures
    expected = None if last_healthy_minute is None else T0 + timedelta(minutes=last_healthy_minute)
    assert state.last_healthy_at == expected


def test_inconclusive_moves_only_last_checked() -> None:
    state, _ = advance(EndpointState(), P, T0, 100.0, THRESHOLDS)
    after, flip = advance(state, I, T0 + timedelta(minutes=1), 100.0, THRESHOLDS)
    assert flip is None
    assert after.last_checked_at == T0 + timedelta(minutes=1)
    assert after.conclusive_checks == state.conclusive_checks == 1
    assert after.last_healthy_at == T0


def test_latency_over_budget_keeps_a_passing_endpoint_degraded() -> None:
    assert run([P, P], p50_ms=2500.0)[0] == [DG, DG]
    assert run([P, P], p50_ms=2000.0)[0] == [OK, OK]  # within the budget is healthy
    assert run([P], p50_ms=None)[0] == [OK]  # p50 not known yet


def test_flips_record_time_from_to_and_reason() -> None:
    state = EndpointState()
    flips = []
    for minute, outcome in enumerate([P, H, H, H, P, P]):
        state, flip = advance(
            state, outcome, T0 + timedelta(minutes=minute), 100.0, THRESHOLDS, error="HTTP 500"
        )
        if flip:
            flips.append(flip)
    assert [(f.from_status, f.to_status) for f in flips] == [
        (U, OK),
        (OK, DG),
        (DG, DN),
        (DN, DG),
        (DG, OK),
    ]
    assert flips[2].at == T0 + timedelta(minutes=3)
    assert flips[2].reason == "3 consecutive hard failures (HTTP 500)"
    assert flips[3].reason == "recovering: 1 of 2 passes"
    assert flips[4].reason == "recovered after 2 passes in a row"


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, None),
        ([5.0, 1.0], 0.5, None),  # fewer than 3 samples
        ([3.0, 1.0, 2.0], 0.5, 2.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),  # nearest rank: ceil(0.5 * 4) = 2nd value
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0),
        ([float(v) for v in range(1, 101)], 0.95, 95.0),
        ([float(v) for v in range(1, 21)], 0.95, 19.0),
        ([7.0, 7.0, 7.0], 0.95, 7.0),
        ([1.0, 2.0, 100.0], 1.0, 100.0),
    ],
)
def test_nearest_rank_percentile(
    values: list[float], fraction: float, expected: float | None
) -> None:
    assert percentile(values, fraction) == expected


@pytest.mark.parametrize(
    ("counts", "uptime", "reachability"),
    [
        (OutcomeCounts(), None, None),
        (OutcomeCounts(inconclusive=5), None, None),  # inconclusive never counts
        (OutcomeCounts(passes=3, soft_fails=1, inconclusive=10), 0.75, 1.0),
        (OutcomeCounts(passes=1, soft_fails=1, hard_fails=2), 0.25, 0.5),
        (OutcomeCounts(soft_fails=4), 0.0, 1.0),  # answering 404/400 forever is 0 % uptime
    ],
)
def test_uptime_and_reachability(
    counts: OutcomeCounts, uptime: float | None, reachability: float | None
) -> None:
    assert counts.uptime == uptime
    assert counts.reachability == reachability


def test_coverage_is_the_real_history_within_the_window() -> None:
    now = T0 + timedelta(days=40)
    assert coverage(OutcomeCounts(), now) == timedelta(0)
    assert coverage(
        OutcomeCounts(passes=1, first_check_at=now - timedelta(days=3)), now
    ) == timedelta(days=3)
    assert coverage(OutcomeCounts(passes=1, first_check_at=T0), now) == timedelta(days=30)


@pytest.mark.parametrize(
    ("p50", "points"),
    [
        (None, 0),
        (10.0, 20),
        (299.9, 20),
        (300.0, 15),
        (999.0, 15),
        (1000.0, 10),
        (1999.0, 10),
        (2000.0, 5),
        (4999.0, 5),
        (5000.0, 0),
    ],
)
def test_latency_points(p50: float | None, points: int) -> None:
    assert latency_points(p50) == points


@pytest.mark.parametrize(("failures", "points"), [(0, 10), (1, 5), (2, 5), (3, 0), (19, 0)])
def test_streak_points(failures: int, points: int) -> None:
    assert streak_points(failures) == points


def _inputs(**overrides: object) -> ScoreInputs:
    values: dict[str, object] = {
        "status": Status.HEALTHY,
        "counts": OutcomeCounts(passes=10),
        "p50_ms": 100.0,
        "consecutive_failures": 0,
        "has_pass": True,
        "asset_verified": True,
        "facilitator_supported": True,
        "offers_stable": True,
    }
    values.update(overrides)
    return ScoreInputs(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "score"),
    [
        ({}, 100),
        ({"counts": OutcomeCounts(passes=9)}, None),  # unrated below 10 conclusive checks
        ({"counts": OutcomeCounts(passes=9, inconclusive=50)}, None),
        ({"counts": OutcomeCounts(passes=5, soft_fails=5)}, 75),
        ({"p50_ms": 746.0}, 95),
        ({"p50_ms": None}, 80),
        ({"asset_verified": False, "facilitator_supported": False}, 90),
        ({"offers_stable": False}, 95),
        ({"consecutive_failures": 2}, 95),
        # The reference page: 19 failures and no pass ever, yet "75/100" there. Here: 0 uptime,
        # latency 15, no conformance (no pass), no streak, no stability.
        (
            {
                "status": Status.DEGRADED,
                "counts": OutcomeCounts(soft_fails=19),
                "p50_ms": 746.0,
                "consecutive_failures": 19,
                "has_pass": False,
            },
            15,
        ),
        # Down is capped at 40 even with a good history.
        (
            {
                "status": Status.DOWN,
                "counts": OutcomeCounts(passes=97, hard_fails=3),
                "consecutive_failures": 3,
            },
            40,
        ),
        (
            {
                "status": Status.DOWN,
                "counts": OutcomeCounts(hard_fails=10),
                "consecutive_failures": 10,
                "has_pass": False,
                "p50_ms": None,
            },
            0,
        ),
    ],
)
def test_reliability_score(overrides: dict[str, object], score: int | None) -> None:
    assert reliability_score(_inputs(**overrides)) == score


def test_figures_combine_state_and_window() -> None:
    statuses, state = run([P] * 12)
    assert statuses[-1] is OK
    counts = OutcomeCounts(passes=12, first_check_at=T0)
    figures = figures_of(state, counts, 120.0, 300.0, T0 + timedelta(days=3))
    assert figures.uptime_30d == 1.0
    assert figures.coverage == timedelta(days=3)
    # asset and facilitator verdicts come with the next issue: 100 - 10 points for now.
    assert figures.score == 90
