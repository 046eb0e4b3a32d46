"""Discovery into the store: a loopback facilitator's catalogue (real items + hostile ones)
indexed as endpoints; rejections by reason; 429 once; a failing page deletes nothing and the
crawl resumes; delisting after N complete crawls and relisting; `monitor discover` end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from test_crawl import HOSTILE, StubCatalogue, catalogue, real_item

from monitor.config import Config, parse_config
from monitor.discovery import CatalogueCrawler
from monitor.indexing import CrawlSummary, crawl_source
from monitor.store import Store

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
SUBPROCESS_S = 120
"""Bound on one `monitor` subprocess: starting the package alone takes seconds on a busy machine."""


@pytest.fixture
def stub() -> Iterator[StubCatalogue]:
    server = StubCatalogue(catalogue(250))
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _config(url: str, **source: object) -> Config:
    return parse_config({"sources": [{"type": "bazaar", "name": "cdp", "url": url, **source}]}, {})


async def _no_sleep(_seconds: float) -> None:
    return None


def _crawl(store: Store, config: Config, now: datetime, *, dry_run: bool = False) -> CrawlSummary:
    async def run() -> CrawlSummary:
        async with CatalogueCrawler(user_agent="test", sleep=_no_sleep) as crawler:
            return await crawl_source(
                store, crawler, config.sources[0], config, lambda: now, dry_run=dry_run
            )

    return asyncio.run(run())


def test_catalogue_is_indexed_with_counts_and_reasons(tmp_path: Path, stub: StubCatalogue) -> None:
    config = _config(stub.base_url)
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    stub.scripted[100].append((429, {"Retry-After": "1"}, b""))  # rate limited once
    summary = _crawl(store, config, T0)
    assert summary.complete
    assert summary.seen == 250
    expected_rejections: dict[str, int] = {}
    for _, reason in HOSTILE:
        expected_rejections[reason] = expected_rejections.get(reason, 0) + 1
    assert dict(summary.rejected) == expected_rejections
    real = 250 - len(HOSTILE) - 2  # two duplicate URLs collapse onto existing endpoints
    assert summary.new == real
    assert summary.updated == 2
    endpoints = {endpoint.spec.url: endpoint for endpoint in store.endpoints()}
    assert len(endpoints) == real
    first = endpoints["https://api0.example.com/x402/weather/0"]
    assert first.spec.source == "cdp"
    assert first.spec.facilitator == stub.base_url.rstrip("/")
    assert first.spec.title == "Weather forecast number 0 for any city"
    assert first.spec.category == "weather"
    assert first.provider == "example.com"
    assert isinstance(first.catalogue_item, dict)
    assert first.catalogue_item["resource"] == first.spec.url
    assert first.next_check_at is not None  # scheduled within one interval
    assert T0 < first.next_check_at <= T0 + config.probe.interval
    assert not any("10.0.0.5" in url or "localhost" in url for url in endpoints)


def test_failing_page_keeps_everything_and_the_crawl_resumes(
    tmp_path: Path, stub: StubCatalogue
) -> None:
    config = _config(stub.base_url)
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    assert _crawl(store, config, T0).complete
    before = len(store.endpoints())
    stub.always[200] = (500, {}, b"down")
    later = T0 + timedelta(hours=1)
    failed = _crawl(store, config, later)
    assert not failed.complete
    assert failed.error is not None
    assert len(store.endpoints()) == before
    assert all(not endpoint.delisted for endpoint in store.endpoints())
    assert store.crawl("cdp").next_offset == 200
    del stub.always[200]
    stub.requests.clear()
    resumed = _crawl(store, config, later + timedelta(minutes=5))
    assert resumed.complete
    assert resumed.resumed_from == 200
    assert [int(query["offset"][0]) for query in stub.requests] == [200]
    assert resumed.missed == 0  # the resumed crawl started before every item was seen again


def test_delisting_after_complete_crawls_and_relisting(tmp_path: Path, stub: StubCatalogue) -> None:
    config = _config(stub.base_url, delist_after=2)
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    _crawl(store, config, T0)
    gone = real_item(5)
    stub.items = [item for item in stub.items if item != gone]
    url = str(gone["resource"])
    first = _crawl(store, config, T0 + timedelta(hours=1))
    assert (first.missed, first.delisted) == (1, 0)
    second = _crawl(store, config, T0 + timedelta(hours=2))
    assert (second.missed, second.delisted) == (1, 1)
    endpoint = store.endpoints([url])[0]
    assert endpoint.delisted
    assert endpoint.next_check_at is None  # no longer probed, history kept
    store.resume(T0 + timedelta(hours=2), config.probe.interval)  # a restart
    assert store.endpoints([url])[0].next_check_at is None  # is not rescheduled either
    stub.items.append(gone)
    third = _crawl(store, config, T0 + timedelta(hours=3))
    assert third.delisted == 0
    relisted = store.endpoints([url])[0]
    assert not relisted.delisted
    assert relisted.next_check_at is not None


def test_config_entries_override_catalogue_data(tmp_path: Path, stub: StubCatalogue) -> None:
    item = real_item(3)
    url = str(item["resource"])
    config = parse_config(
        {
            "sources": [{"type": "bazaar", "name": "cdp", "url": stub.base_url}],
            "endpoints": [{"url": url, "method": "GET", "title": "Mine", "category": "mine"}],
        },
        {},
    )
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    store.sync_config_endpoints([e.to_spec() for e in config.endpoints], T0)
    summary = _crawl(store, config, T0)
    assert summary.config_owned == 1
    endpoint = store.endpoints([url])[0]
    assert (endpoint.spec.title, endpoint.spec.category, endpoint.spec.source) == (
        "Mine",
        "mine",
        "config",
    )
    assert endpoint.catalogue_item is not None  # the catalogue's facts are still kept


def test_dry_run_counts_without_storing(tmp_path: Path, stub: StubCatalogue) -> None:
    config = _config(stub.base_url)
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    summary = _crawl(store, config, T0, dry_run=True)
    assert summary.complete
    assert summary.new == 250 - len(HOSTILE) - 2
    assert store.endpoints() == []


@pytest.mark.integration
def test_monitor_discover_json_end_to_end(tmp_path: Path, stub: StubCatalogue) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"sources": [{"type": "bazaar", "name": "cdp", "url": stub.base_url}]})
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "discover", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_S,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["sources"][0]
    assert (summary["source"], summary["seen"], summary["complete"]) == ("cdp", 250, True)
    assert summary["rejected"]["private-target"] == 2
    text = subprocess.run(
        [sys.executable, "-m", "monitor", "discover", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_S,
        cwd=REPO,
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("cdp: 250 seen, 0 new, 242 updated, 0 delisted, 8 rejected")


def test_mcp_tools_are_indexed_and_shown_but_not_probed(
    tmp_path: Path, stub: StubCatalogue
) -> None:
    from test_catalogue import MCP_ITEM

    from monitor.models import Status

    stub.items = [real_item(1), MCP_ITEM]
    config = _config(stub.base_url)
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    assert _crawl(store, config, T0).new == 2
    tool = store.endpoints([str(MCP_ITEM["resource"])])[0]
    assert tool.kind == "mcp"
    assert tool.state.status is Status.UNKNOWN
    assert tool.last_error is not None
    assert tool.last_error.startswith("MCP tool")
    assert tool.next_check_at is None
    store.resume(T0 + timedelta(hours=1), config.probe.interval)
    assert store.due(T0 + timedelta(hours=2), limit=10) != []
    assert all(e.kind == "http" for e in store.due(T0 + timedelta(hours=2), limit=10))


def test_service_runs_one_discovery_job_per_source(tmp_path: Path, stub: StubCatalogue) -> None:
    from monitor.probe import Prober
    from monitor.service import MonitorService

    config = parse_config(
        {
            "sources": [
                {"type": "bazaar", "name": "cdp", "url": stub.base_url, "refresh": "30m"},
                {"type": "bazaar", "name": "other", "url": stub.base_url, "refresh": "2h"},
            ]
        },
        {},
    )
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")

    async def scenario() -> None:
        async with Prober(config.probe, clock=lambda: T0) as prober:
            service = MonitorService(config, store, prober, clock=lambda: T0)
            await service.start()
            jobs = {job.id: job for job in service._scheduler.get_jobs()}
            assert jobs["discover-cdp"].trigger.interval == timedelta(minutes=30)
            assert jobs["discover-other"].trigger.interval == timedelta(hours=2)
            await service._discover(config.sources[0])
            await service._refresh_snapshot()
            await service.stop(timedelta(seconds=1))
            snapshot = service.snapshot
            assert snapshot is not None
            assert snapshot.discovery_items[("cdp", "seen")] == 250
            assert snapshot.discovery_items[("cdp", "rejected_private-target")] == 2
            assert snapshot.last_discovery_at["cdp"] == T0

    asyncio.run(scenario())
    assert len(store.endpoints()) == 250 - len(HOSTILE) - 2
