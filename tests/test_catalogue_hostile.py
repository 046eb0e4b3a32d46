"""Hostile Bazaar catalogue items, crawled from a loopback facilitator into a real SQLite store.

Text that cannot be encoded (lone surrogates) or shown (NUL, escape sequences) anywhere in an
item is cleaned where the page is parsed, so the item is stored and read back, and every
derived text (title, description, provider, category, tool name) is bounded. Normalising a big
page runs beside the event loop, never on it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from loop_watch import watching_the_loop
from test_catalogue import MCP_ITEM
from test_crawl import TEMPLATE, StubCatalogue, real_item

from monitor.catalogue import (
    DESCRIPTION_CHARS,
    MAX_ITEM_BYTES,
    MAX_TOOL_NAME_CHARS,
    PROVIDER_CHARS,
    TITLE_CHARS,
    CatalogueEntry,
    Rejection,
    normalise_item,
)
from monitor.config import Config, parse_config
from monitor.discovery import CatalogueCrawler
from monitor.indexing import CrawlSummary, crawl_source
from monitor.store import Store
from monitor.store.records import StoredEndpoint
from monitor.untrusted import is_clean

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
UNSAFE = "\ud800\x00\x1b[31m\x7f\x01"
"""A lone surrogate (cannot be encoded), NUL (refused by PostgreSQL and XML), an ANSI escape
sequence, DEL and another control character."""
MAX_TICK_GAP_S = 1.0


def hostile_item(url: str = "https://api.example.com/x402/weather") -> dict[str, Any]:
    """Return fixture 05 with unsafe characters in every text a catalogue item carries."""
    item = copy.deepcopy(TEMPLATE)
    item["resource"] = url
    item["accepts"][0]["resource"] = url
    item["accepts"][0]["description"] = f"Paid {UNSAFE} weather"
    item["accepts"][0]["extra"]["name"] = f"USD{UNSAFE}"
    item["accepts"][0]["outputSchema"]["input"]["queryParams"] = {
        f"city{UNSAFE}": {"type": "string", "description": f"the city {UNSAFE}"}
    }
    item["accepts"][0]["outputSchema"]["output"] = {f"temp{UNSAFE}": UNSAFE}
    item["description"] = f"Weather {UNSAFE} forecast for any city " + "and more words " * 2000
    item["serviceName"] = f"Evil{UNSAFE}Corp"
    item["tags"] = [f"{UNSAFE}weather", "x\x00"]
    item["metadata"] = {"category": f"\x00fin{UNSAFE}", "provider": f"P{UNSAFE}"}
    item[f"key{UNSAFE}"] = {UNSAFE: [UNSAFE]}
    return item


def texts(value: object) -> Iterator[str]:
    """Yield every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from texts(key)
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


@pytest.fixture
def stub() -> Iterator[StubCatalogue]:
    server = StubCatalogue([])
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _config(url: str) -> Config:
    return parse_config({"sources": [{"type": "bazaar", "name": "cdp", "url": url}]}, {})


async def _no_sleep(_seconds: float) -> None:
    return None


def _crawl(store: Store, config: Config) -> tuple[CrawlSummary, float]:
    """Crawl the source into `store` beside a 10 ms ticker; return the summary, longest stall.

    The stall is CPU time the loop's thread spent between two ticks (tests/loop_watch.py).
    """
    crawler = CatalogueCrawler(user_agent="test", sleep=_no_sleep)

    async def run() -> tuple[CrawlSummary, float]:
        async with watching_the_loop() as watch, crawler:
            summary = await crawl_source(store, crawler, config.sources[0], config, lambda: T0)
        return summary, watch.longest_stall_s

    return asyncio.run(run())


def assert_safe(endpoint: StoredEndpoint) -> None:
    """Every text of a stored endpoint is clean and encodes; its JSON dump works unescaped."""
    spec = endpoint.spec
    for text in [spec.url, spec.title, spec.category, endpoint.provider, endpoint.description]:
        assert text is None or is_clean(text), repr(text)
    for text in texts(endpoint.catalogue_item):
        assert is_clean(text), repr(text)
    dumped = json.dumps(
        {
            "url": spec.url,
            "title": spec.title,
            "category": spec.category,
            "provider": endpoint.provider,
            "description": endpoint.description,
            "item": endpoint.catalogue_item,
            "input_schema": spec.input_schema,
            "output_schema": endpoint.output_schema,
        },
        ensure_ascii=False,
    )
    dumped.encode("utf-8")  # strict: a lone surrogate would raise here
    assert "\x00" not in dumped


def test_a_hostile_item_is_stored_clean_and_bounded(tmp_path: Path, stub: StubCatalogue) -> None:
    unsafe_url = hostile_item(f"https://api.example.com/x402/{UNSAFE}/weather")
    stub.items = [hostile_item(), real_item(1), unsafe_url]
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    summary, _ = _crawl(store, _config(stub.base_url))
    assert summary.error is None
    assert summary.complete
    # A URL with control characters or invalid Unicode is not a URL (and is not rewritten).
    assert (summary.seen, summary.new, dict(summary.rejected)) == (3, 2, {"not-http-url": 1})

    reopened = Store.open(f"sqlite:///{tmp_path}/monitor.db")  # a fresh read from the file
    endpoints = {endpoint.spec.url: endpoint for endpoint in reopened.endpoints()}
    hostile = endpoints["https://api.example.com/x402/weather"]
    assert_safe(hostile)
    assert hostile.spec.title is not None
    assert hostile.spec.title.startswith("Weather \ufffd\ufffd\ufffd[31m\ufffd\ufffd forecast")
    assert len(hostile.spec.title) <= TITLE_CHARS
    assert hostile.description is not None
    assert len(hostile.description) <= DESCRIPTION_CHARS
    assert hostile.provider == "example.com"  # serviceName and metadata.provider are unusable
    assert hostile.spec.category == "weather"  # nor are the declared category and tags
    item = hostile.catalogue_item
    assert isinstance(item, dict)
    assert item["key\ufffd\ufffd\ufffd[31m\ufffd\ufffd"] == {
        "\ufffd" * 3 + "[31m" + "\ufffd" * 2: ["\ufffd" * 3 + "[31m" + "\ufffd" * 2]
    }
    assert hostile.spec.input_schema is not None
    assert_safe(endpoints["https://api1.example.com/x402/weather/1"])


def test_every_derived_text_is_bounded() -> None:
    long_word = "a" * 500
    host = "api." + "p" * 300 + ".com"  # a label longer than DNS allows: no name server checks
    item = copy.deepcopy(TEMPLATE)
    item["resource"] = f"https://{host}/x"
    item["accepts"][0]["resource"] = item["resource"]
    item["description"] = (long_word + " ") * 150
    result = normalise_item(item, allow_private=False)
    assert isinstance(result, CatalogueEntry)
    assert result.title is not None
    assert len(result.title) <= TITLE_CHARS
    assert result.description is not None
    assert len(result.description) <= DESCRIPTION_CHARS
    assert result.provider is not None
    assert len(result.provider) <= PROVIDER_CHARS
    assert result.provider.endswith("…")


def test_a_tool_name_becomes_a_bounded_title() -> None:
    tool = "tool_" * 25  # 125 characters: within MCP's 128, longer than a title
    item = copy.deepcopy(MCP_ITEM)
    item["extensions"]["bazaar"]["info"]["input"]["toolName"] = tool
    result = normalise_item(item, allow_private=False)
    assert isinstance(result, CatalogueEntry)
    assert result.tool_name == tool
    assert result.title is not None
    assert len(result.title) <= TITLE_CHARS


def test_an_over_long_tool_name_is_rejected() -> None:
    item = copy.deepcopy(MCP_ITEM)
    item["extensions"]["bazaar"]["info"]["input"]["toolName"] = "t" * (MAX_TOOL_NAME_CHARS + 1)
    result = normalise_item(item, allow_private=False)
    assert isinstance(result, Rejection)
    assert result.reason == "too-long"
    assert "tool name" in result.detail


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (float("inf"), "a number out of range"),  # what a page's 1e400 or a huge integer gives
        (float("nan"), "a number out of range"),
        ({1, 2}, "not plain JSON"),
    ],
)
def test_a_number_out_of_range_is_malformed(value: object, detail: str) -> None:
    item = copy.deepcopy(TEMPLATE)
    item["metadata"] = {"n": value}
    result = normalise_item(item, allow_private=False)
    assert isinstance(result, Rejection)
    assert result.reason == "malformed"
    assert detail in result.detail


def test_the_raw_item_kept_is_bounded(tmp_path: Path, stub: StubCatalogue) -> None:
    big = real_item(1)
    big["metadata"] = {"blob": "y" * MAX_ITEM_BYTES}
    fits = real_item(2)
    fits["metadata"] = {"blob": "z" * (MAX_ITEM_BYTES - 2048)}
    stub.items = [big, fits]
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    summary, _ = _crawl(store, _config(stub.base_url))
    assert dict(summary.rejected) == {"too-long": 1}
    (stored,) = store.endpoints()
    assert len(json.dumps(stored.catalogue_item).encode()) <= MAX_ITEM_BYTES


def test_a_big_page_is_normalised_beside_the_event_loop(
    tmp_path: Path, stub: StubCatalogue
) -> None:
    # A server that ignores `limit` serves 5,000 items at once: ~2 s of normalising.
    items = [real_item(index) for index in range(5000)]
    stub.always[0] = (200, {}, json.dumps({"items": items}).encode())
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    summary, max_gap = _crawl(store, _config(stub.base_url))
    assert summary.complete
    assert summary.new == 5000
    assert max_gap < MAX_TICK_GAP_S, f"event loop stalled {max_gap:.2f} s"
