"""The service driven by a fake clock against the loopback demo seller: dispatch, spreading,
no double probing, resume after restart, shutdown that commits what finished."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from loopback_receivers import Answer, Received, Receiver
from scripted_server import until

from monitor.config import Config, parse_config
from monitor.models import EndpointSpec, ProbeFacts, Status
from monitor.probe import Prober
from monitor.service import MonitorService
from monitor.store import Store


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
HOLD_S = 60.0
"""Longest a test waits for an event; reached only when the test is broken."""


def held_free(request: Received) -> Answer:
    """Answer `200 free` once the test sets `release`: a probe held in flight until then."""
    return Answer(200, body=b"free", hold="before")


@pytest.fixture
def held() -> Iterator[Receiver]:
    with Receiver(held_free) as server:
        yield server


class WatchedProber(Prober):
    """A Prober that notes the URL of every probe that has finished."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished: list[str] = []

    async def probe(self, spec: EndpointSpec) -> ProbeFacts:
        facts = await super().probe(spec)
        self.finished.append(spec.url)
        return facts


@contextlib.asynccontextmanager
async def resumed_service(
    config: Config, store: Store, clock: FakeClock, prober: Prober | None = None
) -> AsyncIterator[MonitorService]:
    """Yield a service over `store` with `prober` open (a new one by default), due times resumed."""
    async with prober if prober is not None else Prober(config.probe, clock=clock) as opened:
        service = MonitorService(config, store, opened, clock=clock)
        store.resume(clock(), config.probe.interval)
        yield service


def _config(demo_url: str, paths: list[str], **probe: object) -> Config:
    return _config_urls([demo_url + path for path in paths], **probe)


def _config_urls(urls: list[str], **probe: object) -> Config:
    # The probe timeout is far above a loopback answer: a busy machine must not turn the
    # demo seller's answers into timeouts (tests of timeouts set their own).
    settings: dict[str, object] = {"interval": "1m", "timeout": "30s"}
    settings.update(probe, allow_private_addresses=True)
    return parse_config(
        {"probe": settings, "endpoints": [{"url": url, "method": "GET"} for url in urls]}, {}
    )


def _store(tmp_path: Path, config: Config) -> Store:
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    store.sync_config_endpoints([e.to_spec() for e in config.endpoints], T0)
    return store


async def _drain(service: MonitorService) -> None:
    """Wait for every batch and for the refills that finished batches start."""
    while service.dispatcher.batches or service.dispatcher.refills:
        await asyncio.gather(
            *service.dispatcher.batches, *service.dispatcher.refills, return_exceptions=True
        )


def test_dispatch_probes_due_endpoints_once_per_interval(tmp_path: Path, demo_url: str) -> None:
    paths = [f"/v1/valid?n={index}" for index in range(40)]
    config = _config(demo_url, paths)
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def scenario() -> list[int]:
        async with Prober(config.probe, clock=clock) as prober:
            service = MonitorService(config, store, prober, clock=clock)
            assert store.resume(clock(), config.probe.interval) == 40
            probed_per_second = []
            for _ in range(60):  # one interval, a dispatch tick per second
                clock.advance(timedelta(seconds=1))
                before = store.count_checks()
                await service._dispatch()
                await _drain(service)
                probed_per_second.append(store.count_checks() - before)
            # Spread: 40 endpoints over 60 ticks, never all at once.
            assert sum(probed_per_second) == 40
            assert max(probed_per_second) <= 6
            # A second interval probes each endpoint exactly once more.
            for _ in range(60):
                clock.advance(timedelta(seconds=1))
                await service._dispatch()
                await _drain(service)
            return probed_per_second

    asyncio.run(scenario())
    assert store.count_checks() == 80
    for endpoint in store.endpoints():
        assert endpoint.state.status is Status.HEALTHY
        assert endpoint.next_check_at is not None
        assert endpoint.next_check_at > T0 + timedelta(minutes=2)


def test_an_endpoint_is_never_probed_twice_at_once(tmp_path: Path, held: Receiver) -> None:
    config = _config_urls([held.base_url + "/held"])
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with resumed_service(config, store, clock) as service:
            clock.advance(timedelta(minutes=2))  # overdue
            await service._dispatch()
            assert len(service.dispatcher.batches) == 1
            await until(lambda: len(held.received()) == 1, "probe at the held endpoint", HOLD_S)
            # Ticks while the probe is held in flight and the endpoint is still overdue. The
            # clock stays put: the endpoint's next slot after this check may lie a few seconds
            # ahead, and a later tick would then rightly probe it again.
            for _ in range(5):
                await service._dispatch()
            assert len(service.dispatcher.batches) == 1
            held.release.set()
            await _drain(service)

    asyncio.run(scenario())
    assert store.count_checks() == 1
    assert len(held.received()) == 1


def test_restart_resumes_from_the_database(tmp_path: Path, demo_url: str) -> None:
    config = _config(demo_url, ["/v1/valid", "/error"])
    clock = FakeClock(T0)

    async def run_for(seconds: int) -> None:
        store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
        store.sync_config_endpoints([e.to_spec() for e in config.endpoints], clock())
        async with resumed_service(config, store, clock) as service:
            for _ in range(seconds):
                clock.advance(timedelta(seconds=1))
                await service._dispatch()
                await _drain(service)
        store.close()

    asyncio.run(run_for(60))
    first = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    due_before = {e.slug: e.next_check_at for e in first.endpoints()}
    assert first.count_checks() == 2
    first.close()
    # Restart 10 s later: due times in the future are kept, history continues.
    clock.advance(timedelta(seconds=10))
    asyncio.run(run_for(60))
    second = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    assert second.count_checks() == 4
    error = next(e for e in second.endpoints() if e.spec.url.endswith("/error"))
    assert error.state.consecutive_failures == 2
    assert error.state.status is Status.DOWN
    assert all(due is not None for due in due_before.values())


def test_shutdown_commits_finished_probes_and_cancels_the_rest(
    tmp_path: Path, demo_url: str, held: Receiver
) -> None:
    # The held probe could only end by its 60 s timeout or its release after stop() returned:
    # a stop() that waited for it instead of cancelling takes a minute and saves 2 checks.
    config = _config_urls([demo_url + "/v1/valid", held.base_url + "/held"], timeout="60s")
    store = _store(tmp_path, config)
    clock = FakeClock(T0)
    grace = timedelta(seconds=0.2)

    async def scenario() -> float:
        prober = WatchedProber(config.probe, clock=clock)
        async with resumed_service(config, store, clock, prober) as service:
            clock.advance(timedelta(minutes=2))
            await service._dispatch()
            await until(
                lambda: (
                    any(url.endswith("/v1/valid") for url in prober.finished)
                    and len(held.received()) == 1
                ),
                "finished fast probe beside the held one",
                HOLD_S,
            )
            loop = asyncio.get_running_loop()
            started = loop.time()
            await service.stop(grace)
            took = loop.time() - started
            assert not held.release.is_set()
            assert prober.finished == [demo_url + "/v1/valid"]
            return took

    took = asyncio.run(scenario())
    assert took < 50 * grace.total_seconds()  # generous for a busy machine, far below 60 s
    assert store.count_checks() == 1
    saved = [e for e in store.endpoints() if e.state.last_checked_at is not None]
    assert [e.spec.url.rsplit("/", 1)[1] for e in saved] == ["valid"]


def test_health_turns_stale_without_dispatch(tmp_path: Path, demo_url: str) -> None:
    config = _config(demo_url, ["/v1/valid"])
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with Prober(config.probe, clock=clock) as prober:
            service = MonitorService(config, store, prober, clock=clock)
            assert service.health()[0] == 503  # not ticking yet
            await service._dispatch()
            code, body = service.health()
            assert code == 200
            assert body["status"] == "ok"
            clock.advance(timedelta(minutes=1))
            assert service.health()[0] == 503

    asyncio.run(scenario())


@pytest.mark.parametrize("outcome_path", ["/free"])
def test_snapshot_reflects_the_store(tmp_path: Path, demo_url: str, outcome_path: str) -> None:
    config = _config(demo_url, ["/v1/valid", outcome_path])
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with resumed_service(config, store, clock) as service:
            clock.advance(timedelta(minutes=2))
            await service._dispatch()
            await _drain(service)
            await service._refresh_snapshot()
            snapshot = service.snapshot
            assert snapshot is not None
            by_url = {e.url.rsplit("/", 1)[1]: e for e in snapshot.endpoints}
            assert by_url["valid"].up is True
            assert by_url["valid"].status is Status.HEALTHY
            assert by_url[outcome_path.strip("/")].up is False
            assert snapshot.rounds_total == 1
            assert sum(snapshot.probes_total.values()) == 2

    asyncio.run(scenario())


def test_a_finished_batch_refills_the_free_slots_without_a_tick(
    tmp_path: Path, demo_url: str
) -> None:
    # Concurrency 1: a batch holds at most 2 endpoints. One tick with 7 overdue endpoints
    # probes all of them only if each finished batch starts the next one itself.
    config = _config(demo_url, [f"/v1/valid?n={index}" for index in range(7)], concurrency=1)
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with resumed_service(config, store, clock) as service:
            clock.advance(timedelta(minutes=2))  # every endpoint overdue
            await service._dispatch()
            assert len(service.dispatcher.in_flight) == 2  # the tick starts one batch of 2
            await _drain(service)

    asyncio.run(scenario())
    assert store.count_checks() == 7


def test_snapshot_job_waits_after_a_refresh_until_its_budget_allows(
    tmp_path: Path, demo_url: str
) -> None:
    config = _config(demo_url, ["/v1/valid"])
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def scenario() -> None:
        async with Prober(config.probe, clock=clock) as prober:
            service = MonitorService(config, store, prober, clock=clock)
            await service._snapshot_job()
            first = service.snapshot
            assert first is not None
            assert service._snapshot_not_before > 0  # paced by the refresh's own duration
            service._snapshot_not_before = float("inf")
            await service._snapshot_job()
            assert service.snapshot is first  # within the budget: no refresh
            service._snapshot_not_before = 0.0
            await service._snapshot_job()
            assert service.snapshot is not first

    asyncio.run(scenario())


def test_each_probe_is_logged_at_debug_and_only_the_round_at_info(
    tmp_path: Path, demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(demo_url, ["/v1/valid", "/error"])
    store = _store(tmp_path, config)
    clock = FakeClock(T0)

    async def one_round() -> None:
        async with resumed_service(config, store, clock) as service:
            clock.advance(timedelta(minutes=2))
            await service._dispatch()
            await _drain(service)

    with caplog.at_level(logging.INFO, logger="monitor"):
        asyncio.run(one_round())
    assert not [r for r in caplog.records if r.getMessage().startswith("probe ")]
    assert [r for r in caplog.records if r.getMessage().startswith("round: 2 probes")]
    caplog.clear()
    clock.advance(timedelta(minutes=2))
    with caplog.at_level(logging.DEBUG, logger="monitor"):
        asyncio.run(one_round())
    probes = sorted(r.getMessage() for r in caplog.records if r.getMessage().startswith("probe "))
    assert len(probes) == 2
    assert probes[0].startswith(f"probe GET {demo_url}/error -> hard_fail (HTTP 500")
    assert probes[1].startswith(f"probe GET {demo_url}/v1/valid -> pass (HTTP 402")
