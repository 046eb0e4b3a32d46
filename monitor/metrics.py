"""Prometheus exposition of one `MonitorSnapshot` per scrape (edge: owns prometheus_client).

`SnapshotCollector` turns the latest snapshot into metric families each time the registry is
collected; nothing is updated between scrapes, so 20,000 endpoints cost one loop per scrape
instead of 20,000 hand-maintained gauges. Names follow DESIGN.md ("Metrics"): prefix `x402_`,
base units, the endpoint as `endpoint="<slug>"`; URL, title, method, network, category and
source appear only as labels of `x402_endpoint_info`.

Omission rules (a missing series means "not known", never a fake 0):
- `x402_endpoint_up` is absent until the endpoint's first conclusive check (`up is None`),
  like blackbox's `probe_success` which exists only once a probe ran;
- `x402_endpoint_uptime_ratio`, `x402_endpoint_reliability_score` (unrated),
  `x402_endpoint_latency_p50_seconds` and `x402_last_check_timestamp_seconds` are absent
  while their value is None;
- the three verdict gauges publish the latest check's verdicts, as the endpoint's page shows
  them (not the latest pass's, which only the score uses), and are absent while a verdict is
  not known: `x402_payment_requirements_valid` when the latest check got no 402,
  `x402_asset_verified` also without a readable offer, `x402_facilitator_supported` when no
  facilitator is known or there was no offer to check (see `monitor.snapshot`'s flags);
- `x402_monitor_last_round_timestamp_seconds` is absent until a round completed;
- when `get_snapshot()` returns None (the service has not built one yet) the collector yields
  nothing, so `absent(x402_monitor_probe_rounds_total)` alerts if that lasts.
Families are always yielded (with HELP/TYPE) even when empty, so the metric set is stable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from monitor.models import Outcome, Status
from monitor.snapshot import PROBE_DURATION_BUCKETS, EndpointSnapshot, MonitorSnapshot

__all__ = ["CONTENT_TYPE", "SnapshotCollector", "build_registry", "render"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""`generate_latest` writes the classic 0.0.4 text format; say so rather than `version=1.0.0`
(prometheus_client's CONTENT_TYPE_LATEST), which older Prometheus servers do not know."""

UPTIME_WINDOW = "30d"

_STATUSES = tuple(Status)
_OUTCOMES = tuple(Outcome)
# repr() spells these bounds as floatToGoString does ("0.05", "1.0"); that helper is untyped.
_BUCKET_BOUNDS = (*(repr(float(bound)) for bound in PROBE_DURATION_BUCKETS), "+Inf")


class SnapshotCollector(Collector):
    """Yield the x402 metric families from one snapshot per collection.

    `get_snapshot` is called exactly once per `collect()`; it returns the latest snapshot or
    None before the first one exists. Exceptions it raises propagate to the scrape (the web
    server answers 500), so a broken snapshot never shows up as plausible numbers.
    """

    def __init__(self, get_snapshot: Callable[[], MonitorSnapshot | None]) -> None:
        self._get_snapshot = get_snapshot

    def describe(self) -> list[Metric]:
        """Return no descriptions, so registering never calls `get_snapshot` too early."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every x402 family for the current snapshot (nothing when there is none)."""
        snapshot = self._get_snapshot()
        if snapshot is None:
            return
        yield from _endpoint_families(snapshot.endpoints)
        yield from _monitor_families(snapshot)


def build_registry(get_snapshot: Callable[[], MonitorSnapshot | None]) -> CollectorRegistry:
    """Return a fresh registry with the snapshot collector and the process/platform/GC ones.

    A private registry (not prometheus_client's global REGISTRY) keeps tests and several
    monitors in one process independent.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(get_snapshot))
    # New instances rather than prometheus_client's module-level ones: those sit in REGISTRY.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """Collect `registry` once and return the text exposition and its content type."""
    return generate_latest(registry), CONTENT_TYPE


def _gauge(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["endpoint"])


def _endpoint_families(endpoints: tuple[EndpointSnapshot, ...]) -> list[Metric]:
    """Build the per-endpoint families in one pass over the endpoints.

    Samples are appended directly (not through `add_metric`) and share one label dict per
    endpoint: this loop runs over 20,000 endpoints on every scrape.
    """
    info = GaugeMetricFamily(
        "x402_endpoint_info",
        "Identity of a monitored x402 endpoint (always 1): URL, declared method, title, "
        "CAIP-2 network of the headline offer, category and where it was learnt from.",
        labels=["endpoint", "url", "method", "title", "network", "category", "source"],
    )
    up = _gauge(
        "x402_endpoint_up",
        "1 when the latest conclusive check passed (valid 402 challenge), 0 when it failed; "
        "absent before the first conclusive check.",
    )
    status = GaugeMetricFamily(
        "x402_endpoint_status",
        "Derived health status: one series per status, 1 for the current one.",
        labels=["endpoint", "status"],
    )
    failures = _gauge(
        "x402_endpoint_consecutive_failures",
        "Conclusive checks (soft or hard failures) since the last pass.",
    )
    uptime = GaugeMetricFamily(
        "x402_endpoint_uptime_ratio",
        "Passes divided by conclusive checks over the window (0-1); absent without checks.",
        labels=["endpoint", "window"],
    )
    score = _gauge(
        "x402_endpoint_reliability_score",
        "Reliability score 0-100 (see the site's about page); absent while unrated.",
    )
    valid = _gauge(
        "x402_payment_requirements_valid",
        "1 when the latest check's 402 challenge parsed with at least one valid offer, else 0; "
        "absent when the latest check got no 402 answer.",
    )
    asset = _gauge(
        "x402_asset_verified",
        "1 when the latest challenge's offer pays in a known token with the right EIP-712 "
        "domain, 0 for a wrong domain or an unknown token; absent without a readable offer.",
    )
    facilitator = _gauge(
        "x402_facilitator_supported",
        "1 when the endpoint's facilitator lists a usable kind for the latest challenge's "
        "offer (version, scheme, network), 0 when it does not or cannot be asked (unsupported, "
        "invalid /supported, unreachable); absent when no facilitator is known or there was "
        "no offer to check.",
    )
    p50 = _gauge(
        "x402_endpoint_latency_p50_seconds",
        "Median latency to response headers over the last 24 hours; absent with fewer than "
        "3 answered checks.",
    )
    last_check = _gauge(
        "x402_last_check_timestamp_seconds",
        "Unix time of the endpoint's latest check; absent before the first check.",
    )
    statuses = [(s, str(s)) for s in _STATUSES]
    for endpoint in endpoints:
        slug = endpoint.slug
        labels = {"endpoint": slug}
        info.samples.append(
            Sample(
                info.name,
                {
                    "endpoint": slug,
                    "url": endpoint.url,
                    "method": endpoint.method or "",
                    "title": endpoint.title or "",
                    "network": endpoint.network or "",
                    "category": endpoint.category or "",
                    "source": endpoint.source,
                },
                1.0,
            )
        )
        if endpoint.up is not None:
            up.samples.append(Sample(up.name, labels, 1.0 if endpoint.up else 0.0))
        current = endpoint.status
        for value, text in statuses:
            status.samples.append(
                Sample(
                    status.name,
                    {"endpoint": slug, "status": text},
                    1.0 if value is current else 0.0,
                )
            )
        failures.samples.append(Sample(failures.name, labels, float(endpoint.consecutive_failures)))
        if endpoint.uptime_30d is not None:
            uptime.samples.append(
                Sample(
                    uptime.name, {"endpoint": slug, "window": UPTIME_WINDOW}, endpoint.uptime_30d
                )
            )
        if endpoint.score is not None:
            score.samples.append(Sample(score.name, labels, float(endpoint.score)))
        for family, flag in (
            (valid, endpoint.payment_requirements_valid),
            (asset, endpoint.asset_verified),
            (facilitator, endpoint.facilitator_supported),
        ):
            if flag is not None:
                family.samples.append(Sample(family.name, labels, 1.0 if flag else 0.0))
        if endpoint.p50_ms is not None:
            p50.samples.append(Sample(p50.name, labels, endpoint.p50_ms / 1000.0))
        if endpoint.last_check_at is not None:
            last_check.samples.append(
                Sample(last_check.name, labels, endpoint.last_check_at.timestamp())
            )
    return [info, up, status, failures, uptime, score, valid, asset, facilitator, p50, last_check]


def _monitor_families(snapshot: MonitorSnapshot) -> list[Metric]:
    """Build the process-wide families: probe totals, durations and the monitor's own health."""
    probes = CounterMetricFamily(
        "x402_probes",
        "Checks run since the monitor started, by outcome (pass, soft_fail, hard_fail, "
        "inconclusive).",
        labels=["outcome"],
    )
    for outcome in _OUTCOMES:
        probes.add_metric([str(outcome)], float(snapshot.probes_total.get(outcome, 0)))

    histogram = snapshot.probe_durations
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip(_BUCKET_BOUNDS, histogram.bucket_counts, strict=True):
        cumulative += count
        buckets.append((bound, float(cumulative)))
    durations = HistogramMetricFamily(
        "x402_probe_duration_seconds",
        "Time from request start to response headers (or failure) of each probe.",
        buckets=buckets,
        sum_value=histogram.total_seconds,
    )

    families: list[Metric] = [probes, durations]
    for name, documentation, value in (
        (
            "x402_monitor_scheduler_lag_seconds",
            "How late the latest dispatch tick ran compared with its schedule.",
            snapshot.scheduler_lag_seconds,
        ),
        (
            "x402_monitor_probes_in_flight",
            "Probes sent and not yet answered.",
            float(snapshot.probes_in_flight),
        ),
        (
            "x402_monitor_snapshot_timestamp_seconds",
            "Unix time at which the exported snapshot was taken.",
            snapshot.taken_at.timestamp(),
        ),
    ):
        families.append(GaugeMetricFamily(name, documentation, value=value))
    families.append(
        CounterMetricFamily(
            "x402_monitor_probe_rounds",
            "Probe rounds completed and stored since the monitor started.",
            value=float(snapshot.rounds_total),
        )
    )
    last_round = GaugeMetricFamily(
        "x402_monitor_last_round_timestamp_seconds",
        "Unix time at which the latest probe round completed and was stored; absent before "
        "the first one.",
    )
    if snapshot.last_round_at is not None:
        last_round.add_metric([], snapshot.last_round_at.timestamp())
    families.append(last_round)
    families.append(
        GaugeMetricFamily(
            "x402_alerts_firing",
            "Endpoints whose alert is firing (failure_threshold failed checks in a row).",
            value=float(snapshot.alerts_firing),
        )
    )
    notifications = CounterMetricFamily(
        "x402_notifications",
        "Notification delivery attempts since the monitor started, by channel and result "
        "(sent, retry, failed).",
        labels=["channel", "result"],
    )
    for (channel, result), count in sorted(snapshot.notifications_total.items()):
        notifications.add_metric([channel, result], float(count))
    families.append(notifications)
    discovered = GaugeMetricFamily(
        "x402_monitor_discovery_items",
        "Catalogue items of each source's latest crawl, by result (seen, new, updated, "
        "delisted, rejected_<reason>).",
        labels=["source", "result"],
    )
    for (source, result), count in sorted(snapshot.discovery_items.items()):
        discovered.add_metric([source, result], float(count))
    families.append(discovered)
    last_crawl = GaugeMetricFamily(
        "x402_monitor_last_discovery_timestamp_seconds",
        "Unix time at which each source's latest complete crawl ended.",
        labels=["source"],
    )
    for source, at in sorted(snapshot.last_discovery_at.items()):
        last_crawl.add_metric([source], at.timestamp())
    families.append(last_crawl)
    return families
