"""Render the whole site from a snapshot and its endpoint details (edge: owns jinja2).

Output, relative to the site root (links between pages are relative, so the site works from
any path and from file://; only the sitemap, the feed and JSON links are absolute):

    index.html, page/<n>.html              every endpoint, 200 rows a page
    categories.html, categories/<c>.html   (+ categories/<c>/page/<n>.html)
    endpoints/<slug>.html                  one page per endpoint (the reference page's sections)
    badges/<slug>.svg                      shields-style status badge
    api/endpoints.json, api/endpoints/<slug>.json
    feed.xml (Atom, one entry per flip), sitemap.xml, robots.txt, about.html, static/*

Output is deterministic: the same snapshot and details give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from monitor.site import svg
from monitor.site.publish import RenderReport, SiteError, SiteWriter
from monitor.site.views import (
    MISSING,
    STATUS_ORDER,
    Entry,
    category_slug,
    coverage_text,
    detail_document,
    dump_json,
    index_document,
    iso,
    link_url,
    milliseconds,
    percent,
    pretty_json,
    relative,
    requirements_text,
    score_text,
    sort_key,
    truncate,
    utc_text,
    valid_slug,
    verdict_text,
)
from monitor.snapshot import EndpointDetail, FlipLine, MonitorSnapshot
from monitor.stats import DOWN_SCORE_CAP, PERCENTILE_MIN_SAMPLES, SCORE_VERSION, UNRATED_BELOW
from monitor.urls import is_http_url

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
PAGE_SIZE = 200
"""Rows per static listing page."""
FEED_LIMIT = 500
SITEMAP_LIMIT = 50_000
"""URLs per sitemap file (the protocol's limit); beyond it sitemap.xml becomes an index."""
FINGERPRINTS = ".fingerprints.json"
"""Digest of each endpoint's inputs at the last render: unchanged endpoints are not re-rendered."""
RECENT_CHECKS = 20
LONG_SCHEMA_LINES = 30
"""A schema longer than this many lines is shown collapsed (`<details>`)."""

ProgressFunction = Callable[[int, int], None]
"""Called with (done, total) as endpoints are rendered."""


def environment(templates: Path = TEMPLATES, now: datetime | None = None) -> Environment:
    """Return the Jinja2 environment: autoescaping everywhere, undefined names are errors.

    `now` (the snapshot time) is what relative times ("3 hours ago") are measured from.
    """
    env = Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        utc=utc_text,
        iso=iso,
        percent=percent,
        ms=milliseconds,
        score=score_text,
        coverage=coverage_text,
        cut=truncate,
        link_url=link_url,
        json_pretty=pretty_json,
        requirements=requirements_text,
        verdict=verdict_text,
        xml_text=_xml_text,
    )
    if now is not None:
        env.filters["ago"] = lambda moment: relative(moment, now)
    env.globals.update(
        MISSING=MISSING,
        SCORE_VERSION=SCORE_VERSION,
        UNRATED_BELOW=UNRATED_BELOW,
        DOWN_SCORE_CAP=DOWN_SCORE_CAP,
        PERCENTILE_MIN_SAMPLES=PERCENTILE_MIN_SAMPLES,
        STATUSES=[status.value for status in STATUS_ORDER],
        LONG_SCHEMA_LINES=LONG_SCHEMA_LINES,
        page_path=_page_path,
    )
    return env


def _xml_text(value: object) -> str:
    """Return `value` as text without the characters XML 1.0 forbids (escaping comes later)."""
    return "".join(
        char
        for char in str(value)
        if char in "\t\n\r"
        or ("\x20" <= char <= "\ud7ff")
        or ("\ue000" <= char <= "\ufffd")
        or char >= "\U00010000"
    )


@dataclass(frozen=True)
class Listing:
    """One static page of a table of endpoints."""

    path: str
    number: int
    pages: int
    rows: Sequence[Entry]
    first: int
    """1-based position of the first row in the whole listing."""


def _page_path(base: str, number: int) -> str:
    """Return a listing page's path: `index.html`, `page/2.html`; `categories/x.html`, ..."""
    if number == 1:
        return f"{base}.html" if base else "index.html"
    return f"{base}/page/{number}.html" if base else f"page/{number}.html"


def _listings(base: str, entries: Sequence[Entry]) -> Iterator[Listing]:
    pages = max(1, -(-len(entries) // PAGE_SIZE))
    for number in range(1, pages + 1):
        start = (number - 1) * PAGE_SIZE
        rows = entries[start : start + PAGE_SIZE]
        yield Listing(_page_path(base, number), number, pages, rows, start + 1)


def _root(path: str) -> str:
    """Return the relative prefix from `path` back to the site root (`../../` ...)."""
    return "../" * path.count("/")


def _pager(listing: Listing, base: str) -> list[tuple[str, int | None]]:
    """Return (label, page number or None for a gap) of the pager: first, last, nearby."""
    shown = sorted(
        {1, listing.pages}
        | {n for n in range(listing.number - 2, listing.number + 3) if 1 <= n <= listing.pages}
    )
    items: list[tuple[str, int | None]] = []
    for previous, number in zip([0, *shown], shown, strict=False):
        if number - previous > 1:
            items.append(("…", None))
        items.append((str(number), number))
    return items


def _entries(
    snapshot: MonitorSnapshot, details: Sequence[EndpointDetail]
) -> tuple[list[Entry], tuple[str, ...]]:
    by_slug = {detail.summary.slug: detail for detail in details}
    entries: list[Entry] = []
    refused: list[str] = []
    seen: set[str] = set()
    for summary in snapshot.endpoints:
        if not valid_slug(summary.slug) or summary.slug in seen:
            log.warning(
                "site: endpoint slug %r refused (not [a-z0-9-] or a duplicate)", summary.slug
            )
            refused.append(summary.slug)
            continue
        seen.add(summary.slug)
        detail = by_slug.get(summary.slug)
        if detail is None:
            log.warning("site: no detail for endpoint %s: listed without a page", summary.slug)
        entries.append(Entry(summary, detail, category_slug(summary.category)))
    entries.sort(key=sort_key)
    return entries, tuple(refused)


def render_site(
    snapshot: MonitorSnapshot,
    details: Sequence[EndpointDetail],
    output_dir: Path,
    *,
    base_url: str,
    progress: ProgressFunction | None = None,
    templates: Path = TEMPLATES,
) -> RenderReport:
    """Build the whole site for `snapshot` into a staging directory, then swap it in.

    `details` holds one EndpointDetail per endpoint (matched by slug; an endpoint without one
    is listed but gets no page). `base_url` is the public URL the site is served from (absolute
    links in the sitemap, the feed and the JSON). Endpoints whose slug is not `[a-z0-9-]` are
    left out and named in the report. Raises SiteError when `output_dir` is not a previous
    site; any error leaves the previous site in place.
    """
    started = time.perf_counter()
    if not is_http_url(base_url):
        raise SiteError(f"base_url {base_url!r} is not an http(s) URL")
    base = base_url if base_url.endswith("/") else base_url + "/"
    entries, refused = _entries(snapshot, details)
    env = environment(templates, snapshot.taken_at)
    common: dict[str, Any] = {"taken_at": snapshot.taken_at, "base_url": base}
    with_pages = [entry for entry in entries if entry.detail is not None]
    total = len(with_pages) + 1
    with SiteWriter(output_dir) as writer:

        def page(path: str, template: str, **context: Any) -> None:
            html = env.get_template(template).render(**common, root=_root(path), **context)
            writer.put(path, html.encode("utf-8", "replace"))

        known = _read_fingerprints(writer.previous_bytes(FINGERPRINTS))
        fingerprints: dict[str, str] = {}
        version = _code_version(templates, snapshot.taken_at, base)
        for done, entry in enumerate(with_pages, start=1):
            assert entry.detail is not None
            fingerprint = _fingerprint(version, entry)
            fingerprints[entry.slug] = fingerprint
            page_path = f"endpoints/{entry.slug}.html"
            json_path = f"api/endpoints/{entry.slug}.json"
            if known.get(entry.slug) == fingerprint and writer.keep(page_path, json_path):
                if progress is not None:
                    progress(done, total)
                continue
            page(
                "endpoints/" + entry.slug + ".html",
                "endpoint.html",
                **_endpoint_context(entry, entry.detail, snapshot.taken_at, base),
            )
            writer.put(
                f"api/endpoints/{entry.slug}.json",
                dump_json(detail_document(entry, entry.detail, base)),
            )
            if progress is not None:
                progress(done, total)
        for entry in entries:
            writer.put(
                f"badges/{entry.slug}.svg",
                svg.badge(entry.summary.status, entry.summary.uptime_30d).encode(),
            )
        counts = {status.value: 0 for status in STATUS_ORDER}
        for entry in entries:
            counts[entry.summary.status.value] += 1
        for listing in _listings("", entries):
            page(
                listing.path,
                "index.html",
                listing=listing,
                pager=_pager(listing, ""),
                pager_base="",
                counts=counts,
                total=len(entries),
            )
        categories = _categories(entries)
        page("categories.html", "categories.html", categories=categories)
        for slug, (names, members) in categories.items():
            base_path = f"categories/{slug}"
            for listing in _listings(base_path, members):
                page(
                    listing.path,
                    "category.html",
                    listing=listing,
                    names=names,
                    pager=_pager(listing, base_path),
                    pager_base=base_path,
                )
        page("about.html", "about.html")
        writer.put("api/endpoints.json", dump_json(index_document(entries, snapshot.taken_at)))
        flips = _flips(entries)
        feed = env.get_template("feed.xml").render(**common, flips=flips)
        writer.put("feed.xml", feed.encode("utf-8", "replace"))
        for path, content in _sitemaps(env, base, entries, categories):
            writer.put(path, content)
        writer.put("robots.txt", f"User-agent: *\nAllow: /\nSitemap: {base}sitemap.xml\n".encode())
        for asset in sorted((templates / "static").iterdir()):
            if asset.is_file():
                writer.put(f"static/{asset.name}", asset.read_bytes())
        writer.put(FINGERPRINTS, dump_json(dict(sorted(fingerprints.items()))))
        removed = writer.commit()
        if progress is not None:
            progress(total, total)
    return RenderReport(
        written=writer.written,
        unchanged=writer.unchanged,
        removed=removed,
        seconds=time.perf_counter() - started,
        refused=refused,
    )


def _code_version(templates: Path, taken_at: datetime, base: str) -> str:
    """Return a digest of everything an endpoint's files depend on besides the endpoint itself.

    The templates, this package's code, the snapshot time (relative times) and the base URL.
    """
    digest = hashlib.sha256(f"{iso(taken_at)} {base}".encode())
    sources = sorted(templates.rglob("*")) + sorted(Path(__file__).parent.glob("*.py"))
    for source in sources:
        if source.is_file():
            digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def _fingerprint(version: str, entry: Entry) -> str:
    """Return a digest of one endpoint's inputs: equal digests render equal files."""
    text = repr((version, entry.summary, entry.category_slug, entry.detail))
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:32]


def _read_fingerprints(content: bytes | None) -> dict[str, str]:
    try:
        loaded = json.loads(content) if content else {}
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): str(v) for k, v in loaded.items()}


def _categories(entries: Sequence[Entry]) -> dict[str, tuple[list[str], list[Entry]]]:
    """Return category slug -> (the names that map to it, its endpoints), sorted by slug."""
    grouped: dict[str, tuple[list[str], list[Entry]]] = {}
    for entry in entries:
        names, members = grouped.setdefault(entry.category_slug, ([], []))
        name = entry.summary.category or "Uncategorised"
        if name not in names:
            names.append(name)
        members.append(entry)
    return {slug: (sorted(names), members) for slug, (names, members) in sorted(grouped.items())}


def _flips(entries: Sequence[Entry]) -> list[tuple[FlipLine, Entry]]:
    """Return every flip with its endpoint, newest first, at most FEED_LIMIT."""
    flips = [(flip, entry) for entry in entries if entry.detail for flip in entry.detail.flips]
    flips.sort(key=lambda pair: (-pair[0].at.timestamp(), pair[1].slug, pair[0].to_status.value))
    return flips[:FEED_LIMIT]


def _sitemaps(
    env: Environment,
    base: str,
    entries: Sequence[Entry],
    categories: Mapping[str, tuple[list[str], list[Entry]]],
) -> Iterator[tuple[str, bytes]]:
    paths = [listing.path for listing in _listings("", entries)]
    paths += ["about.html", "categories.html"]
    for slug, (_, members) in categories.items():
        paths += [listing.path for listing in _listings(f"categories/{slug}", members)]
    # By slug, not listing order: a status change must not rewrite the sitemap.
    paths += sorted(f"endpoints/{entry.slug}.html" for entry in entries if entry.detail)
    urls = [base + path for path in paths]
    template = env.get_template("sitemap.xml")
    if len(urls) <= SITEMAP_LIMIT:
        yield "sitemap.xml", template.render(urls=urls, index=False).encode()
        return
    parts = [urls[i : i + SITEMAP_LIMIT] for i in range(0, len(urls), SITEMAP_LIMIT)]
    for number, chunk in enumerate(parts, start=1):
        yield f"sitemap-{number}.xml", template.render(urls=chunk, index=False).encode()
    index = [f"{base}sitemap-{number}.xml" for number in range(1, len(parts) + 1)]
    yield "sitemap.xml", template.render(urls=index, index=True).encode()


def _endpoint_context(
    entry: Entry, detail: EndpointDetail, now: datetime, base: str
) -> dict[str, Any]:
    """Return what endpoint.html needs beyond the entry: charts, schemas, badge snippets."""
    input_schema = pretty_json(detail.input_schema) if detail.input_schema is not None else None
    output_schema = pretty_json(detail.output_schema) if detail.output_schema is not None else None
    badge_url = f"{base}badges/{entry.slug}.svg"
    page_url = f"{base}endpoints/{entry.slug}.html"
    return {
        "entry": entry,
        "e": entry.summary,
        "d": detail,
        "input_schema": input_schema,
        "output_schema": output_schema,
        "checks": detail.recent_checks[:RECENT_CHECKS],
        "chart_24h": Markup(
            svg.latency_chart(
                detail.latency_24h, now, timedelta(hours=24), "lat24", "Latency, last 24 hours"
            )
        ),
        "chart_7d": Markup(
            svg.latency_chart(
                detail.latency_7d,
                now,
                timedelta(days=7),
                "lat7d",
                "Latency (daily p50), last 7 days",
            )
        ),
        "uptime_bar": Markup(svg.uptime_bar(detail.days, "days")),
        "badge_markdown": f"[![x402 status]({badge_url})]({page_url})",
        "badge_html": f'<a href="{page_url}"><img src="{badge_url}" alt="x402 status"></a>',
    }
