"""Dispatch probes: take due endpoints up to the in-flight capacity, probe, judge and save.

Shell module, the engine of `monitor.service`: due times live in the database; this keeps
only what is in flight. An endpoint is never probed twice at once, a host never has more than
`probe.per_host` of its endpoints in flight (the others wait instead of occupying slots), and
finished probes are saved in waves so that one slow probe holds back nobody else's check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from monitor.config import Config
from monitor.discovery import FacilitatorClient
from monitor.models import CheckResult, Outcome, ProbeFacts
from monitor.probe import Prober, host_of, monitor_failure
from monitor.rounds import judge, save
from monitor.snapshot import DurationHistogram
from monitor.store import AlertContext, Store, StoredEndpoint

log = logging.getLogger("monitor.service")

FAILED_BATCH_BACKOFF = timedelta(seconds=30)
HOST_BUSY_RETRY = timedelta(seconds=1)
"""An endpoint whose host has `probe.per_host` probes in flight is looked at again this late."""
SAVE_EVERY = timedelta(seconds=1)
"""A batch saves the probes that finished at least this often (see run_batch)."""


class Dispatcher:
    """Keep up to 2 x `probe.concurrency` endpoints in flight; count what was saved."""

    def __init__(
        self,
        config: Config,
        store: Store,
        prober: Prober,
        *,
        clock: Callable[[], datetime],
        facilitators: FacilitatorClient | None,
        alerts: AlertContext | None,
        writer: asyncio.Lock,
        stopping: asyncio.Event,
        on_saved: Callable[[], None],
    ) -> None:
        self._config = config
        self._store = store
        self._prober = prober
        self._clock = clock
        self._facilitators = facilitators
        self._alerts = alerts
        self._writer = writer
        self._stopping = stopping
        self._on_saved = on_saved
        self.in_flight: set[int] = set()
        """Endpoints being probed now: never dispatched twice at once."""
        self._host_load: Counter[str] = Counter()
        """Endpoints in flight per host (see _hosts_permitting)."""
        self._backoff: dict[int, datetime] = {}
        """Endpoints not to dispatch before a time: a wave that could not be saved, a busy host."""
        self.batches: set[asyncio.Task[None]] = set()
        self.refills: set[asyncio.Task[None]] = set()
        self._filling = False
        self._refill = False
        self.probes_total: Counter[Outcome] = Counter()
        self.durations = DurationHistogram()
        self.rounds = 0
        self.last_round_at: datetime | None = None

    async def fill(self) -> None:
        """Start a batch of due endpoints up to the in-flight capacity (never twice at once).

        Runs on every tick and again whenever a batch finishes, so free probe slots are
        refilled at once instead of at the next tick. Calls that arrive while a fill is
        running make it go round once more instead of running beside it.
        """
        if self._filling:
            self._refill = True
            return
        self._filling = True
        try:
            self._refill = True
            while self._refill and not self._stopping.is_set():
                self._refill = False
                now = self._clock()
                self._backoff = {eid: until for eid, until in self._backoff.items() if until > now}
                capacity = self._config.probe.concurrency * 2 - len(self.in_flight)
                if capacity <= 0:
                    return
                exclude = list(self.in_flight | self._backoff.keys())
                due = await asyncio.to_thread(self._store.due, now, capacity, exclude)
                if not due or self._stopping.is_set():
                    return
                due = self._hosts_permitting(due, now)
                if not due:
                    continue  # every one was on a busy host: look further down the queue
                self.in_flight.update(endpoint.id for endpoint in due)
                task = asyncio.create_task(self._run_batch(due))
                self.batches.add(task)
                task.add_done_callback(self._batch_done)
        finally:
            self._filling = False

    def _hosts_permitting(self, due: list[StoredEndpoint], now: datetime) -> list[StoredEndpoint]:
        """Return the endpoints whose host has a free probe slot (`probe.per_host`).

        The others wait HOST_BUSY_RETRY instead of queueing in the prober: a slow host with
        many listings would otherwise fill every in-flight slot while its probes queue for
        its few host slots, and starve the rest of the fleet.
        """
        permitted = []
        for endpoint in due:
            host = host_of(endpoint.spec.url)
            if self._host_load[host] >= self._config.probe.per_host:
                self._backoff[endpoint.id] = now + HOST_BUSY_RETRY
                self._refill = True
                continue
            self._host_load[host] += 1
            permitted.append(endpoint)
        return permitted

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self.batches.discard(task)
        if not self._stopping.is_set():
            refill = asyncio.create_task(self.fill())
            self.refills.add(refill)
            refill.add_done_callback(self.refills.discard)

    async def _run_batch(self, endpoints: list[StoredEndpoint]) -> None:
        """Probe a batch; save what completed every SAVE_EVERY, and at shutdown what finished.

        Results are saved in waves, not all at the end: one probe that takes its whole
        timeout must not hold back the checks of the others, nor the slots of their hosts.
        A wave being saved when the service stops is saved whole.
        """
        started = time.perf_counter()
        tasks = {
            asyncio.create_task(self._prober.probe_many([endpoint.spec])): endpoint
            for endpoint in endpoints
        }
        pending = set(tasks)
        saving: asyncio.Future[int] | None = None
        try:
            while pending:
                done, pending = await asyncio.wait(pending, timeout=SAVE_EVERY.total_seconds())
                saving = asyncio.ensure_future(
                    self._save_wave([(tasks[task], task) for task in done], started)
                )
                await asyncio.shield(saving)
                saving = None
        except asyncio.CancelledError:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if saving is not None:
                await saving
            finished = [(tasks[task], task) for task in pending if not task.cancelled()]
            saved = await self._save_wave(finished, started)
            log.info("shutdown: saved %d of %d in-flight probes", saved, len(pending))
            raise
        finally:
            self._release(endpoints)

    async def _save_wave(
        self, wave: list[tuple[StoredEndpoint, asyncio.Task[list[ProbeFacts]]]], started: float
    ) -> int:
        """Judge and save the finished probes of a wave; return how many checks were saved.

        Their endpoints leave the in-flight set (and free their host slots) at once. A wave
        the store refuses backs off its endpoints; it never stops the service.
        """
        if not wave:
            return 0
        endpoints = [endpoint for endpoint, _ in wave]
        try:
            checks = await judge(
                endpoints,
                [self._facts_of(task, endpoint) for endpoint, task in wave],
                self._facilitators,
            )
            async with self._writer:
                saving = asyncio.ensure_future(
                    asyncio.to_thread(save, self._store, checks, self._config, self._alerts)
                )
                try:
                    await asyncio.shield(saving)
                except asyncio.CancelledError:
                    # A save a thread has begun ends: the store must not close under it.
                    await saving
                    raise
            self._count(checks, time.perf_counter() - started)
            return len(checks)
        except Exception:
            log.exception("round of %d probes could not be saved", len(wave))
            retry_at = self._clock() + FAILED_BATCH_BACKOFF
            self._backoff.update((endpoint.id, retry_at) for endpoint in endpoints)
            return 0
        finally:
            self._release(endpoints)

    def _release(self, endpoints: Sequence[StoredEndpoint]) -> None:
        """Take endpoints out of flight (idempotent), freeing their hosts' slots."""
        leaving = [endpoint for endpoint in endpoints if endpoint.id in self.in_flight]
        self.in_flight.difference_update(endpoint.id for endpoint in leaving)
        self._host_load.subtract(host_of(endpoint.spec.url) for endpoint in leaving)
        self._host_load += Counter()  # drop hosts with nothing in flight

    def _facts_of(
        self, task: asyncio.Task[list[ProbeFacts]], endpoint: StoredEndpoint
    ) -> ProbeFacts:
        """Return a finished probe task's facts; a task that raised is the monitor's failure."""
        error = task.exception()
        if error is None:
            return task.result()[0]
        return monitor_failure(endpoint.spec, error, self._clock())

    def _count(self, checks: list[tuple[StoredEndpoint, CheckResult]], seconds: float) -> None:
        outcomes: Counter[Outcome] = Counter(result.outcome for _, result in checks)
        self.probes_total.update(outcomes)
        for _, result in checks:
            if result.latency_ms is not None:
                self.durations = self.durations.observe(result.latency_ms / 1000)
        self.rounds += 1
        self.last_round_at = self._clock()
        self._on_saved()
        log.info(
            "round: %d probes in %.2f s (%s)",
            len(checks),
            seconds,
            ", ".join(f"{outcomes[o]} {o}" for o in Outcome),
        )
