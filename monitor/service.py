"""Run the monitor: probe rounds, and the long-running service driven by APScheduler.

Shell module: the only place (with cli) that wires edges together. The store hands out due
endpoints, the prober probes them, `assess` judges each answer, the facilitator client adds
its verdict, and the store saves each batch in one transaction. APScheduler runs a handful of
periodic jobs (dispatch every second, snapshot, render, rollup); due times live in the
database, never as one scheduler job per endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.alerts import Notifier
from monitor.assess import assess
from monitor.config import Config, SourceConfig
from monitor.discovery import FacilitatorClient
from monitor.indexing import CrawlSummary, crawl_source, crawler_for
from monitor.models import CheckResult, EndpointSpec, Outcome, ProbeFacts
from monitor.notify import ALERTMANAGER_REPOST, alert_context, deliver_due, repost_firing
from monitor.pages import snapshot_endpoint
from monitor.probe import Prober
from monitor.snapshot import DurationHistogram, MonitorSnapshot
from monitor.store import AlertContext, Store, StoredEndpoint, StoredFlip

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
FAILED_BATCH_BACKOFF = timedelta(seconds=30)
DELIVERY_PERIOD = timedelta(seconds=2)
ALERT_TICK_PERIOD = timedelta(seconds=30)


@dataclass(frozen=True)
class RoundReport:
    """What one probe round did: each endpoint with its check, and the flips it caused."""

    checks: list[tuple[StoredEndpoint, CheckResult]]
    flips: list[StoredFlip]


async def judge_one(
    spec: EndpointSpec, facts: ProbeFacts, facilitators: FacilitatorClient | None
) -> CheckResult:
    """Assess one answer and, where a facilitator is known, add its verdict."""
    result = assess(facts)
    if facilitators is not None and spec.facilitator:
        verdict, findings = (await facilitators.supported(spec.facilitator)).verdict(
            result.challenge
        )
        result = replace(result, facilitator_verdict=verdict, facilitator_findings=tuple(findings))
    if log.isEnabledFor(logging.DEBUG):  # the one per-probe line; skipped work on the hot path
        log.debug(
            "probe %s %s -> %s (HTTP %s, %s ms): %s",
            result.method,
            spec.url,
            result.outcome,
            result.http_status,
            None if result.latency_ms is None else round(result.latency_ms),
            result.error or "ok",
        )
    return result


async def judge(
    endpoints: Sequence[StoredEndpoint],
    facts: Sequence[ProbeFacts],
    facilitators: FacilitatorClient | None,
) -> list[tuple[StoredEndpoint, CheckResult]]:
    """Judge every answer of a batch (see judge_one)."""
    return [
        (endpoint, await judge_one(endpoint.spec, fact, facilitators))
        for endpoint, fact in zip(endpoints, facts, strict=True)
    ]


def save(
    store: Store,
    checks: Sequence[tuple[StoredEndpoint, CheckResult]],
    config: Config,
    alerts: AlertContext | None = None,
) -> list[StoredFlip]:
    """Store checks (and their alert notifications) in one transaction; log every flip."""
    flips = store.save_round(
        [(endpoint.id, result) for endpoint, result in checks],
        config.thresholds,
        config.probe.interval,
        alerts,
    )
    by_id = {endpoint.id: endpoint for endpoint, _ in checks}
    for stored in flips:
        flip = stored.flip
        log.info(
            "status of %s: %s -> %s (%s)",
            by_id[stored.endpoint_id].spec.url,
            flip.from_status,
            flip.to_status,
            flip.reason,
        )
    return flips


async def probe_round(
    store: Store,
    prober: Prober,
    endpoints: Sequence[StoredEndpoint],
    config: Config,
    on_result: Callable[[ProbeFacts], None] | None = None,
    facilitators: FacilitatorClient | None = None,
    alerts: AlertContext | None = None,
) -> RoundReport:
    """Probe `endpoints` once, concurrently, then store every result in one transaction."""
    facts = await prober.probe_many([endpoint.spec for endpoint in endpoints], on_result)
    checks = await judge(endpoints, facts, facilitators)
    return RoundReport(checks, save(store, checks, config, alerts))


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
        self._in_flight: set[int] = set()
        """Endpoints being probed now: never dispatched twice at once."""
        self._backoff: dict[int, datetime] = {}
        """Endpoints of a batch that could not be saved -> when they may be dispatched again."""
        self._batches: set[asyncio.Task[None]] = set()
        self._refills: set[asyncio.Task[None]] = set()
        self._filling = False
        self._refill = False
        self._probes_total: Counter[Outcome] = Counter()
        self._durations = DurationHistogram()
        self._rounds = 0
        self._last_round_at: datetime | None = None
        self._last_dispatch_at: datetime | None = None
        self._lag = 0.0
        self._changed = True
        self._rendered_at: datetime | None = None
        self.snapshot: MonitorSnapshot | None = None
        self._snapshot_not_before = 0.0
        self.discovery: dict[str, CrawlSummary] = {}
        """The latest crawl of each source."""
        self.stopping = asyncio.Event()

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
                self._discover,
                "interval",
                seconds=source.refresh.total_seconds(),
                args=[source],
                id=f"discover-{source.name}",
                next_run_time=datetime.now(UTC),
            )
        for job, period in jobs:
            self._scheduler.add_job(
                job, "interval", seconds=period.total_seconds(), id=job.__name__
            )
        self._scheduler.add_job(self._roll_up, id="initial-rollup")
        self._scheduler.start()

    async def stop(self, timeout: timedelta) -> None:
        """Stop dispatching; let in-flight probes finish for `timeout`, then cancel the rest.

        Checks that completed before the deadline are committed, cancelled ones are not.
        """
        self.stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        await asyncio.gather(*self._refills, return_exceptions=True)
        if self._batches:
            log.info("stopping: waiting up to %s for %d batches", timeout, len(self._batches))
            _, pending = await asyncio.wait(self._batches, timeout=timeout.total_seconds())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        log.info("stopped after %d rounds", self._rounds)

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
        await self._fill()

    async def _fill(self) -> None:
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
            while self._refill and not self.stopping.is_set():
                self._refill = False
                now = self._clock()
                self._backoff = {eid: until for eid, until in self._backoff.items() if until > now}
                capacity = self.config.probe.concurrency * 2 - len(self._in_flight)
                if capacity <= 0:
                    return
                exclude = list(self._in_flight | self._backoff.keys())
                due = await asyncio.to_thread(self._store.due, now, capacity, exclude)
                if not due or self.stopping.is_set():
                    return
                self._in_flight.update(endpoint.id for endpoint in due)
                task = asyncio.create_task(self._run_batch(due))
                self._batches.add(task)
                task.add_done_callback(self._batch_done)
        finally:
            self._filling = False

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.discard(task)
        if not self.stopping.is_set():
            refill = asyncio.create_task(self._fill())
            self._refills.add(refill)
            refill.add_done_callback(self._refills.discard)

    async def _run_batch(self, endpoints: list[StoredEndpoint]) -> None:
        """Probe a batch; save what completed, even when cancelled at shutdown."""
        started = time.perf_counter()
        tasks = {
            asyncio.create_task(self._prober.probe_many([endpoint.spec])): endpoint
            for endpoint in endpoints
        }
        cancelled = False
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            cancelled = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finished = [
            (endpoint, task.result()[0])
            for task, endpoint in tasks.items()
            if task.done() and not task.cancelled() and task.exception() is None
        ]
        try:
            checks = await judge(
                [endpoint for endpoint, _ in finished],
                [facts for _, facts in finished],
                self._facilitators,
            )
            async with self._writer:
                await asyncio.to_thread(save, self._store, checks, self.config, self._alerts)
            self._count(checks, time.perf_counter() - started)
        except Exception:
            # A broken round never stops the service: its endpoints back off, then retry.
            log.exception("round of %d probes could not be saved", len(finished))
            retry_at = self._clock() + FAILED_BATCH_BACKOFF
            self._backoff.update((endpoint.id, retry_at) for endpoint in endpoints)
        finally:
            self._in_flight.difference_update(endpoint.id for endpoint in endpoints)
        if cancelled:
            log.info("shutdown: saved %d of %d in-flight probes", len(finished), len(tasks))
            raise asyncio.CancelledError

    def _count(self, checks: list[tuple[StoredEndpoint, CheckResult]], seconds: float) -> None:
        outcomes: Counter[Outcome] = Counter(result.outcome for _, result in checks)
        self._probes_total.update(outcomes)
        for _, result in checks:
            if result.latency_ms is not None:
                self._durations = self._durations.observe(result.latency_ms / 1000)
        self._rounds += 1
        self._last_round_at = self._clock()
        self._changed = True
        log.info(
            "round: %d probes in %.2f s (%s)",
            len(checks),
            seconds,
            ", ".join(f"{outcomes[o]} {o}" for o in Outcome),
        )

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
            probes_total=dict(self._probes_total),
            probe_durations=self._durations,
            scheduler_lag_seconds=self._lag,
            probes_in_flight=len(self._in_flight),
            rounds_total=self._rounds,
            last_round_at=self._last_round_at,
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
        ticking = last is not None and now - last <= STALE_AFTER and not self.stopping.is_set()
        body: dict[str, object] = {
            "status": "ok" if ticking else "stale",
            "last_dispatch": last.isoformat() if last else None,
            "last_round": self._last_round_at.isoformat() if self._last_round_at else None,
            "rounds": self._rounds,
            "in_flight": len(self._in_flight),
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
