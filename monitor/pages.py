"""Gather what the site shows: a snapshot plus one EndpointDetail per endpoint.

Shell module: reads the store (set-based page histories) and joins it with the core's tables
(asset and network names, finding fixes); the site edge only ever sees the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.catalogue import registrable_domain
from monitor.models import Finding, Outcome
from monitor.snapshot import (
    EndpointDetail,
    EndpointSnapshot,
    LatencyPoint,
    MonitorSnapshot,
    asset_verified_flag,
    facilitator_supported_flag,
)
from monitor.store import PageHistory, Store, StoredEndpoint
from monitor.store.rollups import day_start
from monitor.urls import host_of
from monitor.x402 import ALL_CODES, V1_NETWORKS, lookup_asset

_NETWORK_NAMES = {caip2: name for name, caip2 in V1_NETWORKS.items()}
_UPPER = {"iotex": "IoTeX", "megaeth": "MegaETH", "educhain": "EDU Chain", "skale": "SKALE"}


def snapshot_endpoint(endpoint: StoredEndpoint, now: datetime) -> EndpointSnapshot:
    """Return the snapshot of one stored endpoint."""
    figures = endpoint.figures(now)
    last = endpoint.state.last_outcome
    return EndpointSnapshot(
        slug=endpoint.slug,
        url=endpoint.spec.url,
        method=endpoint.spec.method,
        title=endpoint.spec.title,
        category=endpoint.spec.category,
        network=endpoint.network,
        source=endpoint.spec.source,
        status=figures.status,
        up=None if last is None else last is Outcome.PASS,
        consecutive_failures=figures.consecutive_failures,
        uptime_30d=figures.uptime_30d,
        score=figures.score,
        payment_requirements_valid=endpoint.payment_requirements_valid,
        asset_verified=asset_verified_flag(endpoint.asset_verdict),
        facilitator_supported=facilitator_supported_flag(endpoint.facilitator_verdict),
        last_check_at=endpoint.state.last_checked_at,
        p50_ms=figures.p50_ms,
        p95_ms=figures.p95_ms,
        listing="delisted"
        if endpoint.delisted
        else ("MCP tool" if endpoint.kind == "mcp" else None),
    )


def _listing(endpoint: StoredEndpoint) -> str | None:
    if endpoint.delisted:
        return "delisted"
    return "MCP tool" if endpoint.kind == "mcp" else None


def store_snapshot(store: Store, now: datetime) -> MonitorSnapshot:
    """Return a snapshot of every stored endpoint (for one-shot commands such as render)."""
    return MonitorSnapshot(
        taken_at=now,
        endpoints=tuple(snapshot_endpoint(endpoint, now) for endpoint in store.endpoints()),
    )


def network_name(caip2: str | None) -> str | None:
    """Return a human network name (`eip155:8453` -> `Base`), None when unknown."""
    if caip2 is None:
        return None
    name = _NETWORK_NAMES.get(caip2)
    if name is None:
        return None
    return " ".join(_UPPER.get(part, part.capitalize()) for part in name.split("-"))


def asset_name(caip2: str | None, asset: str | None) -> str | None:
    """Return the token's name (`USD Coin`) when the asset table knows it."""
    if caip2 is None or asset is None:
        return None
    row = lookup_asset(caip2, asset)
    if row is None:
        return None
    return row.name or row.symbol


def with_fixes(findings: Sequence[Finding]) -> tuple[tuple[Finding, str], ...]:
    """Pair each finding with the fix its code's registry entry gives."""
    return tuple(
        (finding, ALL_CODES[finding.code].fix if finding.code in ALL_CODES else "")
        for finding in findings
    )


def endpoint_detail(
    endpoint: StoredEndpoint, summary: EndpointSnapshot, history: PageHistory, now: datetime
) -> EndpointDetail:
    """Return everything the endpoint's page shows."""
    figures = endpoint.figures(now)
    network = endpoint.network
    return EndpointDetail(
        summary=summary,
        description=endpoint.description or endpoint.spec.title,
        x402_version=endpoint.x402_version,
        price=endpoint.price,
        asset=endpoint.asset,
        asset_name=asset_name(network, endpoint.asset),
        network_name=network_name(network),
        provider=endpoint.provider or registrable_domain(host_of(endpoint.spec.url)) or None,
        indexed_at=endpoint.first_seen_at,
        last_healthy_at=endpoint.state.last_healthy_at,
        reachability_30d=figures.reachability_30d,
        coverage_days=round(figures.coverage.total_seconds() / 86400, 2),
        payment_requirements_valid=endpoint.payment_requirements_valid,
        asset_verdict=endpoint.asset_verdict,
        facilitator_verdict=endpoint.facilitator_verdict,
        facilitator=endpoint.spec.facilitator,
        findings=with_fixes(history.findings),
        input_schema=endpoint.spec.input_schema,
        output_schema=endpoint.output_schema,
        recent_checks=tuple(history.recent),
        latency_24h=tuple(history.latency_24h),
        # Daily p50 of the last 7 days; days without any check are left out, not "no answer".
        latency_7d=tuple(
            LatencyPoint(day_start(day.day), day.p50_ms)
            for day in history.days[-7:]
            if day.passes + day.soft_fails + day.hard_fails + day.inconclusive
        ),
        days=tuple(history.days),
        flips=tuple(history.flips),
        catalogue_item=endpoint.catalogue_item,
    )


def site_details(store: Store, snapshot: MonitorSnapshot) -> list[EndpointDetail]:
    """Return one EndpointDetail per endpoint of the snapshot, read from the store."""
    now = snapshot.taken_at
    summaries = {summary.slug: summary for summary in snapshot.endpoints}
    endpoints = [endpoint for endpoint in store.endpoints() if endpoint.slug in summaries]
    histories = store.page_histories([endpoint.id for endpoint in endpoints], now)
    return [
        endpoint_detail(endpoint, summaries[endpoint.slug], histories[endpoint.id], now)
        for endpoint in endpoints
    ]
