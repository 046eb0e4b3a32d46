"""The service under failures of its own making: one endpoint's crash costs one check, a
broken check is never re-dispatched in a tight loop, and a stop in the middle of a render or a
probe logs no traceback.

Real loopback endpoints (the demo seller) and a real SQLite file; the clock is a fake one the
test moves, so dispatch happens only when the test says so.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from loopback_receivers import Receiver
from scripted_server import until
from test_service import HOLD_S, T0, FakeClock, _drain, _store, held_free, resumed_service
from test_service import _config_urls as _config

from monitor.config import Config
from monitor.models import Status
from monitor.probe import Http1Transport, Prober, resolve
from monitor.service import MonitorService, probe_round
from monitor.snapshot import MonitorSnapshot


class BrokenResolver:
    """Resolves like the system, except that one host name makes it raise (a defect of ours)."""

    def __init__(self, broken: str) -> None:
        self.broken = broken
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        if host == self.broken:
            self.calls += 1
            raise RuntimeError("resolver bug")
        return await resolve(host, port)


def _prober(config: Config, clock: FakeClock, resolver: BrokenResolver) -> Prober:
    transport = Http1Transport(
        ssl_context=ssl.create_default_context(), policy=None, resolver=resolver
    )
    return Prober(config.probe, clock=clock, transport=transport)


def test_a_crash_while_probing_is_one_check_and_the_round_is_kept(
    tmp_path: Path, demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = demo_url.rsplit(":", 1)[1]
    config = _config([demo_url + "/v1/valid", f"http://broken.test:{port}/v1/valid"])
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with _prober(config, clock, BrokenResolver("broken.test")) as prober:
            await probe_round(store, prober, store.endpoints(), config)

    asyncio.run(scenario())
    by_url = {endpoint.spec.url: endpoint for endpoint in store.endpoints()}
    healthy = by_url[demo_url + "/v1/valid"]
    broken = by_url[f"http://broken.test:{port}/v1/valid"]
    assert healthy.state.status is Status.HEALTHY
    assert broken.last_error == "monitor error: RuntimeError: resolver bug"
    assert broken.state.last_checked_at is not None  # checked, and inconclusive:
    assert broken.state.status is Status.UNKNOWN  # it neither passed nor failed
    assert store.count_checks() == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # logged once, with its traceback
    assert errors[0].exc_info is not None


def test_a_crashing_endpoint_is_rescheduled_like_any_other(tmp_path: Path, demo_url: str) -> None:
    # Unfixed: the failed task was dropped, the endpoint stayed due, and every tick probed it
    # again: thousands of requests in seconds, no check stored.
    port = demo_url.rsplit(":", 1)[1]
    config = _config([f"http://broken.test:{port}/v1/valid", demo_url + "/v1/valid"])
    store = _store(tmp_path, config)
    clock = FakeClock(T0)
    resolver = BrokenResolver("broken.test")

    async def scenario() -> None:
        prober = _prober(config, clock, resolver)
        async with resumed_service(config, store, clock, prober) as service:
            for _ in range(3):  # three intervals, each ticked 10 times at its end
                clock.advance(config.probe.interval)
                for _ in range(10):
                    await service._dispatch()
                    await _drain(service)

    asyncio.run(scenario())
    assert resolver.calls == 3  # once per interval, however often the dispatch ticks
    assert store.count_checks() == 6
    for endpoint in store.endpoints():
        assert endpoint.next_check_at is not None
        assert endpoint.next_check_at > clock()


def test_a_stop_while_a_render_and_a_dispatch_run_logs_no_traceback(
    tmp_path: Path, demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config([demo_url + f"/slow?n={n}" for n in range(3)], interval="1s")
    store = _store(tmp_path, config)
    rendering = threading.Event()
    release = threading.Event()

    def render(snapshot: MonitorSnapshot) -> None:
        rendering.set()
        release.wait(HOLD_S)  # a render still running when the service stops

    async def scenario() -> None:
        async with Prober(config.probe, clock=lambda: datetime.now(UTC)) as prober:
            service = MonitorService(
                config, store, prober, clock=lambda: datetime.now(UTC), render=render
            )
            await service.start()
            await until(
                lambda: rendering.is_set() and bool(service.dispatcher.in_flight),
                "render and probe in flight together",
                HOLD_S,
            )
            # The render is still held when the stop's 0.5 s are up: its job is cancelled
            # while its thread runs, whatever the machine's load. The thread then ends on
            # its own.
            await service.stop(timedelta(seconds=0.5))
            release.set()

    caplog.set_level(logging.DEBUG)
    asyncio.run(asyncio.wait_for(scenario(), HOLD_S))
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]
    assert "CancelledError" not in caplog.text


def test_a_slow_host_with_many_listings_never_starves_the_others(
    tmp_path: Path, demo_url: str
) -> None:
    # Unfixed: the due queue handed every in-flight slot to the tarpit's endpoints, which then
    # queued for its one host slot, and the healthy endpoints waited for all of them.
    with Receiver(held_free) as tarpit:  # every answer held until `release`
        slow = [f"http://localhost:{tarpit.port}/held?n={n}" for n in range(30)]
        healthy = [demo_url + f"/v1/valid?n={n}" for n in range(3)]
        config = _config(slow + healthy, concurrency=2, per_host=1, timeout="60s")
        store = _store(tmp_path, config)
        clock = FakeClock(T0)

        async def scenario() -> None:
            async with resumed_service(config, store, clock) as service:
                clock.advance(config.probe.interval)  # everything due at once
                loop = asyncio.get_running_loop()
                deadline = loop.time() + HOLD_S
                while store.count_checks() < len(healthy):  # a dispatch tick a (fake) second
                    assert loop.time() < deadline, "the healthy endpoints were never checked"
                    await service._dispatch()
                    await asyncio.sleep(0.05)
                    clock.advance(timedelta(seconds=1))
                # One slot for the slow host, the others for the rest.
                assert len(tarpit.received()) == 1
                tarpit.release.set()
                await service.stop(timedelta(seconds=HOLD_S))

        asyncio.run(asyncio.wait_for(scenario(), 2 * HOLD_S))
    checked = {e.spec.url for e in store.endpoints() if e.state.last_checked_at is not None}
    assert set(healthy) <= checked
