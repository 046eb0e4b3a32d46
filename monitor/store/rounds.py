"""Save a probe round: its checks, each endpoint's state, flips, alerts and stored figures.

Set-based statements on one connection, in the caller's transaction. The latency percentiles
are ranked first, counting the round's own latencies as stored (store.latency), so each
endpoint's state can be advanced before anything is written and every check is inserted once,
with the status it caused, by one executemany INSERT. Endpoint rows are read and written as
plain rows (store.round_state); 30-day counts grow on the row and are recounted with SQL when
the window day moves.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.exc import OperationalError

from monitor.config import ThresholdsConfig
from monitor.models import AssetVerdict, CheckResult, FacilitatorVerdict, Outcome
from monitor.stats import LATENCY_WINDOW, OutcomeCounts, advance
from monitor.store.driver import DriverStatement
from monitor.store.latency import (
    advance_horizon,
    clear_old_copies,
    latency_percentiles,
    recent_latency,
)
from monitor.store.mapping import check_values, description_of, offer_key
from monitor.store.outbox import AlertContext, alert_step
from monitor.store.records import StoredFlip
from monitor.store.rollups import window_counts, window_start
from monitor.store.round_state import RoundEndpoint, read_endpoints, write_endpoints
from monitor.store.tables import CHECKS, FLIPS, dump

log = logging.getLogger(__name__)

_INSERT_CHECKS = DriverStatement(
    insert(CHECKS), [column.name for column in CHECKS.columns if not column.primary_key]
)
"""Every column but the id: check_values gives them all (a missing one raises KeyError)."""


def save_round_resilient(
    engine: Engine,
    results: Sequence[tuple[int, CheckResult]],
    thresholds: ThresholdsConfig,
    interval: timedelta,
    alerts: AlertContext | None,
) -> list[StoredFlip]:
    """Save a round in one transaction; if that fails, save each endpoint's checks alone.

    One bad row (a value the database refuses) must not cost the round: each endpoint's
    checks are then saved in a transaction of their own, and an endpoint whose checks still
    fail gets one stand-in check saying so (inconclusive, no challenge), so it is
    rescheduled like any other. When nothing at all can be stored, the database itself is
    the problem: the first error is raised (the caller retries the round later).
    """
    try:
        with engine.begin() as connection:
            return save_round(connection, results, thresholds, interval, alerts)
    except OperationalError:
        raise  # the database itself (locked, full, gone): row by row would fail the same way
    except Exception as error:
        endpoints = {endpoint_id for endpoint_id, _ in results}
        if len(endpoints) == 1 and all(r.challenge is None for _, r in results):
            raise  # nothing smaller to save, nothing to strip
        log.warning(
            "saving a round of %d checks failed (%s); saving endpoint by endpoint",
            len(results),
            _brief(error),
        )
    flips: list[StoredFlip] = []
    lost: list[tuple[int, Exception]] = []
    ordered = sorted(results, key=lambda pair: pair[0])
    for endpoint_id, group in groupby(ordered, key=lambda pair: pair[0]):
        checks = list(group)
        try:
            with engine.begin() as connection:
                flips += save_round(connection, checks, thresholds, interval, alerts)
            continue
        except Exception as error:
            log.error(
                "the checks of endpoint %d could not be stored (%s); storing a stand-in",
                endpoint_id,
                _brief(error),
            )
            reason = f"monitor error: the check could not be stored ({type(error).__name__})"
        latest = max((result for _, result in checks), key=lambda result: result.checked_at)
        stand_in = replace(
            latest,
            outcome=Outcome.INCONCLUSIVE,
            error=reason,
            challenge=None,
            facilitator_findings=(),
        )
        try:
            with engine.begin() as connection:
                flips += save_round(
                    connection, [(endpoint_id, stand_in)], thresholds, interval, alerts
                )
        except Exception as stand_in_error:
            lost.append((endpoint_id, stand_in_error))
    if lost and len(lost) == len({endpoint_id for endpoint_id, _ in ordered}):
        raise lost[0][1]  # nothing could be stored: the database itself is the problem
    for endpoint_id, problem in lost:
        log.error("endpoint %d: not even a stand-in was stored (%s)", endpoint_id, _brief(problem))
    return flips


def save_round(
    connection: Connection,
    results: Sequence[tuple[int, CheckResult]],
    thresholds: ThresholdsConfig,
    interval: timedelta,
    alerts: AlertContext | None,
) -> list[StoredFlip]:
    """Store a round of checks and advance each endpoint's state (see Store.save_round)."""
    ordered = sorted(results, key=lambda pair: (pair[0], pair[1].checked_at))
    ids = sorted({endpoint_id for endpoint_id, _ in ordered})
    latest = max(result.checked_at for _, result in ordered)
    since = latest - LATENCY_WINDOW
    pending: dict[int, list[float]] = defaultdict(list)
    for endpoint_id, result in ordered:
        latency = recent_latency(result.http_status, result.latency_ms)
        if latency is not None and result.checked_at >= since:
            pending[endpoint_id].append(latency)
    horizon = advance_horizon(connection, latest)
    percentiles = latency_percentiles(connection, ids, since, horizon, pending)
    endpoints = read_endpoints(connection, ids)
    flips: list[StoredFlip] = []
    checks: list[dict[str, Any]] = []
    for endpoint_id, result in ordered:
        endpoint = endpoints.get(endpoint_id)
        if endpoint is None:  # no such endpoint: the INSERT below fails on the foreign key
            checks.append(check_values(endpoint_id, result, None))
            continue
        p50 = percentiles.get(endpoint_id, (None, None))[0]
        endpoint.state, flip = advance(
            endpoint.state, result.outcome, result.checked_at, p50, thresholds, result.error
        )
        _apply_check(endpoint, result)
        checks.append(check_values(endpoint_id, result, endpoint.state.status))
        if alerts is not None:
            alert_step(connection, endpoint, alerts, result.checked_at, result.outcome)
        if flip is not None:
            flips.append(StoredFlip(endpoint_id, flip))
    _INSERT_CHECKS.executemany(connection, checks)
    clear_old_copies(connection, ids, horizon)
    if flips:
        connection.execute(
            insert(FLIPS),
            [
                {
                    "endpoint_id": stored.endpoint_id,
                    "at": stored.flip.at,
                    "from_status": stored.flip.from_status.value,
                    "to_status": stored.flip.to_status.value,
                    "reason": stored.flip.reason,
                }
                for stored in flips
            ],
        )
    _advance_windows(connection, endpoints, ordered, latest)
    write_endpoints(
        connection, endpoints.values(), percentiles, latest, interval, alerts is not None
    )
    return flips


def _apply_check(endpoint: RoundEndpoint, result: CheckResult) -> None:
    """Copy what the endpoint row keeps of its latest check (the round is in time order)."""
    endpoint.latest = result
    endpoint.last_error = result.error
    challenge = result.challenge
    offer = challenge.headline_offer if challenge else None
    facts = endpoint.facts
    facts["last_http_status"] = result.http_status
    facts["x402_version"] = challenge.version if challenge else None
    facts["payment_requirements_valid"] = challenge.valid if challenge else None
    facts["asset_verdict"] = result.asset_verdict.value if challenge else None
    facts["facilitator_verdict"] = result.facilitator_verdict.value
    facts["network"] = offer.caip2 or offer.network if offer else None
    facts["asset"] = offer.asset if offer else None
    facts["price"] = offer.price if offer else None
    if challenge is not None and challenge.document is not None:
        description = description_of(challenge.document)
        if description:
            facts["description"] = description
    if challenge is not None and challenge.valid:
        facts["challenge_input_json"] = dump(challenge.input_schema)
        facts["challenge_output_json"] = dump(challenge.output_schema)
    if result.outcome is Outcome.PASS:
        endpoint.pass_asset_verified = result.asset_verdict is AssetVerdict.VERIFIED
        endpoint.pass_facilitator_supported = (
            result.facilitator_verdict is FacilitatorVerdict.SUPPORTED
        )


def _advance_windows(
    connection: Connection,
    endpoints: dict[int, RoundEndpoint],
    ordered: Sequence[tuple[int, CheckResult]],
    latest: datetime,
) -> None:
    """Bring each endpoint's 30-day counts and offer stability up to this round's checks.

    The window is day-aligned, so within one window day the stored counts only grow: add the
    round's checks to them. Endpoints whose counts are for an older window day (or none) are
    recounted with SQL, once per endpoint per day, instead of on every save.
    """
    day = window_start(latest).date().isoformat()
    stale = [endpoint_id for endpoint_id, e in endpoints.items() if e.window_day != day]
    recounted = window_counts(connection, stale, latest) if stale else {}
    for endpoint_id in stale:
        # The recount reads this round's checks too: they are already inserted.
        counts, stable, key = recounted.get(endpoint_id, (OutcomeCounts(), True, None))
        endpoint = endpoints[endpoint_id]
        endpoint.counts, endpoint.offers_stable = counts, stable
        endpoint.last_offer_key, endpoint.window_day = key, day
    recounted_ids = set(stale)
    for endpoint_id, check in ordered:
        if endpoint_id not in recounted_ids:
            _add_check(endpoints[endpoint_id], check)


def _add_check(endpoint: RoundEndpoint, check: CheckResult) -> None:
    """Count one more check (and remember the pass's offer for stability)."""
    outcome = check.outcome
    counts = endpoint.counts
    first = counts.first_check_at
    endpoint.counts = OutcomeCounts(
        counts.passes + (outcome is Outcome.PASS),
        counts.soft_fails + (outcome is Outcome.SOFT_FAIL),
        counts.hard_fails + (outcome is Outcome.HARD_FAIL),
        counts.inconclusive + (outcome is Outcome.INCONCLUSIVE),
        check.checked_at if first is None or check.checked_at < first else first,
    )
    key = offer_key(check)
    if outcome is Outcome.PASS and key is not None:
        if endpoint.last_offer_key is not None and key != endpoint.last_offer_key:
            endpoint.offers_stable = False
        endpoint.last_offer_key = key


def _brief(error: Exception) -> str:
    """Return the error's type and first line (SQLAlchemy appends the statement and values)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"
