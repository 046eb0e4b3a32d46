"""Crawl a facilitator's Bazaar catalogue into the store: normalise, index, delist.

Shell module: wires the crawler edge, the catalogue core and the store. A crawl resumes
where an interrupted one stopped (the store keeps its start time and next offset); only a
complete crawl counts endpoints that went missing, so a failed page never delists anything.
Pages are normalised and stored in worker threads: a page of thousands of items (a server
may ignore `limit`) costs seconds of CPU that must not stall probes sharing the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.catalogue import CatalogueEntry, Rejection, normalise_item
from monitor.config import Config, SourceConfig
from monitor.discovery import CatalogueCrawler, CrawlError
from monitor.models import JsonValue
from monitor.store import Store
from monitor.urls import slug_for

log = logging.getLogger(__name__)


@dataclass
class CrawlSummary:
    """What one crawl of one source did."""

    source: str
    seen: int = 0
    new: int = 0
    updated: int = 0
    config_owned: int = 0
    missed: int = 0
    delisted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    complete: bool = False
    resumed_from: int = 0
    error: str | None = None
    finished_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the summary as plain JSON (`monitor discover --json`)."""
        return {
            "source": self.source,
            "seen": self.seen,
            "new": self.new,
            "updated": self.updated,
            "config_owned": self.config_owned,
            "missed": self.missed,
            "delisted": self.delisted,
            "rejected": dict(sorted(self.rejected.items())),
            "complete": self.complete,
            "resumed_from": self.resumed_from,
            "error": self.error,
        }


def crawler_for(source: SourceConfig, config: Config) -> CatalogueCrawler:
    """Return a crawler bounded as the source's config says."""
    return CatalogueCrawler(
        user_agent=config.probe.user_agent,
        timeout=config.probe.timeout * 3,
        max_items=source.max_items,
    )


async def crawl_source(
    store: Store,
    crawler: CatalogueCrawler,
    source: SourceConfig,
    config: Config,
    clock: Callable[[], datetime],
    *,
    dry_run: bool = False,
    on_page: Callable[[CrawlSummary], None] | None = None,
    writer: asyncio.Lock | None = None,
) -> CrawlSummary:
    """Crawl one source into `store` (or only count, with `dry_run`); never raises CrawlError.

    `writer` serialises store writes with the caller's other writers (the service's probe
    rounds and other sources' crawls, which may list the same endpoints).
    """
    lock = writer or asyncio.Lock()
    state = await asyncio.to_thread(store.crawl, source.name)
    resuming = state.started_at is not None and not dry_run
    started = state.started_at if resuming and state.started_at else clock()
    summary = CrawlSummary(source.name, resumed_from=state.next_offset if resuming else 0)
    known = (
        {endpoint.slug for endpoint in await asyncio.to_thread(store.endpoints)}
        if dry_run
        else set()
    )
    allow_private = config.probe.allow_private_addresses
    try:
        async for page in crawler.pages(source.url, start_offset=summary.resumed_from):
            entries, rejected = await asyncio.to_thread(_normalise_page, page.items, allow_private)
            summary.rejected.update(rejected)
            summary.seen += len(page.items)
            if dry_run:
                for entry in entries:
                    slug = slug_for(*entry.key)
                    summary.new += slug not in known
                    summary.updated += slug in known
                    known.add(slug)
            else:
                async with lock:
                    counts = await asyncio.to_thread(
                        store.index_catalogue_page,
                        source.name,
                        source.url,
                        entries,
                        crawl_started_at=started,
                        next_offset=page.next_offset,
                        interval=config.probe.interval,
                    )
                summary.new += counts.new
                summary.updated += counts.updated
                summary.config_owned += counts.config_owned
            if on_page is not None:
                on_page(summary)
    except CrawlError as error:
        summary.error = str(error)
        log.warning("discovery %s: %s (resumes from there next time)", source.name, error)
        if not dry_run:
            async with lock:
                await asyncio.to_thread(
                    store.record_crawl_failure, source.name, clock(), str(error)
                )
        return summary
    summary.complete = True
    summary.finished_at = clock()
    if not dry_run:
        async with lock:
            summary.missed, summary.delisted = await asyncio.to_thread(
                store.finish_crawl, source.name, started, summary.finished_at, source.delist_after
            )
    log.info(
        "discovery %s: %d seen, %d new, %d updated, %d delisted, %d rejected",
        source.name,
        summary.seen,
        summary.new,
        summary.updated,
        summary.delisted,
        sum(summary.rejected.values()),
    )
    return summary


def _normalise_page(
    items: list[JsonValue], allow_private: bool
) -> tuple[list[CatalogueEntry], Counter[str]]:
    """Return a page's indexable entries and its rejections counted by reason."""
    entries: list[CatalogueEntry] = []
    rejected: Counter[str] = Counter()
    for item in items:
        result = normalise_item(item, allow_private=allow_private)
        if isinstance(result, Rejection):
            rejected[result.reason] += 1
        else:
            entries.append(result)
    return entries, rejected
