"""Apprise runs in a child process bounded in memory and time: real loopback receivers.

Deliveries go through Apprise `json://127.0.0.1:PORT/<mode>/...` URLs to a receiver on
127.0.0.1 port 0 that answers by the first path segment: `ok` (200), `e500`, `bomb` (200 with
a gzip bomb: 1 GiB of zeros, generated as it is sent) and `hang` (reads the request, never
answers). Waits are generous multiples of the configured timeouts; nothing races the clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from hostile_http import MIB, zero_bomb
from log_capture import Capture, every_record
from loop_watch import watching_the_loop
from loopback_receivers import Answer, Received, Receiver

from monitor.alert_config import ChannelConfig
from monitor.alerting import AlertEvent, Notice, NotificationMessage, notification_id
from monitor.alerts import DeliveryResult, Notifier
from monitor.alerts.apprise_worker import MEMORY_BOUND, AppriseWorker

BOMB_BYTES = 1 << 30
WAIT_S = 60.0
"""Generous bound for things that take a second or two on an idle machine."""
TOKEN = "workertoken7c2e9a"
PASSWORD = "workerpassword4d1b"
SLUG = "api-example-com-weather"
T = TypeVar("T")


BOMB_HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def by_first_segment(request: Received) -> Answer:
    """Answer `/ok/...` 200, `/e500/...` 500, `/bomb/...` a gzip bomb; hold `/hang/...`."""
    mode = request.first_segment
    if mode == "hang":
        return Answer(None, hold="before")
    if mode == "bomb":  # no Content-Length: the body ends when the connection closes
        return Answer(headers=BOMB_HEADERS, body=zero_bomb("gzip", BOMB_BYTES))
    return Answer(500 if mode == "e500" else 200)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # Apprise's requests honours proxy variables
    with Receiver(by_first_segment) as server:
        yield server


def paths(receiver: Receiver) -> list[str]:
    return [request.path for request in receiver.received()]


def channel(receiver: Receiver, mode: str, seconds: float = 10.0) -> ChannelConfig:
    url = f"json://user:{PASSWORD}@127.0.0.1:{receiver.port}/{mode}/{TOKEN}"
    return ChannelConfig(
        name=f"apprise-{mode}", type="apprise", url=url, timeout=timedelta(seconds=seconds)
    )


def message() -> NotificationMessage:
    at = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    return NotificationMessage(
        event=AlertEvent.FIRING,
        notification_id=notification_id(SLUG, Notice(AlertEvent.FIRING, at)),
        url="https://api.example.com/weather",
        slug=SLUG,
        title="Weather API",
        category="data",
        status="down",
        consecutive_failures=3,
        last_error="HTTP 500",
        last_healthy=None,
        page_url="https://status.example.org/endpoints/api-example-com-weather.html",
        at=at,
        fired_at=at - timedelta(minutes=1),
    )


def with_notifier(
    scenario: Callable[[Notifier, AppriseWorker], Awaitable[T]], worker: AppriseWorker | None = None
) -> T:
    worker = worker or AppriseWorker()

    async def go() -> T:
        async with Notifier(apprise=worker) as notifier:
            return await scenario(notifier, worker)

    return asyncio.run(go())


def gone(pid: int) -> bool:
    """Return whether no process (not even a zombie awaiting its parent) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return value.strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def wait_until_dead(pid: int) -> None:
    """Wait until `pid` has died: a zombie its parent can reap (or gone already).

    Its main thread shows as a zombie while the others are still being torn down; only
    once they are gone (one task left) does `waitpid` report it.
    """
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            tasks = len(list(Path(f"/proc/{pid}/task").iterdir()))
        except FileNotFoundError:
            return
        if state in ("Z", "X") and tasks <= 1:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still alive after {WAIT_S:g} s")


def rss_bytes() -> int:
    return int(status_field(os.getpid(), "VmRSS").split()[0]) * 1024


DELIVERED = DeliveryResult(True, False, None, "delivered by apprise")
TIMED_OUT_1S = DeliveryResult(False, False, None, "apprise delivery timed out after 1 s")


async def first_delivery(notifier: Notifier, worker: AppriseWorker, receiver: Receiver) -> int:
    """Deliver one message to `/ok/`; return the pid of the child that delivered it."""
    assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
    pid = worker.pid
    assert pid is not None
    return pid


# --- the child process -----------------------------------------------------------------------


def test_a_long_lived_child_delivers_under_its_memory_bound_and_stops_cleanly(
    receiver: Receiver,
) -> None:
    async def scenario(notifier: Notifier, worker: AppriseWorker) -> int:
        assert worker.pid is None  # started on the first Apprise delivery, not before
        assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
        pid = worker.pid
        assert pid is not None
        assert pid != os.getpid()
        assert status_field(pid, "PPid") == str(os.getpid())
        limits = Path(f"/proc/{pid}/limits").read_text()
        (line,) = [line for line in limits.splitlines() if line.startswith("Max address space")]
        assert line.split()[3:5] == [str(MEMORY_BOUND), str(MEMORY_BOUND)]  # soft and hard
        assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
        assert worker.pid == pid  # the same child serves the next one
        return pid

    pid = with_notifier(scenario)
    assert gone(pid)  # stopped by aclose and reaped: no zombie
    assert paths(receiver) == [f"/ok/{TOKEN}", f"/ok/{TOKEN}"]


def test_answer_500_is_retryable_and_keeps_the_child(receiver: Receiver) -> None:
    async def scenario(notifier: Notifier, worker: AppriseWorker) -> None:
        pid = await first_delivery(notifier, worker, receiver)
        result = await notifier.send(channel(receiver, "e500"), message())
        assert result == DeliveryResult(False, False, None, "apprise reported failure")
        assert worker.pid == pid

    with_notifier(scenario)


def test_gzip_bomb_costs_the_child_not_the_parent_and_the_next_delivery_works(
    receiver: Receiver,
) -> None:
    """requests decodes the whole answer: the child hits its bound, the parent stays small."""

    async def scenario(notifier: Notifier, worker: AppriseWorker) -> None:
        first = await first_delivery(notifier, worker, receiver)
        rss_before = rss_bytes()
        tracemalloc.start()
        try:
            # A generous timeout: the memory bound, not the clock, must end this one.
            result = await notifier.send(channel(receiver, "bomb", seconds=300), message())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16 * MIB  # the receiver's thread sends the bomb 1 KB at a time
        assert rss_bytes() - rss_before < 16 * MIB
        bound = f"{MEMORY_BOUND // MIB} MiB"
        assert result == DeliveryResult(
            False, False, None, f"apprise worker exceeded its memory bound ({bound})"
        )
        assert gone(first)
        assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
        assert worker.pid not in (None, first)  # a fresh child

    with_notifier(scenario)
    # The bomb is 1,011:1: the child decoded at least half its bound before it failed.
    assert receiver.sent > MEMORY_BOUND // 2 // 1000


def test_receiver_that_never_answers_times_out_and_the_child_is_killed(
    receiver: Receiver,
) -> None:
    async def scenario(notifier: Notifier, worker: AppriseWorker) -> tuple[float, int]:
        first = await first_delivery(notifier, worker, receiver)
        async with watching_the_loop() as watch:  # a 10 ms ticker beside the delivery
            started = time.monotonic()
            result = await notifier.send(channel(receiver, "hang", seconds=1), message())
            elapsed = time.monotonic() - started
        assert result == TIMED_OUT_1S
        assert gone(first)  # a plugin thread may still hang in it: killed, reaped
        assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
        return elapsed, watch.ticks

    elapsed, ticks = with_notifier(scenario)
    assert elapsed < 30 * 1  # the receiver would hold it for 60 s
    assert ticks >= 10  # the event loop went on while the delivery waited


def test_child_that_stops_answering_is_killed_after_timeout_and_grace(
    receiver: Receiver,
) -> None:
    """A child that hangs whole (here: SIGSTOP) cannot time itself out: the parent kills it."""

    async def scenario(notifier: Notifier, worker: AppriseWorker) -> float:
        first = await first_delivery(notifier, worker, receiver)
        os.kill(first, signal.SIGSTOP)
        started = time.monotonic()
        result = await notifier.send(channel(receiver, "ok", seconds=1), message())
        elapsed = time.monotonic() - started
        assert result == TIMED_OUT_1S
        assert gone(first)
        assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
        return elapsed

    elapsed = with_notifier(scenario, AppriseWorker(grace_s=1.0))
    assert elapsed >= 1.0  # it waited for the timeout and the grace...
    assert elapsed < 30 * 2  # ...not for ever
    assert paths(receiver) == [f"/ok/{TOKEN}", f"/ok/{TOKEN}"]  # the stopped one sent none


def test_child_that_dies_mid_delivery_is_a_retryable_failure_and_is_replaced(
    receiver: Receiver,
) -> None:
    async def scenario(notifier: Notifier, worker: AppriseWorker) -> None:
        first = await first_delivery(notifier, worker, receiver)
        sending = asyncio.create_task(notifier.send(channel(receiver, "hang", 300), message()))
        await asyncio.to_thread(receiver.wait_for_requests, 2)
        os.kill(first, signal.SIGKILL)
        result = await asyncio.wait_for(sending, WAIT_S)  # not the channel's 300 s
        assert result == DeliveryResult(False, False, None, "apprise worker died (signal 9)")
        assert gone(first)
        assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
        assert worker.pid not in (None, first)

    with_notifier(scenario)


def test_child_that_died_while_idle_is_replaced_without_losing_a_delivery(
    receiver: Receiver,
) -> None:
    async def scenario(notifier: Notifier, worker: AppriseWorker) -> None:
        first = await first_delivery(notifier, worker, receiver)
        os.kill(first, signal.SIGKILL)
        await asyncio.to_thread(wait_until_dead, first)
        assert await notifier.send(channel(receiver, "ok"), message()) == DELIVERED
        assert worker.pid not in (None, first)
        assert gone(first)

    with_notifier(scenario)
    assert len(receiver.received()) == 2


def test_child_that_cannot_fit_its_bound_fails_retryably_without_hanging(
    receiver: Receiver,
) -> None:
    """A bound too small for Apprise: a clear, retryable failure each time, never a hang.

    Out of address space, loading a library fails (an ImportError that says so, before any
    URL reached the child: its message can be shown) or an allocation does (MemoryError).
    """
    worker = AppriseWorker(memory_bytes=8 * MIB)

    async def scenario(notifier: Notifier, worker: AppriseWorker) -> list[DeliveryResult]:
        return [await notifier.send(channel(receiver, "ok"), message()) for _ in range(2)]

    results = with_notifier(scenario, worker)
    for result in results:
        assert (result.ok, result.permanent, result.status) == (False, False, None)
        assert result.detail == "apprise worker exceeded its memory bound (8 MiB)" or (
            result.detail.startswith("apprise worker could not start (ImportError: ")
        )
    assert receiver.received() == []


def test_concurrent_deliveries_are_served_one_at_a_time_by_one_child(receiver: Receiver) -> None:
    async def scenario(notifier: Notifier, worker: AppriseWorker) -> None:
        sends = [notifier.send(channel(receiver, "ok"), message()) for _ in range(4)]
        assert await asyncio.gather(*sends) == [DELIVERED] * 4
        assert worker.pid is not None

    with_notifier(scenario)
    assert len(receiver.received()) == 4


def test_closing_during_a_delivery_kills_the_child_at_once(receiver: Receiver) -> None:
    worker = AppriseWorker()

    async def go() -> tuple[DeliveryResult, int, float]:
        notifier = Notifier(apprise=worker)
        await notifier.__aenter__()
        pid = await first_delivery(notifier, worker, receiver)
        sending = asyncio.create_task(notifier.send(channel(receiver, "hang", 300), message()))
        await asyncio.to_thread(receiver.wait_for_requests, 2)
        started = time.monotonic()
        await notifier.aclose()
        closed_after = time.monotonic() - started
        return await asyncio.wait_for(sending, WAIT_S), pid, closed_after

    result, pid, closed_after = asyncio.run(go())
    assert (result.ok, result.permanent) == (False, False)
    assert closed_after < WAIT_S  # not the channel's 300 s
    assert gone(pid)


# --- secrets ---------------------------------------------------------------------------------


@pytest.fixture
def everything() -> Iterator[Capture]:
    with every_record() as capture:
        yield capture


def test_no_secret_in_logs_or_details_however_a_delivery_ends(
    receiver: Receiver, everything: Capture
) -> None:
    """The child quiets Apprise and urllib3 by itself: the parent's TRACE level cannot reach it."""
    unusable = ChannelConfig(
        name="unusable", type="apprise", url=f"nosuchscheme://user:{PASSWORD}@host/{TOKEN}"
    )

    async def scenario(notifier: Notifier, worker: AppriseWorker) -> list[DeliveryResult]:
        results = [
            await notifier.send(target, message())
            for target in (
                channel(receiver, "ok"),
                channel(receiver, "e500"),
                channel(receiver, "hang", seconds=1),
                unusable,
            )
        ]
        sending = asyncio.create_task(notifier.send(channel(receiver, "hang", 300), message()))
        await asyncio.to_thread(receiver.wait_for_requests, 4)
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return [*results, await asyncio.wait_for(sending, WAIT_S)]

    results = with_notifier(scenario)
    assert [(r.ok, r.permanent) for r in results] == [
        (True, False),
        (False, False),
        (False, False),
        (False, True),
        (False, False),
    ]
    assert all(TOKEN in path for path in paths(receiver))  # the secrets were in play
    output = everything.getvalue()
    assert "WARNING apprise" in output  # the child's warnings reach the parent's log...
    assert "DEBUG urllib3" not in output  # ...but never its debugging output
    assert "TRACE apprise" not in output
    for text, where in [(output, "the log"), *((r.detail, "a detail") for r in results)]:
        assert TOKEN not in text, where
        assert PASSWORD not in text, where
