"""`monitor discover` (Bazaar catalogues) and `monitor alerts test|status`."""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.alert_config import ChannelConfig
from monitor.alerts import DeliveryResult, Notifier
from monitor.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    load_config_file,
    utc_now,
)
from monitor.config import Config, SourceConfig
from monitor.indexing import CrawlSummary, crawl_source, crawler_for
from monitor.models import MonitorError
from monitor.notify import send_test
from monitor.store import Store


def discover_command(args: argparse.Namespace) -> int:
    """Crawl each configured source once; print a summary per source (exit 1 if any failed)."""
    config = load_config_file(args.config, channels=False)
    sources = [s for s in config.sources if not args.source or s.name in args.source]
    unknown = set(args.source or ()) - {source.name for source in config.sources}
    if unknown:
        raise MonitorError(f"--source {sorted(unknown)[0]}: no such source under sources:")
    if not sources:
        raise MonitorError("sources: none configured (add a bazaar source, see README)")
    store = Store.open(config.database_url(args.config.parent))
    try:
        summaries = asyncio.run(crawl_all(store, sources, config, args.dry_run, not args.json))
    finally:
        store.close()
    if args.json:
        print(json.dumps({"sources": [s.as_json() for s in summaries]}, sort_keys=True))
    else:
        for summary in summaries:
            rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.rejected.items()))
            state = "complete" if summary.complete else f"stopped: {summary.error}"
            print(
                f"{summary.source}: {summary.seen} seen, {summary.new} new, "
                f"{summary.updated} updated, {summary.delisted} delisted, "
                f"{sum(summary.rejected.values())} rejected{f' ({rejected})' if rejected else ''}"
                f" - {state}{' (dry run)' if args.dry_run else ''}"
            )
    return EXIT_OK if all(summary.complete for summary in summaries) else EXIT_INVALID


async def crawl_all(
    store: Store, sources: list[SourceConfig], config: Config, dry_run: bool, show: bool
) -> list[CrawlSummary]:
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[seen]} items"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show or not console.is_terminal,
    )
    summaries = []
    with bar:
        for source in sources:
            task = bar.add_task(f"crawling {source.name}", total=None, seen=0)

            def progress(summary: CrawlSummary, task: TaskID = task) -> None:
                bar.update(task, seen=summary.seen)

            async with crawler_for(source, config) as crawler:
                summaries.append(
                    await crawl_source(
                        store, crawler, source, config, utc_now, dry_run=dry_run, on_page=progress
                    )
                )
    return summaries


def alerts_test_command(args: argparse.Namespace) -> int:
    """Send a `test` notification through every channel; exit 1 when any failed."""
    config = load_config_file(args.config, channels=True)
    if not config.alerts.channels:
        raise MonitorError(
            "alerts.channels: no channel configured (add a webhook, alertmanager or apprise one)"
        )

    async def send() -> list[tuple[ChannelConfig, DeliveryResult]]:
        async with Notifier(user_agent=config.probe.user_agent) as notifier:
            return await send_test(
                notifier, config.alerts.channels, utc_now(), config.site.base_url
            )

    failed = 0
    for channel, result in asyncio.run(send()):
        verdict = "ok" if result.ok else ("refused" if result.permanent else "failed")
        failed += not result.ok
        print(f"{channel.describe()}: {verdict} ({result.detail})")
    return EXIT_OK if not failed else EXIT_INVALID


def alerts_status_command(args: argparse.Namespace) -> int:
    """List firing alerts: endpoint, status, failures in a row, since, last error."""
    config = load_config_file(args.config, channels=False)
    store = Store.open(config.database_url(args.config.parent))
    try:
        firing = store.firing()
    finally:
        store.close()
    if not firing:
        print("no alert is firing")
    for endpoint in firing:
        since = endpoint.alert.get("fired_at") if isinstance(endpoint.alert, dict) else None
        print(
            f"FIRING {endpoint.spec.url}  status {endpoint.state.status}, "
            f"{endpoint.state.consecutive_failures} failures in a row, since {since}, "
            f"last error: {endpoint.last_error or '-'}"
        )
    return EXIT_OK
