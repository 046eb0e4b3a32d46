"""Index catalogue entries as endpoints, page by page, and delist what stopped being listed.

One endpoint per (normalised URL, method). Config entries win over catalogue data for the
same endpoint. Each page is stored in one transaction together with the crawl's next offset,
so a crash resumes at the page it was on; only a complete crawl counts missed endpoints, and
an endpoint missing from `delist_after` complete crawls is delisted (kept with its history,
no longer probed) until it reappears.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from monitor.catalogue import CatalogueEntry
from monitor.schedule import next_slot
from monitor.store.records import CrawlState
from monitor.store.tables import CrawlRow, EndpointRow, dump
from monitor.urls import slug_for

MCP_REASON = "MCP tool: indexed, not probed over HTTP"


@dataclass(frozen=True)
class PageCounts:
    """What indexing one page did."""

    new: int
    updated: int
    config_owned: int
    """Entries for endpoints the config lists: catalogue facts added, config values kept."""


def crawl_state(session: Session, source: str) -> CrawlRow:
    """Return the source's crawl state (a fresh one if it never crawled)."""
    return session.get(CrawlRow, source) or CrawlRow(source=source)


def index_page(
    session: Session,
    source: str,
    facilitator: str,
    entries: Sequence[CatalogueEntry],
    *,
    crawl_started_at: datetime,
    next_offset: int,
    interval: timedelta,
) -> PageCounts:
    """Upsert a page of entries and remember where the crawl continues, in one transaction."""
    slugs = {_slug(entry): entry for entry in entries}
    existing = {
        row.slug: row
        for row in session.exec(select(EndpointRow).where(col(EndpointRow.slug).in_(list(slugs))))
    }
    new = updated = owned = 0
    for slug, entry in slugs.items():
        row = existing.get(slug)
        if row is None:
            row = EndpointRow(
                slug=slug,
                url=entry.url,
                method=entry.method,
                source=source,
                first_seen_at=crawl_started_at,
                next_check_at=next_slot(slug, interval, crawl_started_at),
            )
            new += 1
        elif row.in_config:
            owned += 1
        else:
            updated += 1
        _apply_entry(row, entry, source, facilitator, crawl_started_at)
        session.add(row)
    state = crawl_state(session, source)
    state.started_at = crawl_started_at
    state.next_offset = next_offset
    state.last_attempt_at = crawl_started_at
    session.add(state)
    return PageCounts(new, updated, owned)


def finish_crawl(
    session: Session, source: str, crawl_started_at: datetime, now: datetime, delist_after: int
) -> tuple[int, int]:
    """Close a complete crawl: count misses, delist; return (missed, newly delisted)."""
    missing = session.exec(
        select(EndpointRow).where(
            EndpointRow.source == source,
            col(EndpointRow.in_config).is_(False),
            col(EndpointRow.delisted).is_(False),
            col(EndpointRow.last_seen_at) < crawl_started_at,
        )
    ).all()
    delisted = 0
    for row in missing:
        row.missed_crawls += 1
        if row.missed_crawls >= delist_after:
            row.delisted = True
            row.next_check_at = None
            delisted += 1
        session.add(row)
    state = crawl_state(session, source)
    state.started_at = None
    state.next_offset = 0
    state.completed_crawls += 1
    state.last_complete_at = now
    state.last_error = None
    session.add(state)
    return len(missing), delisted


def record_failure(session: Session, source: str, now: datetime, error: str) -> None:
    """Keep the crawl's resume point and say why it stopped; nothing is deleted."""
    state = crawl_state(session, source)
    state.last_attempt_at = now
    state.last_error = error[:500]
    session.add(state)


def _slug(entry: CatalogueEntry) -> str:
    url, method = entry.key
    return slug_for(url, method)


def _apply_entry(
    row: EndpointRow, entry: CatalogueEntry, source: str, facilitator: str, seen_at: datetime
) -> None:
    """Write the catalogue's facts; for a config endpoint only fill what config leaves open."""
    row.last_seen_at = seen_at
    row.missed_crawls = 0
    if row.delisted:
        row.delisted = False  # listed again: back on the schedule
        row.next_check_at = seen_at
    row.catalogue_json = json.dumps(entry.item, sort_keys=True, separators=(",", ":"))
    row.provider = entry.provider
    row.kind = entry.kind
    row.tool_name = entry.tool_name
    row.description = row.description or entry.description
    if entry.kind == "mcp":
        row.last_error = MCP_REASON
        row.next_check_at = None
    if row.in_config:
        row.title = row.title or entry.title
        row.category = row.category or entry.category
        row.facilitator = row.facilitator or facilitator
        row.input_schema_json = row.input_schema_json or dump(entry.input_schema)
        return
    row.source = source
    row.title = entry.title
    row.category = entry.category
    row.facilitator = facilitator
    row.input_schema_json = dump(entry.input_schema)
    row.challenge_output_json = row.challenge_output_json or dump(entry.output_schema)
    row.price = row.price or entry.price
    row.network = row.network or entry.network
    row.asset = row.asset or entry.asset


class CatalogueMethods:
    """Store methods for catalogue indexing (mixed into Store)."""

    def _session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError  # provided by Store

    def index_catalogue_page(
        self,
        source: str,
        facilitator: str,
        entries: Sequence[CatalogueEntry],
        *,
        crawl_started_at: datetime,
        next_offset: int,
        interval: timedelta,
    ) -> PageCounts:
        """Upsert one crawled page and its resume offset in one transaction (catalogue_index)."""
        with self._session() as session:
            return index_page(
                session,
                source,
                facilitator,
                entries,
                crawl_started_at=crawl_started_at,
                next_offset=next_offset,
                interval=interval,
            )

    def finish_crawl(
        self, source: str, crawl_started_at: datetime, now: datetime, delist_after: int
    ) -> tuple[int, int]:
        """Close a complete crawl; return (endpoints missed, endpoints newly delisted)."""
        with self._session() as session:
            return finish_crawl(session, source, crawl_started_at, now, delist_after)

    def record_crawl_failure(self, source: str, now: datetime, error: str) -> None:
        """Remember that a crawl stopped (it resumes from its offset next time)."""
        with self._session() as session:
            record_failure(session, source, now, error)

    def crawl(self, source: str) -> CrawlState:
        """Return where the source's crawl stands."""
        with self._session() as session:
            row = crawl_state(session, source)
            return CrawlState(
                row.source,
                row.started_at,
                row.next_offset,
                row.completed_crawls,
                row.last_complete_at,
                row.last_error,
            )
