"""Probe rounds: judge each answer in isolation, save a batch, log its flips.

Shell module (with `service` and `cli`): wires the prober, the facilitator client and the
store. A failure while judging one endpoint is that endpoint's check, never the round's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from monitor.assess import assess
from monitor.config import Config
from monitor.discovery import FacilitatorClient
from monitor.models import MAX_ERROR_CHARS, CheckResult, EndpointSpec, Outcome, ProbeFacts
from monitor.probe import Prober
from monitor.store import AlertContext, Store, StoredEndpoint, StoredFlip
from monitor.untrusted import clean_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundReport:
    """What one probe round did: each endpoint with its check, and the flips it caused."""

    checks: list[tuple[StoredEndpoint, CheckResult]]
    flips: list[StoredFlip]


async def judge_one(
    spec: EndpointSpec, facts: ProbeFacts, facilitators: FacilitatorClient | None
) -> CheckResult:
    """Assess one answer and, where a facilitator is known, add its verdict; never raises.

    A failure of the monitor while judging (a defect of ours) is logged with its traceback
    and becomes an inconclusive check that says so: one endpoint's check, never a round.
    """
    try:
        result = assess(facts)
        if facilitators is not None and spec.facilitator:
            verdict, findings = (await facilitators.supported(spec.facilitator)).verdict(
                result.challenge
            )
            result = replace(
                result, facilitator_verdict=verdict, facilitator_findings=tuple(findings)
            )
    except Exception as exc:
        log.error("judging the answer of %s failed inside the monitor", spec.url, exc_info=exc)
        result = CheckResult(
            url=facts.url,
            method=facts.method,
            method_guessed=facts.method_guessed,
            checked_at=facts.started_at,
            outcome=Outcome.INCONCLUSIVE,
            http_status=facts.http_status,
            latency_ms=facts.latency_ms,
            error=clean_line(f"monitor error: {type(exc).__name__}: {exc}", MAX_ERROR_CHARS),
            challenge=None,
        )
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
    """Judge every answer of a batch (see judge_one), letting other tasks run in between.

    Judging is synchronous CPU work (a cold challenge costs ~0.1 ms, a hostile one more) and a
    cached facilitator verdict does not suspend: without a pause a large batch would hold the
    event loop for its whole length.
    """
    judged = []
    for endpoint, fact in zip(endpoints, facts, strict=True):
        judged.append((endpoint, await judge_one(endpoint.spec, fact, facilitators)))
        await asyncio.sleep(0)
    return judged


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
