"""Run the monitor: probe rounds, and the long-running service driven by APScheduler.

Shell module: the only place (with cli) that wires edges together. The store hands out due
endpoints, the prober probes them, `assess` judges each answer, the facilitator client adds
its verdict, and the store saves each batch in one transaction. APScheduler runs a handful of
periodic jobs (dispatch every second, snapshot, render, rollup); due times live in the
database, never as one scheduler job per endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.alerts import Notifier
from monitor.config import Config, SourceConfig
from monitor.discovery import FacilitatorClient
from monitor.dispatch import Dispatcher
from monitor.indexing import CrawlSummary, crawl_source, crawler_for
from monitor.notify import ALERTMANAGER_REPOST, alert_context, deliver_due, repost_firing
from monitor.pages import snapshot_endpoint
from monitor.probe import Prober
from monitor.rounds import RoundReport, judge, judge_one, probe_round, save
from monitor.snapshot import MonitorSnapshot
from monitor.store import Store

__all__ = ["MonitorService", "RoundReport", "judge", "judge_one", "probe_round", "save"]

log = logging.getLogger(__name__)

DISPATCH_PERIOD = timedelta(seconds=0.25)
"""Each tick starts at most 2 x concurrency probes, so 4 ticks a second let 20,000 endpoints at
60 s (333 probes/s) run with the default concurrency; the due query is one indexed SELECT."""
SNAPSHOT_PERIOD = timedelta(seconds=5)
SNAPSHOT_BUDGET = 10
"""A snapshot refresh may take at most 1/SNAPSHOT_BUDGET of the time (see _snapshot_job)."""
ROLLUP_PERIOD = timedelta(hours=1)
STALE_AFTER = timedelta(seconds=15)
"""/healthz turns 503 when the last dispatch tick is older than this."""
DELIVERY_PERIOD = timedelta(seconds=2)
ALERT_TICK_PERIOD = timedelta(seconds=30)


class MonitorService:
    """The long-running monitor: periodic jobs over one store, one prober, one event loop.

    `render` (optional) turns a snapshot into the site; it runs in a worker thread so a slow
    render never delays probing. Everything time-related reads `clock`.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        prober: Prober,
        *,
        clock: Callable[[], datetime],
        facilitators: FacilitatorClient | None = None,
        render: Callable[[MonitorSnapshot], object] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self._store = store
        self._prober = prober
        self._clock = clock
        self._facilitators = facilitators
        self._render = render
        self._notifier = notifier
        self._alerts = alert_context(config)
        self._notifications: Counter[tuple[str, str]] = Counter()
        self._scheduler = AsyncIOScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
        )
        self._writer = asyncio.Lock()
        self._jobs: set[asyncio.Task[None]] = set()
        """Periodic jobs running now (stop waits for them)."""
        self.stopping = asyncio.Event()
        self.dispatcher = Dispatcher(  # what is in flight, and what the saves counted
            config,
            store,
            prober,
            clock=clock,
            facilitators=facilitators,
            alerts=self._alerts,
            writer=self._writer,
            stopping=self.stopping,
            on_saved=self._saw_change,
        )
        self._last_dispatch_at: datetime | None = None
        self._lag = 0.0
        self._changed = True
        self._rendered_at: datetime | None = None
        self.snapshot: MonitorSnapshot | None = None
        self._snapshot_not_before = 0.0
        self.discovery: dict[str, CrawlSummary] = {}
        """The latest crawl of each source."""

    def _saw_change(self) -> None:
        self._changed = True

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the schedule from the database and start the periodic jobs."""
        now = self._clock()
        resumed = await asyncio.to_thread(self._store.resume, now, self.config.probe.interval)
        log.info("resumed: %d endpoints rescheduled over one interval", resumed)
        await self._refresh_snapshot()
        jobs: list[tuple[Callable[[], Any], timedelta]] = [
            (self._dispatch, DISPATCH_PERIOD),
            (self._snapshot_job, SNAPSHOT_PERIOD),
            (self._roll_up, ROLLUP_PERIOD),
        ]
        if self._alerts is not None and self._notifier is not None:
            retried = await asyncio.to_thread(self._store.retry_pending_now, now)
            if retried:
                log.info("alerts: %d pending notifications from before the restart", retried)
            jobs += [
                (self._deliver, DELIVERY_PERIOD),
                (self._alert_tick, ALERT_TICK_PERIOD),
                (self._repost, ALERTMANAGER_REPOST),
            ]
        if self._render is not None:
            jobs.append((self._render_site, min(self.config.site.render_interval, SNAPSHOT_PERIOD)))
        for source in self.config.sources:
            # One job per catalogue; the first crawl starts right away (or resumes).
            self._scheduler.add_job(
                self._job(functools.partial(self._discover, source)),
                "interval",
                seconds=source.refresh.total_seconds(),
                id=f"discover-{source.name}",
                name=f"discover-{source.name}",
                next_run_time=datetime.now(UTC),
            )
        for job, period in jobs:
            self._scheduler.add_job(
                self._job(job),
                "interval",
                seconds=period.total_seconds(),
                id=job.__name__,
                name=job.__name__,
            )
        self._scheduler.add_job(self._job(self._roll_up), id="initial-rollup", name="rollup")
        self._scheduler.start()

    def _job(self, function: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """Wrap a periodic job so that stop() can wait for it, and cancelling it logs nothing.

        APScheduler logs a job that ends in CancelledError as a failure with its traceback;
        a job cancelled because the service stops has not failed.
        """

        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._jobs.add(task)
            try:
                await function()
            except asyncio.CancelledError:
                if not self.stopping.is_set():
                    raise
            finally:
                self._jobs.discard(task)

        return run

    async def stop(self, timeout: timedelta) -> None:
        """Stop dispatching; let in-flight probes and jobs finish for `timeout`, then cancel.

        Checks that completed before the deadline are committed, cancelled ones are not. A
        clean stop logs no traceback.
        """
        self.stopping.set()
        deadline = asyncio.get_running_loop().time() + timeout.total_seconds()
        if self._scheduler.running:
            self._scheduler.pause()  # no new job runs; running ones end below
        await asyncio.gather(*self.dispatcher.refills, return_exceptions=True)
        if self.dispatcher.batches:
            log.info(
                "stopping: waiting up to %s for %d batches", timeout, len(self.dispatcher.batches)
            )
        await self._drain(self.dispatcher.batches, deadline)
        await self._drain(self._jobs, deadline)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        log.info("stopped after %d rounds", self.dispatcher.rounds)

    @staticmethod
    async def _drain(tasks: set[asyncio.Task[None]], deadline: float) -> None:
        """Wait for `tasks` until `deadline` (loop time), then cancel what is left."""
        if not tasks:
            return
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        _, pending = await asyncio.wait(set(tasks), timeout=remaining)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- jobs -------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Tick: note the scheduler's lag, then start batches for the due endpoints."""
        if self.stopping.is_set():
            return
        now = self._clock()
        if self._last_dispatch_at is not None:
            late = (now - self._last_dispatch_at - DISPATCH_PERIOD).total_seconds()
            self._lag = max(0.0, late)
        self._last_dispatch_at = now
        await self.dispatcher.fill()

    async def _snapshot_job(self) -> None:
        """Refresh the snapshot, unless the last refresh's cost says to wait.

        Loading every endpoint holds the GIL for a while at 20,000 endpoints, so a refresh
        that took d seconds waits SNAPSHOT_BUDGET x d before the next one: probing always
        gets the larger share of the CPU, and the snapshot's age stays a small multiple of
        what it costs.
        """
        if time.monotonic() >= self._snapshot_not_before:
            await self._refresh_snapshot()

    async def _refresh_snapshot(self) -> None:
        """Rebuild the snapshot that /metrics, /healthz and the site read."""
        started = time.monotonic()
        endpoints = await asyncio.to_thread(self._store.endpoints)
        now = self._clock()
        self.snapshot = MonitorSnapshot(
            taken_at=now,
            endpoints=tuple(snapshot_endpoint(endpoint, now) for endpoint in endpoints),
            probes_total=dict(self.dispatcher.probes_total),
            probe_durations=self.dispatcher.durations,
            scheduler_lag_seconds=self._lag,
            probes_in_flight=len(self.dispatcher.in_flight),
            rounds_total=self.dispatcher.rounds,
            last_round_at=self.dispatcher.last_round_at,
            alerts_firing=sum(endpoint.alert_firing for endpoint in endpoints),
            discovery_items={
                (name, result): count
                for name, summary in self.discovery.items()
                for result, count in _discovery_counts(summary).items()
            },
            last_discovery_at={
                name: summary.finished_at
                for name, summary in self.discovery.items()
                if summary.finished_at is not None
            },
            notifications_total=dict(self._notifications),
        )
        self._snapshot_not_before = started + SNAPSHOT_BUDGET * (time.monotonic() - started)

    async def _deliver(self) -> None:
        if self._notifier is not None:
            await deliver_due(
                self._store, self._notifier, self.config, self._clock, self._notifications
            )

    async def _alert_tick(self) -> None:
        if self._alerts is not None:
            async with self._writer:
                await asyncio.to_thread(self._store.alert_tick, self._clock(), self._alerts)

    async def _repost(self) -> None:
        if self._notifier is not None:
            await repost_firing(self._store, self._notifier, self.config, self._clock)

    async def _discover(self, source: SourceConfig) -> None:
        try:
            async with crawler_for(source, self.config) as crawler:
                summary = await crawl_source(
                    self._store, crawler, source, self.config, self._clock, writer=self._writer
                )
        except Exception:
            log.exception("discovery %s failed; indexed endpoints are kept", source.name)
            return
        self.discovery[source.name] = summary
        self._changed = True

    async def _roll_up(self) -> None:
        written, deleted = await asyncio.to_thread(
            self._store.roll_up_and_prune, self._clock(), self.config.retention.raw
        )
        if written or deleted:
            log.info("rollup: %d day rows written, %d raw checks deleted", written, deleted)

    async def _render_site(self) -> None:
        now = self._clock()
        due = (
            self._rendered_at is None or now - self._rendered_at >= self.config.site.render_interval
        )
        if self._render is None or self.snapshot is None or not (self._changed and due):
            return
        self._changed = False
        self._rendered_at = now
        try:
            await asyncio.to_thread(self._render, self.snapshot)
        except Exception:
            log.exception("site render failed; the previous site stays in place")

    # -- health -----------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, object]]:
        """Return the /healthz answer: 200 while dispatch ticks, 503 when it went stale."""
        now = self._clock()
        last = self._last_dispatch_at
        last_round = self.dispatcher.last_round_at
        ticking = last is not None and now - last <= STALE_AFTER and not self.stopping.is_set()
        body: dict[str, object] = {
            "status": "ok" if ticking else "stale",
            "last_dispatch": last.isoformat() if last else None,
            "last_round": last_round.isoformat() if last_round else None,
            "rounds": self.dispatcher.rounds,
            "in_flight": len(self.dispatcher.in_flight),
            "endpoints": len(self.snapshot.endpoints) if self.snapshot else 0,
        }
        return (200 if ticking else 503), body


def _discovery_counts(summary: CrawlSummary) -> dict[str, int]:
    counts = {
        "seen": summary.seen,
        "new": summary.new,
        "updated": summary.updated,
        "delisted": summary.delisted,
    }
    counts.update({f"rejected_{reason}": n for reason, n in summary.rejected.items()})
    return counts
