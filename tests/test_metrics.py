"""`monitor.metrics`: one snapshot in, the exact exposition of DESIGN.md's metric set out."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tools import require_tool, run_tool

from monitor.config import ThresholdsConfig
from monitor.metrics import CONTENT_TYPE, SnapshotCollector, build_registry, render
from monitor.models import (
    AssetVerdict,
    Challenge,
    CheckResult,
    EndpointSpec,
    FacilitatorVerdict,
    Outcome,
    Status,
)
from monitor.pages import store_snapshot
from monitor.snapshot import (
    DurationHistogram,
    EndpointSnapshot,
    MonitorSnapshot,
    asset_verified_flag,
    facilitator_supported_flag,
)
from monitor.store import Store
from monitor.x402 import parse_challenge

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CHECKED = datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)
HOSTILE_TITLE = 'Say "hi"\nnext line \\ back\\slash }, x="y'
HOSTILE_URL = 'https://evil.example/a"b\\c?q="}\n'

Series = dict[tuple[tuple[str, str], ...], float]


def _endpoint(slug: str, **changes: object) -> EndpointSnapshot:
    fields: dict[str, object] = {
        "slug": slug,
        "url": f"https://{slug}.example/api",
        "method": "GET",
        "title": slug.title(),
        "category": "data",
        "network": "eip155:8453",
        "source": "config",
        "status": Status.UNKNOWN,
        "up": None,
        "consecutive_failures": 0,
        "uptime_30d": None,
        "score": None,
        "payment_requirements_valid": None,
        "asset_verified": None,
        "facilitator_supported": None,
        "last_check_at": None,
    }
    fields.update(changes)
    return EndpointSnapshot(**fields)  # type: ignore[arg-type]


ENDPOINTS = (
    # Never conclusively checked: only info, status and the failure counter exist.
    _endpoint("fresh"),
    _endpoint(
        "healthy",
        status=Status.HEALTHY,
        up=True,
        uptime_30d=0.995,
        score=92,
        payment_requirements_valid=True,
        asset_verified=True,
        facilitator_supported=True,
        last_check_at=CHECKED,
        p50_ms=120.0,
    ),
    _endpoint(
        "degraded",
        status=Status.DEGRADED,
        up=False,
        consecutive_failures=1,
        uptime_30d=0.5,
        payment_requirements_valid=False,
        asset_verified=False,
        last_check_at=CHECKED,
        p50_ms=2500.0,
    ),
    _endpoint(
        "down",
        status=Status.DOWN,
        up=False,
        consecutive_failures=7,
        uptime_30d=0.0,
        score=0,
        last_check_at=CHECKED,
        source="bazaar:https://x402.org/facilitator",
    ),
    _endpoint(
        "hostile",
        url=HOSTILE_URL,
        title=HOSTILE_TITLE,
        method=None,
        category=None,
        network=None,
    ),
)

SNAPSHOT = MonitorSnapshot(
    taken_at=NOW,
    endpoints=ENDPOINTS,
    probes_total={Outcome.PASS: 10, Outcome.HARD_FAIL: 3},
    probe_durations=DurationHistogram().observe(0.03).observe(0.2).observe(0.2).observe(60.0),
    scheduler_lag_seconds=0.25,
    probes_in_flight=4,
    rounds_total=17,
    last_round_at=CHECKED,
)


def _scrape(snapshot: MonitorSnapshot | None) -> str:
    body, content_type = render(build_registry(lambda: snapshot))
    assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    return body.decode("utf-8")


def _series(text: str) -> dict[str, Series]:
    """Return every sample as {sample name: {sorted label pairs: value}}."""
    result: dict[str, Series] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            assert key not in result.setdefault(sample.name, {}), f"duplicate {sample}"
            result[sample.name][key] = sample.value
    return result


def _by_endpoint(series: Series) -> dict[str, float]:
    return {dict(labels)["endpoint"]: value for labels, value in series.items()}


@pytest.fixture(scope="module")
def text() -> str:
    return _scrape(SNAPSHOT)


@pytest.fixture(scope="module")
def series(text: str) -> dict[str, Series]:
    return _series(text)


def test_family_set_types_and_help(text: str) -> None:
    families = {
        f.name: f for f in text_string_to_metric_families(text) if f.name.startswith("x402_")
    }
    assert {name: f.type for name, f in families.items()} == {
        "x402_endpoint_info": "gauge",
        "x402_endpoint_up": "gauge",
        "x402_endpoint_status": "gauge",
        "x402_endpoint_consecutive_failures": "gauge",
        "x402_endpoint_uptime_ratio": "gauge",
        "x402_endpoint_reliability_score": "gauge",
        "x402_payment_requirements_valid": "gauge",
        "x402_asset_verified": "gauge",
        "x402_facilitator_supported": "gauge",
        "x402_endpoint_latency_p50_seconds": "gauge",
        "x402_last_check_timestamp_seconds": "gauge",
        "x402_probes": "counter",
        "x402_probe_duration_seconds": "histogram",
        "x402_monitor_scheduler_lag_seconds": "gauge",
        "x402_monitor_probes_in_flight": "gauge",
        "x402_monitor_probe_rounds": "counter",
        "x402_monitor_last_round_timestamp_seconds": "gauge",
        "x402_alerts_firing": "gauge",
        "x402_notifications": "counter",
        "x402_monitor_discovery_items": "gauge",
        "x402_monitor_last_discovery_timestamp_seconds": "gauge",
        "x402_monitor_snapshot_timestamp_seconds": "gauge",
    }
    for family in families.values():
        assert len(family.documentation) > 20, family.name


def test_standard_collectors_are_registered(series: dict[str, Series]) -> None:
    assert "python_info" in series
    assert "python_gc_collections_total" in series
    if "process_start_time_seconds" not in series:  # ProcessCollector needs /proc (Linux)
        pytest.skip("no /proc: ProcessCollector exports nothing here")


def test_info_carries_identity_and_only_info_carries_it(series: dict[str, Series]) -> None:
    info = {dict(k)["endpoint"]: dict(k) for k in series["x402_endpoint_info"]}
    assert set(info) == {"fresh", "healthy", "degraded", "down", "hostile"}
    assert set(series["x402_endpoint_info"].values()) == {1.0}
    assert info["down"] == {
        "endpoint": "down",
        "url": "https://down.example/api",
        "method": "GET",
        "title": "Down",
        "network": "eip155:8453",
        "category": "data",
        "source": "bazaar:https://x402.org/facilitator",
    }
    allowed = {"endpoint", "status", "window", "outcome", "le"}
    for name, samples in series.items():
        if name.startswith("x402_") and name != "x402_endpoint_info":
            for labels in samples:
                assert {k for k, _ in labels} <= allowed, (name, labels)


def test_hostile_labels_are_escaped_and_round_trip(text: str, series: dict[str, Series]) -> None:
    info = {dict(k)["endpoint"]: dict(k) for k in series["x402_endpoint_info"]}
    hostile = info["hostile"]
    assert hostile["title"] == HOSTILE_TITLE
    assert hostile["url"] == HOSTILE_URL
    assert hostile["method"] == hostile["network"] == hostile["category"] == ""
    assert 'title="Say \\"hi\\"\\nnext line \\\\ back\\\\slash }, x=\\"y"' in text
    # Each sample stays on one line: no raw newline leaked from a label value.
    info_lines = [line for line in text.splitlines() if line.startswith("x402_endpoint_info{")]
    assert len(info_lines) == len(ENDPOINTS)


def test_up_is_absent_until_a_conclusive_check(series: dict[str, Series]) -> None:
    assert _by_endpoint(series["x402_endpoint_up"]) == {"healthy": 1, "degraded": 0, "down": 0}


def test_status_has_one_series_per_status_with_the_current_one_set(
    series: dict[str, Series],
) -> None:
    status = series["x402_endpoint_status"]
    assert len(status) == len(ENDPOINTS) * len(Status)
    current = {dict(k)["endpoint"]: dict(k)["status"] for k, v in status.items() if v == 1}
    assert current == {
        "fresh": "unknown",
        "healthy": "healthy",
        "degraded": "degraded",
        "down": "down",
        "hostile": "unknown",
    }
    assert sum(status.values()) == len(ENDPOINTS)


def test_per_endpoint_figures_and_omissions(series: dict[str, Series]) -> None:
    assert _by_endpoint(series["x402_endpoint_consecutive_failures"]) == {
        "fresh": 0,
        "healthy": 0,
        "degraded": 1,
        "down": 7,
        "hostile": 0,
    }
    assert series["x402_endpoint_uptime_ratio"] == {
        (("endpoint", "healthy"), ("window", "30d")): 0.995,
        (("endpoint", "degraded"), ("window", "30d")): 0.5,
        (("endpoint", "down"), ("window", "30d")): 0.0,
    }
    # Unrated endpoints have no score; a real 0 (down) is kept.
    assert _by_endpoint(series["x402_endpoint_reliability_score"]) == {"healthy": 92, "down": 0}
    assert _by_endpoint(series["x402_payment_requirements_valid"]) == {"healthy": 1, "degraded": 0}
    assert _by_endpoint(series["x402_asset_verified"]) == {"healthy": 1, "degraded": 0}
    assert _by_endpoint(series["x402_facilitator_supported"]) == {"healthy": 1}
    assert _by_endpoint(series["x402_endpoint_latency_p50_seconds"]) == {
        "healthy": 0.12,
        "degraded": 2.5,
    }
    assert _by_endpoint(series["x402_last_check_timestamp_seconds"]) == dict.fromkeys(
        ("healthy", "degraded", "down"), CHECKED.timestamp()
    )


def test_probe_totals_list_every_outcome(series: dict[str, Series]) -> None:
    assert series["x402_probes_total"] == {
        (("outcome", "pass"),): 10,
        (("outcome", "soft_fail"),): 0,
        (("outcome", "hard_fail"),): 3,
        (("outcome", "inconclusive"),): 0,
    }


def test_duration_histogram_is_cumulative(series: dict[str, Series]) -> None:
    buckets = {dict(k)["le"]: v for k, v in series["x402_probe_duration_seconds_bucket"].items()}
    assert buckets == {
        "0.05": 1,
        "0.1": 1,
        "0.25": 3,
        "0.5": 3,
        "1.0": 3,
        "2.0": 3,
        "5.0": 3,
        "10.0": 3,
        "30.0": 3,
        "+Inf": 4,
    }
    assert series["x402_probe_duration_seconds_count"] == {(): 4}
    assert series["x402_probe_duration_seconds_sum"][()] == pytest.approx(60.43)


def test_monitor_self_metrics(series: dict[str, Series]) -> None:
    assert series["x402_monitor_scheduler_lag_seconds"] == {(): 0.25}
    assert series["x402_monitor_probes_in_flight"] == {(): 4}
    assert series["x402_monitor_probe_rounds_total"] == {(): 17}
    assert series["x402_monitor_last_round_timestamp_seconds"] == {(): CHECKED.timestamp()}
    assert series["x402_monitor_snapshot_timestamp_seconds"] == {(): NOW.timestamp()}


def test_empty_snapshot_keeps_families_and_omits_the_unknown_round() -> None:
    text = _scrape(MonitorSnapshot(taken_at=NOW))
    series = _series(text)
    assert "# TYPE x402_endpoint_up gauge" in text
    assert "x402_endpoint_up" not in series
    assert "x402_monitor_last_round_timestamp_seconds" not in series
    assert series["x402_monitor_probe_rounds_total"] == {(): 0}
    assert len(series["x402_probes_total"]) == len(Outcome)
    assert series["x402_probe_duration_seconds_count"] == {(): 0}


def test_no_snapshot_yet_exports_no_x402_metrics() -> None:
    text = _scrape(None)
    assert "x402_" not in text
    assert "python_info" in text


def test_one_snapshot_per_scrape_and_errors_propagate() -> None:
    calls: list[int] = []

    def get_snapshot() -> MonitorSnapshot:
        calls.append(1)
        return SNAPSHOT

    registry = build_registry(get_snapshot)
    assert calls == []  # registering must not build a snapshot
    render(registry)
    assert len(calls) == 1

    def broken() -> MonitorSnapshot:
        raise RuntimeError("store gone")

    with pytest.raises(RuntimeError, match="store gone"):
        list(SnapshotCollector(broken).collect())


@pytest.mark.parametrize(
    "make_snapshot",
    [lambda: SNAPSHOT, lambda: MonitorSnapshot(taken_at=NOW)],
    ids=["every-state", "empty"],
)
def test_promtool_check_metrics_is_clean(make_snapshot: Callable[[], MonitorSnapshot]) -> None:
    promtool = require_tool("promtool")
    body, _ = render(build_registry(make_snapshot))
    result = run_tool([promtool, "check", "metrics"], stdin=body)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_promtool_check_metrics_catches_lint_problems() -> None:
    """Guard the guard: the check above must be able to fail."""
    promtool = require_tool("promtool")
    bad = b"# HELP x402_probes Probes.\n# TYPE x402_probes counter\nx402_probes 1\n"
    result = run_tool([promtool, "check", "metrics"], stdin=bad)
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


# The three verdict gauges: what each verdict publishes, end to end from stored checks ----------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"


@pytest.mark.parametrize(
    ("verdict", "flag"),
    [
        (None, None),  # the latest check got no 402 to judge
        (AssetVerdict.VERIFIED, True),
        (AssetVerdict.MISMATCH, False),
        (AssetVerdict.UNVERIFIED, False),  # an unknown token: nothing verified it
        (AssetVerdict.UNKNOWN, None),  # no readable offer
    ],
)
def test_asset_verified_flag(verdict: AssetVerdict | None, flag: bool | None) -> None:
    assert asset_verified_flag(verdict) is flag


@pytest.mark.parametrize(
    ("verdict", "flag"),
    [
        (None, None),
        (FacilitatorVerdict.SUPPORTED, True),
        (FacilitatorVerdict.UNSUPPORTED, False),
        (FacilitatorVerdict.INVALID, False),
        (FacilitatorVerdict.UNREACHABLE, False),
        (FacilitatorVerdict.UNKNOWN, None),  # no facilitator known, or no offer to check
    ],
)
def test_facilitator_supported_flag(verdict: FacilitatorVerdict | None, flag: bool | None) -> None:
    assert facilitator_supported_flag(verdict) is flag


def test_flag_tables_name_every_verdict() -> None:
    """A new verdict must be given a published value on purpose (this fails until it is)."""
    assets = {AssetVerdict.VERIFIED, AssetVerdict.MISMATCH, AssetVerdict.UNVERIFIED}
    assert assets | {AssetVerdict.UNKNOWN} == set(AssetVerdict)
    facilitators = {"supported", "unsupported", "invalid", "unreachable", "unknown"}
    assert {str(v) for v in FacilitatorVerdict} == facilitators


def _challenge(name: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Challenge:
    """Parse a fixture as the endpoint sent it: a .b64 file as the v2 header, JSON as the body."""
    raw = (FIXTURES / name).read_bytes()
    header = name.endswith(".b64")
    document = json.loads(base64.b64decode(raw) if header else raw)
    if edit is not None:
        edit(document)
    encoded = json.dumps(document).encode()
    if header:
        return parse_challenge({"payment-required": base64.b64encode(encoded).decode()}, b"{}")
    return parse_challenge({}, encoded)


def _wrong_domain(document: dict[str, Any]) -> None:
    document["accepts"][0]["extra"]["name"] = "Not The Token"


def _unknown_token(document: dict[str, Any]) -> None:
    document["accepts"][0]["asset"] = "0x" + "12" * 20


def _no_offers(document: dict[str, Any]) -> None:
    document["accepts"] = []


V2_HEADER = "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64"
V1_BODY = "01-v1-evm-spec-base-sepolia.json"
V2_BODY_ONLY = "02b-v2-evm-spec-decoded.json"  # a v2 document in the body only: invalid
S = FacilitatorVerdict

# id: the endpoint's checks, oldest first, as (challenge or None, facilitator verdict); then the
# expected gauges (payment requirements valid, asset verified, facilitator supported), None =
# the series is absent.
VERDICT_ROWS: list[
    tuple[str, list[tuple[Challenge | None, FacilitatorVerdict]], tuple[Any, Any, Any]]
] = [
    ("no-facilitator", [(_challenge(V2_HEADER), S.UNKNOWN)], (1, 1, None)),
    ("supported", [(_challenge(V2_HEADER), S.SUPPORTED)], (1, 1, 1)),
    ("unsupported", [(_challenge(V2_HEADER), S.UNSUPPORTED)], (1, 1, 0)),
    ("facilitator-invalid", [(_challenge(V1_BODY), S.INVALID)], (1, 1, 0)),
    ("facilitator-unreachable-and-endpoint-down", [(None, S.UNREACHABLE)], (None, None, 0)),
    ("no-answer-no-facilitator", [(None, S.UNKNOWN)], (None, None, None)),
    (
        "was-fine-then-no-answer",
        [(_challenge(V2_HEADER), S.SUPPORTED), (None, S.UNKNOWN)],
        (None, None, None),
    ),
    (
        "was-fine-then-wrong-domain-and-unsupported",
        [(_challenge(V2_HEADER), S.SUPPORTED), (_challenge(V1_BODY, _wrong_domain), S.UNSUPPORTED)],
        (0, 0, 0),
    ),
    (
        "never-passed-but-verified-and-supported",
        [(_challenge(V2_BODY_ONLY), S.SUPPORTED)],
        (0, 1, 1),
    ),
    ("unknown-token", [(_challenge(V1_BODY, _unknown_token), S.SUPPORTED)], (1, 0, 1)),
    ("no-readable-offer", [(_challenge(V1_BODY, _no_offers), S.UNKNOWN)], (0, None, None)),
]


def test_the_verdict_rows_hold_the_verdicts_they_claim() -> None:
    rows = {name: checks for name, checks, _ in VERDICT_ROWS}
    assert rows["never-passed-but-verified-and-supported"][0][0] is not None
    latest = {name: checks[-1][0] for name, checks in rows.items()}
    verdicts = {name: c.asset_verdict if c else None for name, c in latest.items()}
    assert verdicts["was-fine-then-wrong-domain-and-unsupported"] is AssetVerdict.MISMATCH
    assert verdicts["never-passed-but-verified-and-supported"] is AssetVerdict.VERIFIED
    assert verdicts["unknown-token"] is AssetVerdict.UNVERIFIED
    assert verdicts["no-readable-offer"] is AssetVerdict.UNKNOWN


def test_verdict_gauges_follow_the_latest_check_and_are_absent_when_unknown(
    tmp_path: Path,
) -> None:
    """Store real checks, build the snapshot as the service does, and scrape it.

    Each gauge publishes the latest check's verdict, as the endpoint's page shows it: 1 or 0,
    or no series when that verdict is unknown (never a fake 0, never an older pass's value).
    """
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    urls = {name: f"https://{name}.example/pay" for name, _, _ in VERDICT_ROWS}
    store.sync_config_endpoints([EndpointSpec(url, "GET") for url in urls.values()], t0)
    ids = {endpoint.spec.url: endpoint.id for endpoint in store.endpoints()}
    for step in range(max(len(checks) for _, checks, _ in VERDICT_ROWS)):
        at = t0 + timedelta(minutes=step)
        results = []
        for name, checks, _ in VERDICT_ROWS:
            if step >= len(checks):
                continue
            challenge, facilitator = checks[step]
            outcome = (
                Outcome.HARD_FAIL
                if challenge is None
                else (Outcome.PASS if challenge.valid else Outcome.SOFT_FAIL)
            )
            result = CheckResult(
                urls[name],
                "GET",
                False,
                at,
                outcome,
                None if challenge is None else 402,
                None if challenge is None else 80.0,
                None if outcome is Outcome.PASS else "failed",
                challenge,
                facilitator_verdict=facilitator,
            )
            results.append((ids[urls[name]], result))
        store.save_round(results, ThresholdsConfig(), timedelta(minutes=1))
    snapshot = store_snapshot(store, t0 + timedelta(minutes=5))
    store.close()

    series = _series(_scrape(snapshot))
    slugs = {
        dict(labels)["url"]: dict(labels)["endpoint"] for labels in series["x402_endpoint_info"]
    }
    gauges = (
        "x402_payment_requirements_valid",
        "x402_asset_verified",
        "x402_facilitator_supported",
    )
    published = {name: _by_endpoint(series[name]) for name in gauges}
    got = {
        name: tuple(published[gauge].get(slugs[urls[name]]) for gauge in gauges)
        for name, _, _ in VERDICT_ROWS
    }
    assert got == {name: expected for name, _, expected in VERDICT_ROWS}
