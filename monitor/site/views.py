"""What the pages show, as plain values: formatting, slugs, rows and the JSON documents.

Part of the site edge, stdlib only (no jinja2 here). Every text that came from an endpoint or a
catalogue stays a plain `str`: escaping is the templates' job (autoescape everywhere).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.models import AssetVerdict, FacilitatorVerdict, JsonValue, Status
from monitor.snapshot import EndpointDetail, EndpointSnapshot
from monitor.stats import SCORE_VERSION
from monitor.urls import is_http_url

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
"""What an endpoint slug may look like; anything else would be a path outside the site."""
STATUS_ORDER = (Status.HEALTHY, Status.DEGRADED, Status.DOWN, Status.UNKNOWN)
INDEX_TEXT_LIMIT = 90
"""Titles and URLs longer than this are cut on listings (the endpoint page shows them whole)."""
SCHEMA_TEXT_LIMIT = 100_000
"""A pretty-printed schema longer than this is cut on the page (the JSON file has it whole)."""
JSON_DEPTH_LIMIT = 64
UNCATEGORISED = "uncategorised"
MISSING = "—"
_SURROGATE = re.compile("[\ud800-\udfff]")
_PRICE_USD = re.compile(r"\$\s?([0-9][0-9,]*(?:\.[0-9]+)?)")


def valid_slug(slug: str) -> bool:
    """Return whether `slug` is safe as a file name (`[a-z0-9-]`, at most 128 characters)."""
    return SLUG.fullmatch(slug) is not None


def category_slug(name: str | None) -> str:
    """Return the file-name-safe slug of a category (ASCII folding; a hash when nothing is left)."""
    if name is None or not name.strip():
        return UNCATEGORISED
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    readable = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:60].strip("-")
    if readable and readable != UNCATEGORISED:
        return readable
    return "category-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def as_utc(moment: datetime) -> datetime:
    """Return `moment` in UTC (a naive datetime is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_text(moment: datetime) -> str:
    """Return `2026-03-20 18:49:51 UTC`."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime) -> str:
    """Return `2026-03-20T18:49:51Z` (seconds precision, for `<time datetime>` and JSON)."""
    return as_utc(moment).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def relative(moment: datetime, now: datetime) -> str:
    """Return `moment` relative to the snapshot time `now`: "3 hours ago", "just now"."""
    seconds = int((as_utc(now) - as_utc(moment)).total_seconds())
    span = abs(seconds)
    if span < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if span >= size:
            count = span // size
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            break
    return f"in {text}" if seconds < 0 else f"{text} ago"


def percent(ratio: float | None) -> str:
    """Return `99.9%`; never rounds a ratio below 1 up to `100.0%`."""
    if ratio is None:
        return MISSING
    tenths = math.floor(ratio * 1000 + 0.5)
    if tenths >= 1000 and ratio < 1:
        tenths = 999
    return f"{tenths / 10:.1f}%"


def milliseconds(value: float | None) -> str:
    """Return `746 ms`, or the missing mark."""
    return MISSING if value is None else f"{value:.0f} ms"


def score_text(score: int | None) -> str:
    """Return `75/100`, or `unrated` (below 10 conclusive checks)."""
    return "unrated" if score is None else f"{score}/100"


def coverage_text(days: float) -> str:
    """Return how much history the 30-day figures cover when it is less than 30 days."""
    if days >= 29.99:
        return ""
    if days < 1:
        hours = max(0, math.floor(days * 24))
        return f"since {hours} hour{'' if hours == 1 else 's'}"
    whole = math.floor(days)
    return f"since {whole} day{'' if whole == 1 else 's'}"


def truncate(text: str | None, limit: int = INDEX_TEXT_LIMIT) -> str:
    """Return `text` cut to `limit` characters with an ellipsis."""
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def price_usd(price: str | None) -> float | None:
    """Return the price in USD when the display price is a dollar amount (`$5.00`)."""
    if price is None:
        return None
    match = _PRICE_USD.fullmatch(price.strip())
    return float(match.group(1).replace(",", "")) if match else None


def requirements_text(valid: bool | None) -> str:
    """Return the Payment Requirements flag."""
    return {True: "Valid", False: "Invalid", None: "No challenge"}[valid]


def verdict_text(verdict: AssetVerdict | FacilitatorVerdict | None) -> str:
    """Return `Verified`, `Supported`, ... (`Unknown` when no verdict)."""
    return (verdict.value if verdict is not None else "unknown").capitalize()


def safe_json(value: JsonValue, depth: int = 0) -> JsonValue:
    """Return `value` as strict JSON data: no NaN/Infinity, no lone surrogate, bounded depth."""
    if depth > JSON_DEPTH_LIMIT:
        return "…"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Mapping):
        return {safe_json(str(key)): safe_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [safe_json(item, depth + 1) for item in value]
    return str(value)


def pretty_json(value: JsonValue) -> str:
    """Return `value` pretty-printed (sorted keys), cut at SCHEMA_TEXT_LIMIT characters."""
    text = json.dumps(safe_json(value), indent=2, sort_keys=True, ensure_ascii=False)
    if len(text) > SCHEMA_TEXT_LIMIT:
        return text[:SCHEMA_TEXT_LIMIT] + "\n… (cut here; the endpoint's JSON has all of it)"
    return text


def dump_json(document: JsonValue) -> bytes:
    """Return the bytes of a JSON file: deterministic (sorted keys), compact, UTF-8."""
    options: dict[str, Any] = {"sort_keys": True, "ensure_ascii": False, "separators": (",", ":")}
    try:  # the fast path; hostile data (NaN, lone surrogates, deep nesting) takes the slow one
        return (json.dumps(document, allow_nan=False, **options) + "\n").encode()
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError):
        return (json.dumps(safe_json(document), **options) + "\n").encode()


@dataclass(frozen=True)
class Entry:
    """One endpoint as the site lists it: its summary, its detail (if any) and derived names."""

    summary: EndpointSnapshot
    detail: EndpointDetail | None
    category_slug: str

    @property
    def slug(self) -> str:
        """Return the endpoint's slug."""
        return self.summary.slug

    @property
    def name(self) -> str:
        """Return the title, or the URL when there is none."""
        return self.summary.title or self.summary.url

    @property
    def price(self) -> str | None:
        """Return the display price of the headline offer."""
        return self.detail.price if self.detail else None

    @property
    def network_text(self) -> str | None:
        """Return the network's human name, else its CAIP-2 id."""
        name = self.detail.network_name if self.detail else None
        return name or self.summary.network


def sort_key(entry: Entry) -> tuple[int, str, str]:
    """Return the listing order: healthy first, then by name, then slug (stable)."""
    return (STATUS_ORDER.index(entry.summary.status), entry.name.casefold(), entry.slug)


def summary_document(entry: Entry) -> dict[str, JsonValue]:
    """Return an endpoint's row of `api/endpoints.json`."""
    summary = entry.summary
    return {
        "slug": summary.slug,
        "url": summary.url,
        "method": summary.method,
        "title": summary.title,
        "category": summary.category,
        "category_slug": entry.category_slug,
        "network": summary.network,
        "network_name": entry.detail.network_name if entry.detail else None,
        "price": entry.price,
        "price_usd": price_usd(entry.price),
        "source": summary.source,
        "status": summary.status.value,
        "up": summary.up,
        "p50_ms": summary.p50_ms,
        "p95_ms": summary.p95_ms,
        "uptime_30d": summary.uptime_30d,
        "score": summary.score,
        "consecutive_failures": summary.consecutive_failures,
        "last_check_at": iso(summary.last_check_at) if summary.last_check_at else None,
        "page": f"endpoints/{summary.slug}.html" if entry.detail else None,
    }


def detail_document(entry: Entry, detail: EndpointDetail, base_url: str) -> dict[str, JsonValue]:
    """Return `api/endpoints/<slug>.json`: everything the endpoint's page shows."""
    summary = entry.summary

    def when(moment: datetime | None) -> str | None:
        return iso(moment) if moment else None

    return {
        **summary_document(entry),
        "description": detail.description,
        "protocol": "x402",
        "x402_version": detail.x402_version,
        "asset": detail.asset,
        "asset_name": detail.asset_name,
        "provider": detail.provider,
        "indexed_at": iso(detail.indexed_at),
        "health": {
            "status": summary.status.value,
            "up": summary.up,
            "p50_ms": summary.p50_ms,
            "p95_ms": summary.p95_ms,
            "uptime_30d": summary.uptime_30d,
            "reachability_30d": detail.reachability_30d,
            "coverage_days": detail.coverage_days,
            "score": summary.score,
            "score_version": SCORE_VERSION,
            "last_check_at": when(summary.last_check_at),
            "last_healthy_at": when(detail.last_healthy_at),
            "consecutive_failures": summary.consecutive_failures,
        },
        "validation": {
            "payment_requirements_valid": detail.payment_requirements_valid,
            "asset_verdict": detail.asset_verdict.value if detail.asset_verdict else None,
            "facilitator": detail.facilitator,
            "facilitator_verdict": (
                detail.facilitator_verdict.value if detail.facilitator_verdict else None
            ),
            "findings": [{**finding.as_dict(), "fix": fix} for finding, fix in detail.findings],
        },
        "input_schema": detail.input_schema,
        "output_schema": detail.output_schema,
        "recent_checks": [
            {
                "checked_at": iso(check.checked_at),
                "outcome": check.outcome.value,
                "status": check.status.value,
                "http_status": check.http_status,
                "latency_ms": check.latency_ms,
                "error": check.error,
            }
            for check in detail.recent_checks[:20]
        ],
        "latency_24h": [[iso(p.at), p.latency_ms] for p in detail.latency_24h],
        "latency_7d": [[iso(p.at), p.latency_ms] for p in detail.latency_7d],
        "days": [
            {
                "day": day.day.isoformat(),
                "passes": day.passes,
                "soft_fails": day.soft_fails,
                "hard_fails": day.hard_fails,
                "inconclusive": day.inconclusive,
                "uptime": day.uptime,
                "p50_ms": day.p50_ms,
            }
            for day in detail.days
        ],
        "flips": [
            {
                "at": iso(flip.at),
                "from": flip.from_status.value,
                "to": flip.to_status.value,
                "reason": flip.reason,
            }
            for flip in detail.flips
        ],
        "catalogue_item": detail.catalogue_item,
        "links": {
            "page": f"{base_url}endpoints/{summary.slug}.html",
            "badge": f"{base_url}badges/{summary.slug}.svg",
            "json": f"{base_url}api/endpoints/{summary.slug}.json",
        },
    }


def index_document(entries: Sequence[Entry], taken_at: datetime) -> dict[str, JsonValue]:
    """Return `api/endpoints.json`: every endpoint's summary, in listing order."""
    counts = {status.value: 0 for status in STATUS_ORDER}
    for entry in entries:
        counts[entry.summary.status.value] += 1
    return {
        "generated_at": iso(taken_at),
        "score_version": SCORE_VERSION,
        "count": len(entries),
        "counts_by_status": counts,
        "endpoints": [summary_document(entry) for entry in entries],
    }


def link_url(url: str | None) -> str | None:
    """Return `url` when it may become a link (absolute http(s)), else None."""
    return url if url is not None and is_http_url(url) else None
