"""Map between table rows and the core's records (state, results, stored endpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row

from monitor.models import (
    AssetVerdict,
    CheckResult,
    EndpointSpec,
    FacilitatorVerdict,
    JsonValue,
    Outcome,
    Status,
)
from monitor.stats import EndpointState, OutcomeCounts
from monitor.store.latency import recent_latency
from monitor.store.records import StoredEndpoint
from monitor.store.tables import EndpointRow, dump, load

StateColumns = EndpointRow | Row[Any]
"""An endpoint's columns by attribute: an ORM row, or a Core row of the same column names."""


def state_of(row: StateColumns) -> EndpointState:
    """Return the status-machine state stored on an endpoint row."""
    return EndpointState(
        status=Status(row.status),
        consecutive_failures=row.consecutive_failures,
        consecutive_hard=row.consecutive_hard,
        consecutive_passes=row.consecutive_passes,
        conclusive_checks=row.conclusive_checks,
        non_hard_checks=row.non_hard_checks,
        recovering=row.recovering,
        last_checked_at=row.last_checked_at,
        last_healthy_at=row.last_healthy_at,
        last_outcome=Outcome(row.last_outcome) if row.last_outcome else None,
    )


def counts_of(row: StateColumns) -> OutcomeCounts:
    """Return the 30-day outcome counts stored on an endpoint row."""
    return OutcomeCounts(
        passes=row.window_passes,
        soft_fails=row.window_soft_fails,
        hard_fails=row.window_hard_fails,
        inconclusive=row.window_inconclusive,
        first_check_at=row.window_first_check_at,
    )


def offer_key(result: CheckResult) -> str | None:
    """Return what offer stability compares: network, asset, amount and payTo of the first
    valid offer (None without one)."""
    offer = result.challenge.first_valid_offer if result.challenge else None
    return f"{offer.network}|{offer.asset}|{offer.amount}|{offer.pay_to}" if offer else None


def check_values(endpoint_id: int, result: CheckResult, status: Status | None) -> dict[str, Any]:
    """Return the row of a check: every column of `checks` but its id."""
    challenge = result.challenge
    headline = challenge.headline_offer if challenge else None
    return {
        "endpoint_id": endpoint_id,
        "checked_at": result.checked_at,
        "outcome": result.outcome.value,
        "method": result.method,
        "method_guessed": result.method_guessed,
        "http_status": result.http_status,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "x402_version": result.x402_version,
        "payment_requirements_valid": result.payment_requirements_valid,
        "findings_json": dump([f.as_dict() for f in result.findings]) if challenge else None,
        "offer_key": offer_key(result),
        "asset_verdict": result.asset_verdict.value if challenge else None,
        "facilitator_verdict": result.facilitator_verdict.value,
        "network": (headline.caip2 or headline.network) if headline else None,
        "price": headline.price if headline else None,
        "status": status.value if status else None,
        "recent_latency_ms": recent_latency(result.http_status, result.latency_ms),
    }


def stored_endpoint(row: EndpointRow) -> StoredEndpoint:
    assert row.id is not None
    declared_input = load(row.input_schema_json)
    learned_input = load(row.challenge_input_json)
    spec = EndpointSpec(
        url=row.url,
        method=row.method,
        body=load(row.body_json),
        has_body=row.has_body,
        title=row.title,
        category=row.category,
        facilitator=row.facilitator,
        input_schema=declared_input if declared_input is not None else learned_input,
        source=row.source,
    )
    return StoredEndpoint(
        id=row.id,
        slug=row.slug,
        spec=spec,
        state=state_of(row),
        first_seen_at=row.first_seen_at,
        in_config=row.in_config,
        next_check_at=row.next_check_at,
        last_http_status=row.last_http_status,
        last_latency_ms=row.last_latency_ms,
        last_error=row.last_error,
        x402_version=row.x402_version,
        payment_requirements_valid=row.payment_requirements_valid,
        output_schema=load(row.challenge_output_json),
        asset_verdict=AssetVerdict(row.asset_verdict) if row.asset_verdict else None,
        facilitator_verdict=(
            FacilitatorVerdict(row.facilitator_verdict) if row.facilitator_verdict else None
        ),
        network=row.network,
        asset=row.asset,
        price=row.price,
        pass_asset_verified=row.pass_asset_verified,
        pass_facilitator_supported=row.pass_facilitator_supported,
        counts_30d=counts_of(row),
        offers_stable=row.offers_stable,
        p50_ms=row.p50_ms,
        p95_ms=row.p95_ms,
        score=row.score,
        description=row.description,
        alert_firing=row.alert_firing,
        alert=load(row.alert_json),
        kind=row.kind,
        provider=row.provider,
        catalogue_item=load(row.catalogue_json),
        delisted=row.delisted,
    )


def description_of(document: Mapping[str, JsonValue]) -> str | None:
    """Return the seller's description: v2 `resource.description`, else v1 accepts[0]'s."""
    resource = document.get("resource")
    if isinstance(resource, Mapping) and isinstance(resource.get("description"), str):
        text: str = resource["description"]
        return text.strip()[:2000] or None
    accepts = document.get("accepts")
    if isinstance(accepts, list) and accepts and isinstance(accepts[0], Mapping):
        value = accepts[0].get("description")
        if isinstance(value, str):
            return value.strip()[:2000] or None
    return None
