"""Normalising untrusted Bazaar catalogue items: derivation tables, rejections, real items."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.catalogue import (
    CATEGORY_RULES,
    TITLE_CHARS,
    CatalogueEntry,
    Rejection,
    catalogue_challenge,
    category_of,
    category_rules_markdown,
    local_target_reason,
    normalise_item,
    parse_last_updated,
    registrable_domain,
    trim,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
ITEM_05: dict[str, Any] = json.loads(
    (FIXTURES / "05-discovery-item-cdp-docs-mixed-v1-v2.json").read_text()
)
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
PAY_TO = "0xa2477E16dCB42E2AD80f03FE97D7F1a1646cd1c0"


def item(**changes: Any) -> dict[str, Any]:
    """Return a copy of fixture 05 with top-level keys replaced (None deletes the key)."""
    result = copy.deepcopy(ITEM_05)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def entry(value: object, *, allow_private: bool = False) -> CatalogueEntry:
    result = normalise_item(value, allow_private=allow_private)
    assert isinstance(result, CatalogueEntry), result
    return result


V1_ITEM: dict[str, Any] = {
    "resource": "https://api.truecast.example/v1/predict",
    "type": "http",
    "x402Version": 1,
    "lastUpdated": 1703123456,
    "metadata": {"category": "Finance", "provider": "Example Corp"},
    "accepts": [
        {
            "scheme": "exact",
            "network": "base",
            "maxAmountRequired": "10000",
            "resource": "https://api.truecast.example/v1/predict",
            "description": "Predict the outcome of a market with a large language model",
            "mimeType": "application/json",
            "payTo": PAY_TO,
            "maxTimeoutSeconds": 60,
            "asset": BASE_USDC,
            "extra": {"name": "USD Coin", "version": "2"},
            "outputSchema": {
                "input": {
                    "type": "http",
                    "method": "POST",
                    "bodyFields": {"q": {"type": "string"}},
                },
                "output": {"type": "object"},
            },
        }
    ],
}

V2_ITEM: dict[str, Any] = {
    "resource": "https://images.pixelforge.co.uk/v2/generate",
    "type": "http",
    "x402Version": 2,
    "lastUpdated": "2026-03-01T12:00:00Z",
    "description": "Generate an image from a text prompt with a diffusion model, "
    "returning a PNG URL. Styles: photo, anime, sketch, oil painting and more.",
    "serviceName": "PixelForge",
    "tags": ["art", "images"],
    "accepts": [
        {
            "scheme": "exact",
            "network": "eip155:8453",
            "amount": "50000",
            "payTo": PAY_TO,
            "maxTimeoutSeconds": 120,
            "asset": BASE_USDC,
            "extra": {"name": "USD Coin", "version": "2"},
        }
    ],
    "extensions": {
        "bazaar": {
            "info": {
                "input": {
                    "type": "http",
                    "method": "POST",
                    "bodyType": "json",
                    "body": {"prompt": "a cat"},
                },
                "output": {"type": "json", "example": {"url": "https://x.example/a.png"}},
            },
            "schema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "input": {
                        "type": "object",
                        "properties": {"type": {"const": "http"}, "method": {"enum": ["POST"]}},
                        "required": ["type"],
                    }
                },
                "required": ["input"],
            },
        }
    },
}

MCP_ITEM: dict[str, Any] = {
    "resource": "https://mcp.toolsmith.dev/mcp",
    "type": "mcp",
    "x402Version": 2,
    "lastUpdated": 1767225600000,
    "accepts": V2_ITEM["accepts"],
    "extensions": {
        "bazaar": {
            "info": {
                "input": {
                    "type": "mcp",
                    "toolName": "get_weather",
                    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            },
            "schema": {"type": "object", "properties": {"input": {}}, "required": ["input"]},
        }
    },
}


# --- real and typical items ---------------------------------------------------------------


def test_fixture_05_hybrid_item_is_normalised() -> None:
    result = entry(ITEM_05)
    assert result.url == "https://api.example.com/x402/weather"
    assert result.method == "GET"
    assert result.price == "$0.0002"
    assert result.network == "eip155:8453"
    assert result.asset == BASE_USDC
    assert result.title is None  # every description in it is empty
    assert result.provider == "example.com"
    assert result.category == "weather"  # from the URL path
    assert result.x402_version == 2
    assert result.kind == "http"
    assert result.last_updated == datetime(2025, 8, 9, 1, 7, 4, 5000, tzinfo=UTC)
    assert result.input_schema == {"method": "GET", "type": "http"}
    assert result.item == ITEM_05
    assert result.item is not ITEM_05
    assert result.key == ("https://api.example.com/x402/weather", "GET")


def test_fixture_05_offers_are_judged_by_their_field_names_not_the_declared_version() -> None:
    challenge = catalogue_challenge(ITEM_05)
    assert challenge.valid
    assert challenge.source == "catalogue"
    assert challenge.version == 2
    codes = {finding.code for finding in challenge.findings}
    assert "v2-in-body" not in codes  # a catalogue is not a 402 body
    assert "resource-invalid" not in codes  # the item's string resource is not an envelope
    assert "field-missing" not in codes


def test_v1_item() -> None:
    result = entry(V1_ITEM)
    assert result.method == "POST"
    assert result.price == "$0.01"
    assert result.network == "eip155:8453"  # v1 name mapped to CAIP-2
    assert result.title == "Predict the outcome of a market with a large language model"
    assert result.provider == "Example Corp"  # metadata.provider
    assert result.category == "finance"  # metadata.category, lower-cased
    assert result.last_updated == datetime(2023, 12, 21, 1, 50, 56, tzinfo=UTC)
    assert result.input_schema is not None
    assert result.input_schema["method"] == "POST"
    assert result.output_schema == {"type": "object"}


def test_v2_item_with_bazaar_extension() -> None:
    result = entry(V2_ITEM)
    assert result.url == "https://images.pixelforge.co.uk/v2/generate"
    assert result.method == "POST"
    assert result.price == "$0.05"
    assert result.provider == "PixelForge"
    assert result.category == "media/image"  # the tag "images" maps, "art" does not
    assert result.title is not None
    assert len(result.title) <= TITLE_CHARS
    assert result.title.endswith("…")
    assert result.title.startswith("Generate an image")
    assert result.description == V2_ITEM["description"]
    assert result.input_schema == V2_ITEM["extensions"]["bazaar"]["info"]["input"]
    assert result.output_schema == V2_ITEM["extensions"]["bazaar"]["info"]["output"]
    assert result.api is not None
    assert result.api.body_type == "json"


def test_mcp_item_is_indexed_and_flagged() -> None:
    result = entry(MCP_ITEM)
    assert result.kind == "mcp"
    assert result.method is None
    assert result.tool_name == "get_weather"
    assert result.title == "get_weather"  # no description: the tool name
    assert result.key == ("https://mcp.toolsmith.dev/mcp", "mcp:get_weather")
    assert result.last_updated == datetime(2026, 1, 1, tzinfo=UTC)  # milliseconds detected


def test_item_without_a_valid_offer_is_indexed_without_price() -> None:
    broken = item(accepts=[{"scheme": "exact"}, "junk"])
    result = entry(broken)
    assert result.price is None
    assert result.network is None
    assert result.asset is None


def test_allow_private_accepts_loopback_items() -> None:
    local = item(resource="http://127.0.0.1:8402/weather")
    assert normalise_item(local, allow_private=False) == Rejection(
        "private-target", "loopback address 127.0.0.1"
    )
    assert entry(local, allow_private=True).url == "http://127.0.0.1:8402/weather"
    assert entry(item(resource="http://localhost:8080/"), allow_private=True).provider is None


def test_resource_object_and_url_normalisation() -> None:
    result = entry(item(resource={"url": "HTTPS://API.Example.COM:443/x?"}))
    assert result.url == "https://api.example.com/x"


# --- rejections --------------------------------------------------------------------------

REJECTIONS: list[tuple[str, object, str]] = [
    ("list", [ITEM_05], "not-object"),
    ("string", "https://api.example.com/", "not-object"),
    ("null", None, "not-object"),
    ("no resource", item(resource=None), "no-resource"),
    ("empty resource", item(resource=""), "no-resource"),
    ("resource number", item(resource=42), "malformed"),
    ("javascript", item(resource="javascript:alert(1)"), "not-http-url"),
    ("ftp", item(resource="ftp://files.example.com/x"), "not-http-url"),
    ("relative", item(resource="/x402/weather"), "not-http-url"),
    ("credentials", item(resource="https://user:pw@api.example.com/"), "not-http-url"),
    ("private IP", item(resource="http://10.0.0.5/x"), "private-target"),
    ("localhost", item(resource="http://localhost:8080/"), "private-target"),
    ("sub.localhost", item(resource="http://a.localhost/"), "private-target"),
    (".local", item(resource="http://printer.local/"), "private-target"),
    (".internal", item(resource="http://metadata.google.internal/"), "private-target"),
    (".lan", item(resource="http://router.lan/"), "private-target"),
    ("single label", item(resource="http://intranet/x"), "private-target"),
    ("metadata IP", item(resource="http://169.254.169.254/latest"), "private-target"),
    ("decimal IP", item(resource="http://2130706433/"), "private-target"),
    ("IPv6 loopback", item(resource="http://[::1]/"), "private-target"),
    ("mapped IPv6", item(resource="http://[::ffff:10.0.0.1]/"), "private-target"),
    ("long URL", item(resource="https://api.example.com/" + "a" * 2048), "too-long"),
    ("100 KB description", item(description="x" * (100 * 1024 + 1)), "too-long"),
    ("big item", item(metadata={"blob": "y" * (256 * 1024)}), "too-long"),
    ("version 3", item(x402Version=3), "malformed"),
    ("version string", item(x402Version="2"), "malformed"),
    ("version true", item(x402Version=True), "malformed"),
    ("no version", item(x402Version=None), "malformed"),
    ("accepts object", item(accepts={"scheme": "exact"}), "malformed"),
    ("accepts missing", item(accepts=None), "malformed"),
    ("unknown type", item(type="websocket"), "malformed"),
    ("type number", item(type=7), "malformed"),
    ("not JSON", item(metadata={1, 2}), "malformed"),
    ("NaN", item(metadata={"x": math.nan}), "malformed"),
]


@pytest.mark.parametrize(
    ("value", "reason"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_rejection_reasons(value: object, reason: str) -> None:
    result = normalise_item(value, allow_private=False)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert 0 < len(result.detail) <= 200


def test_hostile_values_never_raise() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    for hostile in (
        item(metadata=deep),
        item(accepts=[deep]),
        item(lastUpdated=[1]),
        item(lastUpdated=1e308),
        item(tags=[None, 5, "x" * 40]),
        item(serviceName={"a": 1}),
        item(description=["x"]),
        item(extensions={"bazaar": "junk"}),
        item(resource={"url": None}),
    ):
        assert isinstance(normalise_item(hostile, allow_private=False), CatalogueEntry | Rejection)


# --- derivation tables -------------------------------------------------------------------

PROVIDERS = [
    ({"serviceName": "Weather Co"}, "https://api.example.com/x", "Weather Co"),
    ({"serviceName": "x" * 33}, "https://api.example.com/x", "example.com"),  # invalid name
    ({"serviceName": "Caf\u00e9"}, "https://api.example.com/x", "example.com"),  # not ASCII
    ({}, "https://api.foo.co.uk/x", "foo.co.uk"),
    ({}, "https://x402.dopamint.ai/mint", "dopamint.ai"),
    ({}, "https://a.b.github.io/x", "b.github.io"),
    ({}, "https://example.com/x", "example.com"),
    ({}, "https://8.8.8.8/x", None),
    ({}, "https://[2001:4860:4860::8888]/x", None),
]


@pytest.mark.parametrize(("extra", "url", "provider"), PROVIDERS)
def test_provider_derivation(extra: dict[str, Any], url: str, provider: str | None) -> None:
    assert entry(item(resource=url, **extra)).provider == provider


@pytest.mark.parametrize(
    ("host", "domain"),
    [("api.foo.co.uk", "foo.co.uk"), ("co.uk", None), ("", None), ("1.2.3.4", None),
     ("API.Example.COM.", "example.com"), ("0x7f000001", None)],
)  # fmt: skip
def test_registrable_domain(host: str, domain: str | None) -> None:
    assert registrable_domain(host) == domain


CATEGORIES = [
    ({"metadata": {"category": "Finance"}}, None, "finance"),
    ({"metadata": {"category": 5}, "tags": ["Weather"]}, None, "weather"),
    ({"tags": ["fun", "LLM"]}, None, "ai"),
    ({"tags": ["Fun Stuff"]}, None, "fun stuff"),
    ({}, "AI image generator", "media/image"),
    ({}, "Turn text into speech", "media/audio"),
    ({}, "Short video clips on demand", "media/video"),
    ({}, "Weather data for any city", "weather"),
    ({}, "Current ETH price", "crypto"),
    ({}, "Stock prices, end of day", "finance"),
    ({}, "Web search results", "search"),
    ({}, "Chat with an LLM", "ai"),
    ({}, "Latest headlines", "news"),
    ({}, "Farcaster profile lookup", "search"),
    ({}, "Reverse geocoding", "geo"),
    ({}, "Scrape a page", "data"),
    ({}, "Send mail", None),  # "ai" is a whole word only
]


@pytest.mark.parametrize(("extra", "text", "category"), CATEGORIES)
def test_category_rules(extra: dict[str, Any], text: str | None, category: str | None) -> None:
    assert category_of(extra, text, "https://api.example.com/v1/run") == category


def test_category_falls_back_to_url_path_and_host() -> None:
    assert category_of({}, None, "https://api.example.com/x402/weather") == "weather"
    assert category_of({}, "Nothing to see", "https://news.example.com/") == "news"
    assert category_of({}, None, "https://api.example.com/v1") is None


def test_category_table_is_documented() -> None:
    table = category_rules_markdown()
    assert table.count("\n") == len(CATEGORY_RULES) + 1
    assert "| media/image | image, images" in table


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short title", 80, "Short title"),
        ("  many   spaces\n\tand lines ", 80, "many spaces and lines"),
        ("one two three four", 12, "one two…"),
        ("one two, three", 10, "one two…"),  # trailing punctuation dropped before "…"
        ("x" * 100, 10, "xxxxxxxxx…"),  # one long word: cut inside it
        ("bell\x07 and\x00null", 80, "bell and null"),
    ],
)
def test_trim_at_word_boundary(text: str, limit: int, expected: str) -> None:
    trimmed = trim(text, limit)
    assert trimmed == expected
    assert len(trimmed) <= limit


def test_description_keeps_lines_and_is_bounded() -> None:
    long = ("word " * 1000).strip()
    result = entry(item(description=f"First line\n\n{long}"))
    assert result.description is not None
    assert len(result.description) <= 2000
    assert result.description.startswith("First line\nword")
    assert result.title is not None
    assert result.title.startswith("First line word")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1703123456, datetime(2023, 12, 21, 1, 50, 56, tzinfo=UTC)),
        (1703123456.5, datetime(2023, 12, 21, 1, 50, 56, 500000, tzinfo=UTC)),
        (1703123456000, datetime(2023, 12, 21, 1, 50, 56, tzinfo=UTC)),
        ("1703123456", datetime(2023, 12, 21, 1, 50, 56, tzinfo=UTC)),
        ("2025-08-09T01:07:04.005Z", datetime(2025, 8, 9, 1, 7, 4, 5000, tzinfo=UTC)),
        ("2025-08-09T03:07:04+02:00", datetime(2025, 8, 9, 1, 7, 4, tzinfo=UTC)),
        ("2025-08-09 01:07:04", datetime(2025, 8, 9, 1, 7, 4, tzinfo=UTC)),  # naive → UTC
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (-5, None),
        (0, None),
        (math.nan, None),
        (1e300, None),
        ([1703123456], None),
        ("9" * 100, None),
    ],
)
def test_last_updated(value: object, expected: datetime | None) -> None:
    assert parse_last_updated(value) == expected


@pytest.mark.parametrize(
    ("host", "refused"),
    [("127.0.0.1", True), ("0177.0.0.1", True), ("0x7f.1", True), ("999.1.1.1", True),
     ("8.8.8.8", False), ("localhost.", True), ("example.com", False), ("xn--bcher-kva.de", False),
     ("home.arpa", False), ("nas.home.arpa", True)],
)  # fmt: skip
def test_local_target_reason(host: str, refused: bool) -> None:
    assert (local_target_reason(host) is not None) is refused
