"""Run the monitor's work: one probe round now; the scheduled service grows here.

Shell module: the only place (with cli) that wires edges together: it hands endpoints from the
store to the prober, judges each answer with `assess`, and saves the round in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor.assess import assess
from monitor.config import Config
from monitor.models import CheckResult, ProbeFacts
from monitor.probe import Prober
from monitor.store import Store, StoredEndpoint, StoredFlip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundReport:
    """What one probe round did: each endpoint with its check, and the flips it caused."""

    checks: list[tuple[StoredEndpoint, CheckResult]]
    flips: list[StoredFlip]


async def probe_round(
    store: Store,
    prober: Prober,
    endpoints: Sequence[StoredEndpoint],
    config: Config,
    on_result: Callable[[ProbeFacts], None] | None = None,
) -> RoundReport:
    """Probe `endpoints` once, concurrently, then store every result in one transaction."""
    facts = await prober.probe_many([endpoint.spec for endpoint in endpoints], on_result)
    checks = [(endpoint, assess(fact)) for endpoint, fact in zip(endpoints, facts, strict=True)]
    for endpoint, result in checks:
        log.debug(
            "probe %s %s -> %s (HTTP %s, %s ms): %s",
            result.method,
            endpoint.spec.url,
            result.outcome,
            result.http_status,
            None if result.latency_ms is None else round(result.latency_ms),
            result.error or "ok",
        )
    flips = store.save_round(
        [(endpoint.id, result) for endpoint, result in checks],
        config.thresholds,
        config.probe.interval,
    )
    by_id = {endpoint.id: endpoint for endpoint in endpoints}
    for stored in flips:
        flip = stored.flip
        log.info(
            "status of %s: %s -> %s (%s)",
            by_id[stored.endpoint_id].spec.url,
            flip.from_status,
            flip.to_status,
            flip.reason,
        )
    return RoundReport(checks, flips)
