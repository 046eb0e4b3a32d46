"""Scheduling math: stable phases, even spreading, next slots and start-up resumption."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.schedule import next_check_at, next_slot, phase, resume_at

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_phase_is_stable_and_within_the_interval() -> None:
    for index in range(200):
        slug = f"endpoint-{index}"
        offset = phase(slug, MINUTE)
        assert timedelta(0) <= offset < MINUTE
        assert phase(slug, MINUTE) == offset


def test_20000_endpoints_spread_evenly_over_the_interval() -> None:
    per_second = [0] * 60
    for index in range(20_000):
        slot = next_slot(f"host-{index}.example-pay-{index:08x}", MINUTE, NOW)
        per_second[int((slot - NOW).total_seconds()) % 60] += 1
    expected = 20_000 / 60
    # A uniform hash: every second of the minute gets within 25 % of the mean.
    assert min(per_second) > expected * 0.75
    assert max(per_second) < expected * 1.25


@pytest.mark.parametrize("seconds_after", [0.0, 0.001, 13.5, 59.999, 60.0, 3600.25])
def test_next_slot_lies_within_one_interval_and_keeps_the_phase(seconds_after: float) -> None:
    after = NOW + timedelta(seconds=seconds_after)
    slot = next_slot("a", MINUTE, after)
    assert after < slot <= after + MINUTE
    assert next_slot("a", MINUTE, slot) == slot + MINUTE
    assert (slot - next_slot("a", MINUTE, NOW)) % MINUTE == timedelta(0)


def test_a_late_probe_does_not_drift_the_rhythm() -> None:
    slot = next_slot("b", MINUTE, NOW)
    # Checked 2.5 s late: the next one still lands on the endpoint's own slot.
    assert next_check_at("b", MINUTE, slot + timedelta(seconds=2.5)) == slot + MINUTE
    assert next_check_at("b", MINUTE, slot) == slot + MINUTE


def test_resume_keeps_future_due_times_and_spreads_overdue_ones() -> None:
    future = NOW + timedelta(seconds=30)
    assert resume_at("c", MINUTE, future, NOW) == future
    overdue = [
        resume_at(f"e{index}", MINUTE, NOW - timedelta(hours=5), NOW) for index in range(600)
    ]
    assert all(NOW < due <= NOW + MINUTE for due in overdue)
    # The backlog is spread: no single second holds more than a few of the 600.
    seconds = [int((due - NOW).total_seconds()) for due in overdue]
    assert max(seconds.count(second) for second in set(seconds)) < 30
    assert resume_at("never-checked", MINUTE, None, NOW) == next_slot("never-checked", MINUTE, NOW)
