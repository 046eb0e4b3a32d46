"""The monitor's side of the probe benchmark: its config, probe-only passes, pipeline, service.

Everything goes through the monitor's real code path: `parse_config`, `Prober.probe_many`,
`service.judge` and `service.save` (`Store.save_round`), `MonitorService`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loopback_targets import Fleet
from probe_clients import Client, make_transport

from monitor.config import Config, parse_config
from monitor.models import CheckResult, EndpointSpec, ProbeFacts
from monitor.probe import Prober
from monitor.service import MonitorService, judge, save
from monitor.store import Store, StoredEndpoint

PER_HOST = 1000
BATCHES_IN_FLIGHT = 2
"""MonitorService._dispatch keeps at most 2 x concurrency endpoints in flight."""


def bench_config(urls: Sequence[str], database: Path, concurrency: int, interval: str) -> Config:
    """Return the monitor config of a run, through the real parser."""
    document = {
        "database": str(database),
        "probe": {
            "concurrency": concurrency,
            "per_host": PER_HOST,
            "allow_private_addresses": True,
            "interval": interval,
            "timeout": "10s",
        },
        "endpoints": [{"url": url} for url in urls],
    }
    return parse_config(document, {})


def now() -> datetime:
    return datetime.now(UTC)


def prober(config: Config, client: Client, fleet: Fleet | None = None) -> Prober:
    transport = make_transport(client, config.probe, fleet)
    return Prober(config.probe, clock=now, transport=transport)


async def probe_only(
    config: Config, specs: Sequence[EndpointSpec], client: Client, fleet: Fleet | None = None
) -> tuple[float, list[ProbeFacts]]:
    """Probe every spec once through `Prober.probe_many`; return (seconds, facts)."""
    async with prober(config, client, fleet) as probes:
        started = time.perf_counter()
        facts = await probes.probe_many(specs)
        return time.perf_counter() - started, facts


async def pipeline(
    config: Config,
    store: Store,
    endpoints: Sequence[StoredEndpoint],
    batch: int,
    client: Client,
    fleet: Fleet | None = None,
) -> tuple[float, list[tuple[StoredEndpoint, CheckResult]]]:
    """Probe, judge and save every endpoint in batches, two in flight; return (seconds, checks).

    Like `MonitorService._run_batch`: a batch is probed, judged, then saved in one transaction
    in a worker thread under a writer lock, while the next batch keeps probing.
    """
    writer = asyncio.Lock()
    window = asyncio.Semaphore(BATCHES_IN_FLIGHT)
    checks: list[tuple[StoredEndpoint, CheckResult]] = []

    async def one_batch(probes: Prober, chunk: Sequence[StoredEndpoint]) -> None:
        try:
            facts = await probes.probe_many([endpoint.spec for endpoint in chunk])
            judged = await judge(chunk, facts, None)
            async with writer:
                await asyncio.to_thread(save, store, judged, config)
            checks.extend(judged)
        finally:
            window.release()

    async with prober(config, client, fleet) as probes:
        started = time.perf_counter()
        tasks = []
        for start in range(0, len(endpoints), batch):
            await window.acquire()
            chunk = endpoints[start : start + batch]
            tasks.append(asyncio.create_task(one_batch(probes, chunk)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - started, checks


async def service(
    config: Config, store: Store, seconds: float, client: Client
) -> tuple[float, object]:
    """Run MonitorService (interval 1 s: always due) for `seconds`; return (checks/s, rounds)."""
    async with prober(config, client) as probes:
        monitor = MonitorService(config, store, probes, clock=now)
        await monitor.start()
        try:
            await asyncio.sleep(min(3.0, seconds / 3))  # start-up: resume, snapshot, rollup
            before = await asyncio.to_thread(store.count_checks)
            started = time.perf_counter()
            await asyncio.sleep(seconds)
            after = await asyncio.to_thread(store.count_checks)
            elapsed = time.perf_counter() - started
        finally:
            await monitor.stop(timedelta(seconds=10))
            # stop() does not wait for a dispatch tick already running; let it end in peace.
            running_jobs = asyncio.all_tasks() - {asyncio.current_task()}
            if running_jobs:
                await asyncio.wait(running_jobs, timeout=5)
        return (after - before) / elapsed, monitor.health()[1].get("rounds")
