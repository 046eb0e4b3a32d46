"""The static site: every page type, the reference page's sections, safety and the atomic swap.

Pages are parsed with the stdlib `html.parser` into a small tree; XML outputs with ElementTree;
JSON outputs are validated against tests/schemas/. The golden endpoint page is regenerated with
`UPDATE_GOLDEN=1 pytest tests/test_site.py`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from monitor.models import AssetVerdict, FacilitatorVerdict, Finding, Outcome, Severity, Status
from monitor.site import RenderReport, SiteError, render_site
from monitor.site.publish import MARKER
from monitor.site.render import TEMPLATES
from monitor.site.views import category_slug, percent, relative
from monitor.snapshot import (
    CheckLine,
    DayFigures,
    EndpointDetail,
    EndpointSnapshot,
    FlipLine,
    LatencyPoint,
    MonitorSnapshot,
)
from monitor.stats import SCORE_VERSION

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "endpoint.html"
SCHEMAS = HERE / "schemas"
BASE_URL = "https://directory.example/x402/"
NOW = datetime(2026, 3, 20, 19, 0, 0, tzinfo=UTC)
SEED_SLUG = "x402-dopamint-ai-api-ai-generations-images-seedream-5e1c2a9b"
SEED_TITLE = "Generate image using bytedance/seedream/v4/text-to-image"
SEED_URL = "https://x402.dopamint.ai/api/ai/generations/images/seedream"
XSS_SLUG = "evil-example-attack-0badc0de"
SCRIPT = "<script>alert(1)</script>"
QUOTES = "\"'><img src=x onerror=alert(2)>"

# The reference page's latencies (ms) of its 20 recent checks, newest first.
SEED_LATENCIES = (
    *(742, 755, 627, 755, 1367, 742, 766, 753, 747, 746),
    *(509, 758, 767, 752, 742, 521, 504, 578, 541, 495),
)
SEED_TIMES = (
    *("18:49:51", "18:19:50", "17:21:04", "16:11:55", "15:48:57", "15:33:34", "14:54:29"),
    *("13:39:25", "12:51:59", "12:06:48", "10:47:49", "09:53:44", "08:36:01", "08:00:24"),
    *("06:45:26", "05:37:37", "04:58:23", "03:42:55", "02:59:37", "01:51:09"),
)
SEED_INPUT_SCHEMA = {
    "bodyFields": {
        "enable_safety_checker": {
            "default": True,
            "description": "If set to true, the safety checker will be enabled.",
            "example": True,
            "required": False,
            "type": "boolean",
        },
        "enhance_prompt_mode": {
            "default": "standard",
            "description": "The mode to use for enhancing prompt enhancement.",
            "enum": ["standard", "fast"],
            "required": False,
            "type": '"standard" | "fast"',
        },
        "image_size": {
            "default": {"height": 2048, "width": 2048},
            "description": "The size of the generated image.",
            "example": {"height": 2160, "width": 3840},
            "required": False,
            "type": 'ImageSize | "square_hd" | "square" | "auto"',
        },
        "prompt": {
            "description": "The text prompt used to generate the image",
            "example": "A young woman is sitting on a couch in a room filled with dahlias.",
            "required": True,
            "type": "string",
        },
        "seed": {"description": "Random seed.", "required": False, "type": "integer"},
    },
    "bodyType": "json",
    "method": "POST",
    "type": "http",
}
SEED_OUTPUT_SCHEMA = {
    "jobId": {"description": "Unique job identifier", "type": "string"},
    "statusUrl": {"description": "URL to check job status", "type": "string"},
}


# -- building snapshots by hand ---------------------------------------------------------------


def summary(slug: str, **changes: Any) -> EndpointSnapshot:
    """Return an endpoint summary with plausible healthy figures, overridden by `changes`."""
    values: dict[str, Any] = {
        "slug": slug,
        "url": f"https://api.example.com/{slug}",
        "method": "GET",
        "title": f"Endpoint {slug}",
        "category": "data",
        "network": "eip155:8453",
        "source": "config",
        "status": Status.HEALTHY,
        "up": True,
        "consecutive_failures": 0,
        "uptime_30d": 0.995,
        "score": 92,
        "payment_requirements_valid": True,
        "asset_verified": True,
        "facilitator_supported": True,
        "last_check_at": NOW - timedelta(minutes=2),
        "p50_ms": 180.0,
        "p95_ms": 420.0,
    }
    values.update(changes)
    return EndpointSnapshot(**values)


def days(uptimes: Sequence[float | None]) -> tuple[DayFigures, ...]:
    """Return day cells ending today, from per-day uptimes (None = no check that day)."""
    first = NOW.date() - timedelta(days=len(uptimes) - 1)
    cells = []
    for index, uptime in enumerate(uptimes):
        if uptime is None:
            cells.append(DayFigures(first + timedelta(days=index), 0, 0, 0, 0, None))
        else:
            passes = round(48 * uptime)
            cells.append(
                DayFigures(first + timedelta(days=index), passes, 48 - passes, 0, 1, 200.0)
            )
    return tuple(cells)


def detail(snapshot: EndpointSnapshot, **changes: Any) -> EndpointDetail:
    """Return an endpoint detail with plausible figures, overridden by `changes`."""
    checks = tuple(
        CheckLine(
            NOW - timedelta(minutes=2 + 30 * i),
            Outcome.PASS,
            snapshot.status,
            402,
            150.0 + i,
            None,
        )
        for i in range(25)
    )
    values: dict[str, Any] = {
        "summary": snapshot,
        "description": "Returns data.",
        "x402_version": 2,
        "price": "$0.01",
        "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "asset_name": "USD Coin",
        "network_name": "Base",
        "provider": "example.com",
        "indexed_at": datetime(2026, 2, 1, 12, 0, tzinfo=UTC),
        "last_healthy_at": NOW - timedelta(minutes=2),
        "reachability_30d": 1.0,
        "coverage_days": 30.0,
        "payment_requirements_valid": True,
        "asset_verdict": AssetVerdict.VERIFIED,
        "facilitator_verdict": FacilitatorVerdict.SUPPORTED,
        "facilitator": "https://facilitator.example/",
        "findings": (),
        "input_schema": {"queryParams": {"q": {"type": "string"}}},
        "output_schema": {"type": "object"},
        "recent_checks": checks,
        "latency_24h": tuple(
            LatencyPoint(NOW - timedelta(minutes=30 * i), 150.0 + 10 * (i % 5))
            for i in range(47, -1, -1)
        ),
        "latency_7d": tuple(
            LatencyPoint(NOW - timedelta(hours=i), 160.0 + (i % 7)) for i in range(167, -1, -1)
        ),
        "days": days([1.0] * 28 + [0.97, 1.0]),
        "flips": (
            FlipLine(
                datetime(2026, 2, 1, 12, 5, tzinfo=UTC),
                Status.UNKNOWN,
                Status.HEALTHY,
                "valid 402 challenge",
            ),
        ),
        "catalogue_item": {"resource": snapshot.url},
    }
    values.update(changes)
    return EndpointDetail(**values)


def seed() -> EndpointDetail:
    """Return the reference page's endpoint, with this product's (honest) figures."""
    snapshot = summary(
        SEED_SLUG,
        url=SEED_URL,
        method="POST",
        title=SEED_TITLE,
        category="media/images",
        source="bazaar",
        status=Status.DEGRADED,
        up=False,
        consecutive_failures=19,
        uptime_30d=0.0,
        score=14,
        payment_requirements_valid=False,
        asset_verified=True,
        facilitator_supported=None,
        last_check_at=datetime(2026, 3, 20, 18, 49, 51, tzinfo=UTC),
        p50_ms=746.0,
        p95_ms=1367.0,
    )
    checks = tuple(
        CheckLine(
            datetime.fromisoformat(f"2026-03-20T{clock}+00:00"),
            Outcome.SOFT_FAIL,
            Status.DEGRADED,
            404,
            float(latency),
            None,
        )
        for clock, latency in zip(SEED_TIMES, SEED_LATENCIES, strict=True)
    )
    return detail(
        snapshot,
        description=SEED_TITLE,
        x402_version=1,
        price="$5.00",
        provider="dopamint.ai",
        indexed_at=datetime(2026, 3, 2, 1, 13, 18, tzinfo=UTC),
        last_healthy_at=None,
        reachability_30d=1.0,
        coverage_days=18.7,
        payment_requirements_valid=False,
        asset_verdict=AssetVerdict.VERIFIED,
        facilitator_verdict=FacilitatorVerdict.UNKNOWN,
        facilitator=None,
        findings=(
            (
                Finding("http.not_402", Severity.ERROR, "answered 404, not 402", "status"),
                "Serve the paywall at the declared method (POST) and answer 402.",
            ),
            (
                Finding("asset.unverified", Severity.WARNING, "asset not in the table", "asset"),
                "Use a known token address.",
            ),
        ),
        input_schema=SEED_INPUT_SCHEMA,
        output_schema=SEED_OUTPUT_SCHEMA,
        recent_checks=checks,
        latency_24h=tuple(
            LatencyPoint(check.checked_at, check.latency_ms) for check in reversed(checks)
        ),
        days=days([None] * 12 + [0.0] * 18),
        flips=(
            FlipLine(
                datetime(2026, 3, 2, 1, 20, tzinfo=UTC),
                Status.UNKNOWN,
                Status.DEGRADED,
                "soft failure (HTTP 404)",
            ),
        ),
        catalogue_item={"resource": SEED_URL, "accepts": [{"network": "base"}]},
    )


def xss() -> EndpointDetail:
    """Return an endpoint whose every text is an attack."""
    snapshot = summary(
        XSS_SLUG,
        url="javascript:alert(document.cookie)//" + QUOTES,
        title=f"{SCRIPT}{QUOTES}",
        category=f"../../etc/{SCRIPT}",
        network=f"{SCRIPT}",
        status=Status.DEGRADED,
        source=QUOTES,
        method=f"GET{QUOTES}",
    )
    return detail(
        snapshot,
        description=f"{SCRIPT} {QUOTES} javascript:alert(3) \u2028\u2029 </textarea>",
        price=f"$1{SCRIPT}",
        asset=QUOTES,
        asset_name=SCRIPT,
        network_name=QUOTES,
        provider=SCRIPT,
        facilitator="javascript:alert(4)",
        findings=((Finding(SCRIPT, Severity.ERROR, QUOTES, SCRIPT), f"{SCRIPT}{QUOTES}"),),
        input_schema={SCRIPT: QUOTES, "nested": ["</pre><script>x</script>", float("nan")]},
        output_schema=f"</code></pre>{SCRIPT}",
        recent_checks=(
            CheckLine(NOW, Outcome.SOFT_FAIL, Status.DEGRADED, 400, 10.0, SCRIPT + QUOTES),
        ),
        flips=(FlipLine(NOW, Status.HEALTHY, Status.DEGRADED, f"soft failure ({SCRIPT})"),),
        catalogue_item={"x": SCRIPT, "bad": "\x00\x01\ud800"},
    )


def sample() -> tuple[MonitorSnapshot, list[EndpointDetail]]:
    """Return a snapshot with an endpoint in every status, the seed endpoint and an attack."""
    details = [
        seed(),
        detail(summary("alpha-api-00000001", title="Alpha weather", category="data")),
        detail(
            summary(
                "beta-api-00000002",
                title="Beta search",
                category="search",
                p50_ms=1200.0,
                status=Status.HEALTHY,
            ),
            price="0.05 MegaUSD",
            coverage_days=2.5,
        ),
        detail(
            summary(
                "gamma-api-00000003",
                title="Gamma translate",
                category="data",
                status=Status.DOWN,
                up=False,
                consecutive_failures=5,
                uptime_30d=0.4,
                score=31,
                p50_ms=None,
                p95_ms=None,
                network="solana:5eykt4UsFv8P8NJdTREpY1vkqKTvQ9wz",
            ),
            price="$0.50",
            network_name="Solana",
            flips=(
                FlipLine(NOW - timedelta(hours=1), Status.DEGRADED, Status.DOWN, "3 hard"),
                FlipLine(NOW - timedelta(hours=5), Status.HEALTHY, Status.DEGRADED, "hard"),
            ),
        ),
        detail(
            summary(
                "delta-api-00000004",
                title=None,
                category=None,
                status=Status.UNKNOWN,
                up=None,
                uptime_30d=None,
                score=None,
                last_check_at=None,
                p50_ms=None,
                p95_ms=None,
                network=None,
            ),
            price=None,
            asset=None,
            asset_name=None,
            network_name=None,
            provider=None,
            last_healthy_at=None,
            reachability_30d=None,
            coverage_days=0.0,
            payment_requirements_valid=None,
            asset_verdict=None,
            facilitator_verdict=None,
            facilitator=None,
            input_schema=None,
            output_schema=None,
            recent_checks=(),
            latency_24h=(),
            latency_7d=(),
            days=days([None] * 30),
            flips=(),
            catalogue_item=None,
        ),
        xss(),
    ]
    snapshot = MonitorSnapshot(taken_at=NOW, endpoints=tuple(d.summary for d in details))
    return snapshot, details


def many(count: int, taken_at: datetime = NOW) -> tuple[MonitorSnapshot, list[EndpointDetail]]:
    """Return `count` small synthetic endpoints (for pagination and incremental renders)."""
    details = [
        detail(
            summary(
                f"bulk-{index:05d}",
                title=f"Bulk {index:05d}",
                category=("data", "media/images", "search")[index % 3],
            ),
            latency_24h=(),
            latency_7d=(),
            recent_checks=(),
        )
        for index in range(count)
    ]
    return MonitorSnapshot(taken_at=taken_at, endpoints=tuple(d.summary for d in details)), details


# -- a small HTML tree ------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Return the text content, whitespace collapsed."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def iter(self, tag: str | None = None) -> Iterator[Node]:
        """Yield every descendant element (and self) with `tag`, in document order."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter(tag)

    def find(self, tag: str, **attrs: str) -> Node:
        """Return the first descendant with `tag` and these attribute values."""
        for node in self.iter(tag):
            if all(node.attrs.get(key.rstrip("_")) == value for key, value in attrs.items()):
                return node
        raise AssertionError(f"no <{tag} {attrs}>")

    def has_class(self, name: str) -> bool:
        return name in (self.attrs.get("class") or "").split()


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return
        raise AssertionError(f"stray </{tag}>")

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(path: Path) -> Node:
    builder = TreeBuilder()
    builder.feed(path.read_text(encoding="utf-8"))
    builder.close()
    assert [n.tag for n in builder.stack] == ["#document"], f"unclosed elements in {path}"
    return builder.root


def facts(section: Node) -> list[tuple[str, str]]:
    """Return the (label, value) pairs of a section's definition list, in order."""
    pairs = []
    for item in section.find("dl").iter("div"):
        pairs.append((item.find("dt").text, item.find("dd").text))
    return pairs


def site_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RenderReport]:
    snapshot, details = sample()
    output = tmp_path_factory.mktemp("site") / "site"
    report = render_site(snapshot, details, output, base_url=BASE_URL)
    return output, report


@pytest.fixture(scope="module")
def site(built: tuple[Path, RenderReport]) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def seed_page(site: Path) -> Node:
    return parse(site / "endpoints" / f"{SEED_SLUG}.html")


# -- page types ------------------------------------------------------------------------------


def test_every_page_type_is_written(site: Path, built: tuple[Path, RenderReport]) -> None:
    files = set(site_files(site))
    slugs = [d.summary.slug for d in sample()[1]]
    expected = {
        "index.html",
        "about.html",
        "categories.html",
        "categories/media-images.html",
        "categories/data.html",
        "categories/search.html",
        "categories/uncategorised.html",
        "api/endpoints.json",
        "feed.xml",
        "sitemap.xml",
        "robots.txt",
        "static/site.css",
        "static/site.js",
        "static/favicon.svg",
        MARKER,
    }
    for slug in slugs:
        expected |= {f"endpoints/{slug}.html", f"api/endpoints/{slug}.json", f"badges/{slug}.svg"}
    assert expected <= files
    assert not [name for name in files if name.startswith("page/")]  # one page is enough
    report = built[1]
    assert report.written == len(files) - 1  # the marker is not counted
    assert (report.unchanged, report.removed, report.refused) == (0, 0, ())


def test_endpoint_page_has_the_reference_sections_in_order(seed_page: Node) -> None:
    headings = [h.text for h in seed_page.find("main").iter("h2")]
    reference = [
        "Overview",
        "Health",
        "x402 Payment Validation",
        "Input Schema",
        "Output Schema",
        "Recent Health Checks",
    ]
    assert [h for h in headings if h in reference] == reference
    assert {"Latency and Uptime", "Status Changes", "Badge and Data"} <= set(headings)
    article = seed_page.find("article")
    assert article.find("h1").text == SEED_TITLE
    target = article.find("p", class_="target")
    assert target.text == f"POST {SEED_URL}"
    link = target.find("a")
    assert link.attrs["href"] == SEED_URL
    assert link.attrs["rel"] == "nofollow noopener noreferrer"
    back = seed_page.find("p", class_="back").find("a")
    assert (back.text, back.attrs["href"]) == ("← Back to directory", "../index.html")


def test_endpoint_page_overview_and_health_show_the_seed_figures(seed_page: Node) -> None:
    overview = seed_page.find("section", id="overview")
    assert overview.find("p", class_="description").text == SEED_TITLE
    assert facts(overview) == [
        ("Protocol", "x402 v1"),
        ("Price", "$5.00"),
        ("Payment Asset", "USD Coin 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        ("Payment Network", "Base eip155:8453"),
        ("Category", "media/images"),
        ("Provider", "dopamint.ai"),
        ("Source", "bazaar"),
        ("Indexed", "2026-03-02 01:13:18 UTC"),
    ]
    assert overview.find("a", href="../categories/media-images.html").text == "media/images"
    health = seed_page.find("section", id="health")
    assert facts(health) == [
        ("Status", "degraded"),
        ("Latency (p50)", "746 ms p95 1367 ms"),
        ("Uptime (30d)", "0.0% since 18 days reachability 100.0%"),
        ("Reliability Score", f"14/100 {SCORE_VERSION}"),
        ("Last Checked", "2026-03-20 18:49:51 UTC"),
        ("Last Healthy", "Never"),
        ("Consecutive Failures", "19"),
    ]
    checked = health.find("time")
    assert checked.attrs == {"datetime": "2026-03-20T18:49:51Z", "title": "10 minutes ago"}


def test_endpoint_page_validation_schemas_and_checks(seed_page: Node) -> None:
    validation = seed_page.find("section", id="validation")
    assert facts(validation) == [
        ("Payment Requirements", "Invalid"),
        ("Asset", "Verified"),
        ("Facilitator", "Unknown"),
    ]
    findings = [li.text for li in validation.find("ul", class_="findings").iter("li")]
    assert findings == [
        "error http.not_402 answered 404, not 402 at status Fix: Serve the paywall at the "
        "declared method (POST) and answer 402.",
        "warning asset.unverified asset not in the table at asset Fix: Use a known token address.",
    ]
    input_section = seed_page.find("section", id="input-schema")
    details = input_section.find("details")  # long: collapsible
    assert json.loads(details.find("pre").text) == SEED_INPUT_SCHEMA
    output_section = seed_page.find("section", id="output-schema")
    assert not list(output_section.iter("details"))
    assert json.loads(output_section.find("pre").text) == SEED_OUTPUT_SCHEMA
    table = seed_page.find("section", id="checks").find("table")
    assert [th.text for th in table.find("thead").iter("th")] == [
        "Time",
        "Status",
        "HTTP",
        "Latency",
        "Error",
    ]
    rows = [[td.text for td in tr.iter("td")] for tr in table.find("tbody").iter("tr")]
    assert len(rows) == 20
    assert rows[0] == ["2026-03-20 18:49:51 UTC", "degraded", "404", "742 ms", ""]
    assert rows[4][3] == "1367 ms"
    assert rows[-1] == ["2026-03-20 01:51:09 UTC", "degraded", "404", "495 ms", ""]


def test_endpoint_page_charts_uptime_bar_badge_and_json_link(seed_page: Node) -> None:
    trends = seed_page.find("section", id="trends")
    charts = [svg for svg in trends.iter("svg") if svg.has_class("chart")]
    assert len(charts) == 2
    line = charts[0].find("path", class_="line")
    assert line.attrs["d"] is not None
    assert line.attrs["d"].count("L") == 19  # 20 answered checks in the last 24 h
    bar = trends.find("svg", class_="uptime")
    cells = list(bar.iter("rect"))
    assert len(cells) == 30
    assert [c.attrs["class"] for c in cells[:12]] == ["u-none"] * 12
    assert cells[-1].attrs["class"] == "u-bad"
    assert cells[-1].find("title").text == (
        "2026-03-20: uptime 0.0% (0 pass, 48 soft fail, 0 hard fail, 1 inconclusive); p50 200 ms"
    )
    assert not list(seed_page.iter("script"))[1:]  # only site.js, in the head
    embed = seed_page.find("section", id="embed")
    assert embed.find("img").attrs["src"] == f"../badges/{SEED_SLUG}.svg"
    markdown = embed.find("textarea", id="badge-md").text
    assert markdown == (
        f"[![x402 status]({BASE_URL}badges/{SEED_SLUG}.svg)]({BASE_URL}endpoints/{SEED_SLUG}.html)"
    )
    assert embed.find("textarea", id="badge-html").text.startswith(f'<a href="{BASE_URL}')
    assert embed.find("a", href=f"../api/endpoints/{SEED_SLUG}.json")


def test_endpoint_page_of_a_young_unchecked_endpoint(site: Path) -> None:
    page = parse(site / "endpoints" / "delta-api-00000004.html")
    assert page.find("h1").text == "https://api.example.com/delta-api-00000004"
    health = dict(facts(page.find("section", id="health")))
    assert health["Reliability Score"].startswith("unrated fewer than 10 checks")
    assert health["Last Checked"] == "Never"
    assert health["Last Healthy"] == "Never"
    assert health["Uptime (30d)"] == "— since 0 hours"
    overview = dict(facts(page.find("section", id="overview")))
    assert (overview["Price"], overview["Category"], overview["Provider"]) == (
        "—",
        "Uncategorised",
        "—",
    )
    assert "Not published" in page.find("section", id="input-schema").text
    assert page.find("section", id="checks").find("tbody").text == "Not checked yet."
    assert "No answered checks" in page.find("svg", class_="chart").text
    young = parse(site / "endpoints" / "beta-api-00000002.html")
    uptime = dict(facts(young.find("section", id="health")))["Uptime (30d)"]
    assert uptime.startswith("99.5% since 2 days")


def test_index_lists_every_endpoint_with_its_figures(site: Path) -> None:
    page = parse(site / "index.html")
    counts = [a.text for a in page.find("ul", class_="counts").iter("a")]
    assert counts == ["2 healthy", "2 degraded", "1 down", "1 unknown"]
    table = page.find("table", id="endpoints")
    assert table.find("caption").text == "Endpoints 1–6 of 6"
    headers = [th.text for th in table.find("thead").iter("th")]
    assert headers == [
        "Status",
        "Endpoint",
        "Latency (p50)",
        "Uptime (30d)",
        "Score",
        "Price",
        "Network",
        "Category",
    ]
    rows = {
        tr.find("a").attrs["href"]: [td.text for td in tr.iter("td")]
        for tr in table.find("tbody").iter("tr")
    }
    assert rows[f"endpoints/{SEED_SLUG}.html"] == [
        "degraded",
        f"{SEED_TITLE} POST {SEED_URL}",
        "746 ms",
        "0.0%",
        "14/100",
        "$5.00",
        "Base",
        "media/images",
    ]
    assert rows["endpoints/delta-api-00000004.html"][2:] == [
        "—",
        "—",
        "unrated",
        "—",
        "—",
        "Uncategorised",
    ]
    statuses = [tr.find("span").text for tr in table.find("tbody").iter("tr")]
    assert statuses == ["healthy", "healthy", "degraded", "degraded", "down", "unknown"]
    form = page.find("form", id="filters")
    assert "hidden" in form.attrs  # revealed by the script; the table needs no JavaScript
    for control in ("f-q", "f-status", "f-category", "f-network", "f-min", "f-max"):
        assert page.find("label", for_=control)
    hrefs = [a.attrs["href"] or "" for a in page.iter("a")]
    assert all(not h.startswith(("/", BASE_URL)) for h in hrefs if "example" not in h)


def test_index_truncates_long_titles(tmp_path: Path) -> None:
    long = detail(summary("long-00000001", title="word " * 100))
    snapshot = MonitorSnapshot(taken_at=NOW, endpoints=(long.summary,))
    render_site(snapshot, [long], tmp_path / "site", base_url=BASE_URL)
    row = parse(tmp_path / "site" / "index.html").find("td", class_="name").find("a")
    assert len(row.text) <= 90
    assert row.text.endswith("…")
    page = parse(tmp_path / "site" / "endpoints" / "long-00000001.html")
    assert page.find("h1").text == ("word " * 100).strip()


def test_large_directories_are_paginated_with_relative_links(tmp_path: Path) -> None:
    snapshot, details = many(450)
    render_site(snapshot, details, tmp_path / "site", base_url=BASE_URL)
    site = tmp_path / "site"
    pages = [site / "index.html", site / "page" / "2.html", site / "page" / "3.html"]
    bodies = [parse(page).find("table", id="endpoints").find("tbody") for page in pages]
    assert [len(list(body.iter("tr"))) for body in bodies] == [200, 200, 50]
    assert not (site / "page" / "4.html").exists()
    second = parse(pages[1])
    assert second.find("caption").text == "Endpoints 201–400 of 450, page 2 of 3"
    pager = second.find("nav", class_="pager")
    assert pager.find("a", rel="prev").attrs["href"] == "../index.html"
    assert pager.find("a", rel="next").attrs["href"] == "../page/3.html"
    assert pager.find("a", **{"aria-current": "page"}).text == "2"
    first_link = bodies[1].find("a").attrs["href"]
    assert first_link == "../endpoints/bulk-00200.html"
    assert second.find("link", rel="stylesheet").attrs["href"] == "../static/site.css"
    category = parse(site / "categories" / "data.html")
    assert len(list(category.find("tbody").iter("tr"))) == 150
    assert category.find("h1").text == "Category: data"
    images = site / "categories" / "media-images.html"
    assert len(list(parse(images).find("tbody").iter("tr"))) == 150
    sitemap = ET.parse(site / "sitemap.xml").getroot()
    locs = [loc.text for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert f"{BASE_URL}page/3.html" in locs
    assert len(locs) == 450 + 3 + 2 + 3


def test_category_pages(site: Path) -> None:
    overview = parse(site / "categories.html")
    rows = [[td.text for td in tr.iter("td")] for tr in overview.find("tbody").iter("tr")]
    assert ["data", "2", "1"] in rows
    assert ["media/images", "1", "0"] in rows
    page = parse(site / "categories" / "media-images.html")
    links = [a.attrs["href"] for a in page.find("tbody").iter("a")]
    assert links == [f"../endpoints/{SEED_SLUG}.html", "../categories/media-images.html"]


def test_category_slugs_are_sanitised() -> None:
    assert category_slug("media/images") == "media-images"
    assert category_slug("../../etc/<script>") == "etc-script"
    assert category_slug("Café Données") == "cafe-donnees"
    assert re.fullmatch(r"category-[0-9a-f]{8}", category_slug("画像"))
    assert category_slug(None) == category_slug("  ") == "uncategorised"
    assert category_slug("Uncategorised") != "uncategorised"


def test_about_page_publishes_every_definition_and_the_score_version(site: Path) -> None:
    page = parse(site / "about.html")
    text = page.find("main").text
    for words in (
        "A check",
        "Outcome of a check",
        "inconclusive",
        "Consecutive failures",
        "Last healthy",
        "Uptime (30d)",
        "Reachability",
        "nearest-rank",
        "Capped at 40".lower(),
        f"Reliability score ({SCORE_VERSION})",
        "unrated below 10 conclusive checks",
    ):
        assert words.lower() in text.lower(), words
    score_rows = [tr.find("th").text for tr in page.find("h2", id="score").iter("th")]
    assert score_rows == []  # the heading holds no table; the next element does
    table = next(t for t in page.iter("table") if SCORE_VERSION in t.find("caption").text)
    parts = [tr.find("th").text for tr in table.find("tbody").iter("tr")]
    assert parts == ["Availability", "Latency", "Conformance", "Streak", "Stability"]


# -- machine-readable outputs ---------------------------------------------------------------


def _validator(name: str) -> jsonschema.Draft202012Validator:
    """Return a validator for one schema of tests/schemas/ (they refer to each other by $id)."""
    schemas = {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMAS.glob("*.json"))
    }
    jsonschema.Draft202012Validator.check_schema(schemas[name])
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    return jsonschema.Draft202012Validator(schemas[name], registry=registry)


def test_json_documents_validate_against_the_schemas(site: Path) -> None:
    listing = json.loads((site / "api" / "endpoints.json").read_text(encoding="utf-8"))
    _validator("endpoints.json").validate(listing)
    assert listing["count"] == 6
    assert listing["counts_by_status"] == {"healthy": 2, "degraded": 2, "down": 1, "unknown": 1}
    seed_row = next(item for item in listing["endpoints"] if item["slug"] == SEED_SLUG)
    assert (seed_row["price_usd"], seed_row["network_name"], seed_row["status"]) == (
        5.0,
        "Base",
        "degraded",
    )
    validator = _validator("endpoint.json")
    for path in sorted((site / "api" / "endpoints").glob("*.json")):
        validator.validate(json.loads(path.read_text(encoding="utf-8")))
    document = json.loads((site / "api" / "endpoints" / f"{SEED_SLUG}.json").read_text())
    assert document["input_schema"] == SEED_INPUT_SCHEMA
    assert document["catalogue_item"] == {"resource": SEED_URL, "accepts": [{"network": "base"}]}
    assert document["health"]["last_healthy_at"] is None
    assert document["health"]["score_version"] == SCORE_VERSION
    assert len(document["recent_checks"]) == 20
    assert document["validation"]["findings"][0]["fix"].startswith("Serve the paywall")
    assert document["links"]["page"] == f"{BASE_URL}endpoints/{SEED_SLUG}.html"
    attack = json.loads((site / "api" / "endpoints" / f"{XSS_SLUG}.json").read_text())
    assert attack["input_schema"]["nested"][1] is None  # NaN is not JSON


def test_badges_are_valid_svg_with_status_and_uptime(site: Path) -> None:
    svg = "{http://www.w3.org/2000/svg}"
    for path in sorted((site / "badges").glob("*.svg")):
        root = ET.parse(path).getroot()
        assert root.tag == f"{svg}svg"
        assert root.get("role") == "img"
    seed_badge = ET.parse(site / "badges" / f"{SEED_SLUG}.svg").getroot()
    texts = [t.text for t in seed_badge.iter(f"{svg}text")]
    assert texts == ["x402", "degraded 0.0%"]
    assert seed_badge.get("aria-label") == "x402: degraded 0.0%"
    healthy = ET.parse(site / "badges" / "alpha-api-00000001.svg").getroot()
    fills = [r.get("fill") for r in healthy.iter(f"{svg}rect")]
    assert "#2e7d32" in fills
    unknown = ET.parse(site / "badges" / "delta-api-00000004.svg").getroot()
    assert [t.text for t in unknown.iter(f"{svg}text")] == ["x402", "unknown"]


def test_feed_is_atom_with_one_entry_per_flip_newest_first(site: Path) -> None:
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(site / "feed.xml").getroot()
    assert feed.tag == f"{atom}feed"
    entries = feed.findall(f"{atom}entry")
    flips = sum(len(d.flips) for d in sample()[1])
    assert len(entries) == flips
    updated = [e.findtext(f"{atom}updated") or "" for e in entries]
    assert updated == sorted(updated, reverse=True)
    assert feed.findtext(f"{atom}updated") == updated[0]
    ids = [e.findtext(f"{atom}id") for e in entries]
    assert len(set(ids)) == len(ids)
    gamma = [e for e in entries if "Gamma" in (e.findtext(f"{atom}title") or "")]
    assert [e.findtext(f"{atom}title") for e in gamma] == [
        "Gamma translate: degraded → down",
        "Gamma translate: healthy → degraded",
    ]
    link = gamma[0].find(f"{atom}link")
    assert link is not None
    assert link.get("href") == f"{BASE_URL}endpoints/gamma-api-00000003.html"


def test_feed_is_bounded_and_survives_control_characters(tmp_path: Path) -> None:
    flips = tuple(
        FlipLine(NOW - timedelta(minutes=i), Status.HEALTHY, Status.DEGRADED, f"r\x00\x1b{i}")
        for i in range(600)
    )
    one = detail(summary("noisy-00000001", title="bad \x01\x08 title \ud800"), flips=flips)
    snapshot = MonitorSnapshot(taken_at=NOW, endpoints=(one.summary,))
    render_site(snapshot, [one], tmp_path / "site", base_url=BASE_URL)
    entries = ET.parse(tmp_path / "site" / "feed.xml").getroot()
    assert len(entries.findall("{http://www.w3.org/2005/Atom}entry")) == 500
    parse(tmp_path / "site" / "endpoints" / "noisy-00000001.html")


def test_sitemap_and_robots_use_absolute_urls(site: Path) -> None:
    root = ET.parse(site / "sitemap.xml").getroot()
    locs = [loc.text or "" for loc in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert f"{BASE_URL}index.html" in locs
    assert f"{BASE_URL}endpoints/{SEED_SLUG}.html" in locs
    assert f"{BASE_URL}categories/media-images.html" in locs
    assert all(loc.startswith(BASE_URL) for loc in locs)
    assert (site / "robots.txt").read_text() == (
        f"User-agent: *\nAllow: /\nSitemap: {BASE_URL}sitemap.xml\n"
    )


def test_timestamps_are_utc_and_relative_to_the_snapshot(site: Path) -> None:
    assert relative(NOW - timedelta(seconds=30), NOW) == "just now"
    assert relative(NOW - timedelta(hours=1), NOW) == "1 hour ago"
    assert relative(NOW - timedelta(days=18, hours=3), NOW) == "18 days ago"
    assert relative(NOW + timedelta(minutes=5), NOW) == "in 5 minutes"
    assert percent(0.9996) == "99.9%"
    assert percent(1.0) == "100.0%"
    for path in site.rglob("*.html"):
        for time in parse(path).iter("time"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", time.text), path
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", time.attrs["datetime"] or "")
            assert time.attrs["title"]


# -- the golden page and determinism ---------------------------------------------------------


def test_golden_endpoint_page(site: Path) -> None:
    page = (site / "endpoints" / f"{SEED_SLUG}.html").read_text(encoding="utf-8")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(page, encoding="utf-8")
    assert GOLDEN.exists(), "run with UPDATE_GOLDEN=1 to create tests/golden/endpoint.html"
    assert page == GOLDEN.read_text(encoding="utf-8"), "UPDATE_GOLDEN=1 after a wanted change"


def test_output_is_deterministic(tmp_path: Path) -> None:
    snapshot, details = sample()
    render_site(snapshot, details, tmp_path / "one", base_url=BASE_URL)
    render_site(snapshot, list(reversed(details)), tmp_path / "two", base_url=BASE_URL)
    assert site_files(tmp_path / "one") == site_files(tmp_path / "two")


# -- incremental writes and the atomic swap --------------------------------------------------


def _stats(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_second_render_rewrites_only_what_changed(tmp_path: Path) -> None:
    snapshot, details = many(450)
    site = tmp_path / "site"
    render_site(snapshot, details, site, base_url=BASE_URL)
    before = _stats(site)
    again = render_site(snapshot, details, site, base_url=BASE_URL)
    assert (again.written, again.removed) == (0, 0)
    assert again.unchanged == len(before) - 1
    assert _stats(site) == before

    changed = details[7]  # bulk-00007, category "media/images", on index page 1
    worse = replace(changed.summary, status=Status.DEGRADED, up=False, consecutive_failures=1)
    details[7] = replace(changed, summary=worse)
    snapshot = replace(snapshot, endpoints=tuple(d.summary for d in details))
    progress: list[tuple[int, int]] = []
    report = render_site(
        snapshot, details, site, base_url=BASE_URL, progress=lambda a, b: progress.append((a, b))
    )
    after = _stats(site)
    rewritten = {path for path, stat in after.items() if before.get(path) != stat} - {MARKER}
    assert rewritten == {
        "endpoints/bulk-00007.html",
        "api/endpoints/bulk-00007.json",
        "badges/bulk-00007.svg",
        "index.html",  # the row moves (healthy first) and the counts change
        "page/2.html",
        "page/3.html",
        "categories/media-images.html",
        "categories.html",
        "api/endpoints.json",
        ".fingerprints.json",  # what each endpoint's files were rendered from
    }
    assert report.written == len(rewritten)
    assert report.unchanged == len(after) - 1 - len(rewritten)
    assert progress[-1] == (451, 451)
    assert [done for done, _ in progress] == list(range(1, 452))


def test_a_template_change_rerenders_the_endpoint_pages(tmp_path: Path) -> None:
    snapshot, details = many(5)
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    site = tmp_path / "site"
    render_site(snapshot, details, site, base_url=BASE_URL, templates=templates)
    endpoint = templates / "endpoint.html"
    endpoint.write_text(endpoint.read_text().replace("Recent Health Checks", "Recent Checks"))
    render_site(snapshot, details, site, base_url=BASE_URL, templates=templates)
    for path in sorted((site / "endpoints").iterdir()):
        assert "Recent Checks" in path.read_text(), path
    (site / ".fingerprints.json").write_text("[not, json")  # a damaged file costs a full render
    report = render_site(snapshot, details, site, base_url=BASE_URL, templates=templates)
    assert report.written == 1  # only the fingerprints themselves


def test_vanished_endpoints_lose_their_files(tmp_path: Path) -> None:
    snapshot, details = sample()
    site = tmp_path / "site"
    render_site(snapshot, details, site, base_url=BASE_URL)
    kept = [d for d in details if d.summary.slug != SEED_SLUG]
    smaller = replace(snapshot, endpoints=tuple(d.summary for d in kept))
    report = render_site(smaller, kept, site, base_url=BASE_URL)
    for gone in (f"endpoints/{SEED_SLUG}.html", f"api/endpoints/{SEED_SLUG}.json"):
        assert not (site / gone).exists()
    assert not (site / "categories" / "media-images.html").exists()
    assert report.removed == 4  # page, JSON, badge, category page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging left


def test_a_failing_render_leaves_the_previous_site_complete(tmp_path: Path) -> None:
    snapshot, details = sample()
    site = tmp_path / "out" / "site"
    render_site(snapshot, details, site, base_url=BASE_URL)
    before = site_files(site)
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    (broken / "about.html").write_text("{{ no_such_name }}", encoding="utf-8")
    with pytest.raises(Exception, match="no_such_name"):
        render_site(snapshot, details[:2], site, base_url=BASE_URL, templates=broken)
    assert site_files(site) == before
    assert sorted(p.name for p in site.parent.iterdir()) == ["site"]


def test_a_directory_that_is_not_a_site_is_never_replaced(tmp_path: Path) -> None:
    snapshot, details = sample()
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(SiteError, match="not written by x402 monitor"):
        render_site(snapshot, details, precious, base_url=BASE_URL)
    assert (precious / "notes.txt").read_text() == "keep me"
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "index.html").write_text("old one-page site")
    render_site(snapshot, details, legacy, base_url=BASE_URL)
    assert (legacy / MARKER).exists()
    with pytest.raises(SiteError, match="not an http"):
        render_site(snapshot, details, tmp_path / "x", base_url="javascript:alert(1)")


def test_unsafe_slugs_are_refused_and_nothing_is_written_outside(tmp_path: Path) -> None:
    good = detail(summary("good-00000001"))
    bad = [detail(summary(slug)) for slug in ("../escape", "UPPER", "a/b", "", "-x" * 100)]
    items = [good, *bad, good]
    snapshot = MonitorSnapshot(taken_at=NOW, endpoints=tuple(d.summary for d in items))
    report = render_site(snapshot, items, tmp_path / "site", base_url=BASE_URL)
    assert report.refused == ("../escape", "UPPER", "a/b", "", "-x" * 100, "good-00000001")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]
    assert sorted(p.name for p in (tmp_path / "site" / "endpoints").iterdir()) == [
        "good-00000001.html"
    ]


def test_an_endpoint_without_detail_is_listed_without_a_page(tmp_path: Path) -> None:
    lonely = summary("lonely-00000001", title="Lonely")
    snapshot = MonitorSnapshot(taken_at=NOW, endpoints=(lonely,))
    render_site(snapshot, [], tmp_path / "site", base_url=BASE_URL)
    row = parse(tmp_path / "site" / "index.html").find("td", class_="name")
    assert row.text.startswith("Lonely")
    assert not list(row.iter("a"))
    assert not (tmp_path / "site" / "endpoints").exists()
    assert (tmp_path / "site" / "badges" / "lonely-00000001.svg").exists()


# -- hostile content -------------------------------------------------------------------------


def test_hostile_content_renders_inert(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    for path in pages:
        tree = parse(path)
        scripts = list(tree.iter("script"))
        assert [(s.attrs.get("src") or "").rsplit("/", 1)[-1] for s in scripts] == ["site.js"], path
        assert not list(tree.iter("img"))[1:], path  # only the badge preview
        for node in tree.iter():
            for name, value in node.attrs.items():
                assert not name.startswith("on"), (path, node.tag, name)
                if name in {"href", "src", "action"}:
                    assert not (value or "").strip().lower().startswith(("javascript:", "data:"))
        raw = path.read_text(encoding="utf-8")
        assert "<script>alert" not in raw, path
        assert "<img src=x" not in raw, path
    page = parse(site / "endpoints" / f"{XSS_SLUG}.html")
    assert page.find("h1").text == f"{SCRIPT}{QUOTES}"
    target = page.find("p", class_="target")
    assert not list(target.iter("a"))  # javascript: URLs are text, never links
    assert target.text == f"GET{QUOTES} javascript:alert(document.cookie)//{QUOTES}"
    overview = dict(facts(page.find("section", id="overview")))
    assert overview["Provider"] == SCRIPT
    assert overview["Source"] == QUOTES
    category = page.find("section", id="overview").find(
        "a", href="../categories/etc-script-alert-1-script.html"
    )
    assert category.text == f"../../etc/{SCRIPT}"
    validation = page.find("section", id="validation")
    assert not [a for a in validation.iter("a") if "alert" in (a.attrs.get("href") or "")]
    meta = page.find("meta", name="description")
    assert (meta.attrs["content"] or "").startswith(SCRIPT)
    assert page.find("textarea", id="badge-md").text.startswith("[![x402 status]")
    assert json.loads(page.find("section", id="input-schema").find("pre").text)[SCRIPT] == QUOTES
    # the sanitised category slug stays inside the site
    assert (site / "categories" / "etc-script-alert-1-script.html").is_file()
    assert not list(site.parent.glob("etc*"))
