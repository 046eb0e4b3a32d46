"""Derive catalogue facts: provider, category, title trimming, dates, local host names.

Helpers of `monitor.catalogue`. Pure: stdlib, the monitor core and `publicsuffixlist` (its
bundled list; no network, no DNS lookups).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Final

from publicsuffixlist import PublicSuffixList

from monitor.addresses import refusal_reason
from monitor.models import JsonValue
from monitor.urls import host_of

MS_THRESHOLD: Final = 100_000_000_000
"""A `lastUpdated` number above this is milliseconds (1e11 s is the year 5138, 1e11 ms 1973)."""

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".lan", ".home.arpa")
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)", re.IGNORECASE)
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]{1,32}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WORD = re.compile(r"[a-z0-9]+")

CATEGORY_RULES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("media/image", ("image", "images", "photo", "photos", "picture", "img", "avatar", "logo")),
    ("media/video", ("video", "videos", "movie", "clip", "youtube")),
    ("media/audio", ("audio", "music", "song", "speech", "voice", "tts", "podcast", "sound")),
    ("weather", ("weather", "forecast", "temperature", "climate", "rain")),
    ("crypto", ("crypto", "token", "tokens", "defi", "swap", "nft", "nfts", "wallet", "onchain",
                "blockchain", "bitcoin", "btc", "ethereum", "eth", "solana", "dex", "memecoin")),
    ("finance", ("finance", "financial", "price", "prices", "stock", "stocks", "market",
                 "markets", "trading", "forex", "currency", "invoice", "payment", "payments")),
    ("search", ("search", "lookup", "find", "discover")),
    ("ai", ("ai", "llm", "gpt", "chat", "chatbot", "agent", "agents", "inference", "prompt",
            "completion", "completions", "embedding", "embeddings", "summarize", "summarise",
            "summary", "translate", "translation", "claude", "openai", "model")),
    ("news", ("news", "headline", "headlines", "article", "articles", "blog")),
    ("social", ("social", "twitter", "tweet", "tweets", "farcaster", "reddit", "telegram",
                "discord", "profile", "followers")),
    ("geo", ("geo", "geocode", "geocoding", "map", "maps", "location", "places", "address")),
    ("data", ("data", "dataset", "analytics", "scrape", "scraper", "crawl", "extract",
              "enrich", "enrichment", "stats", "statistics")),
)  # fmt: skip
"""Keyword rules for `category` (`category_rules_markdown` prints them for the README).

The category of an item is, first match wins: (1) its `metadata.category`, lower-cased, when
it is 1–32 printable ASCII characters; (2) of its `tags`, the first one a rule maps, else the
first valid tag, lower-cased; (3) the first rule (in this order) with a keyword among the words
of the title and description; (4) the same over the words of the URL host and path
(`/x402/weather` → weather); (5) None, uncategorised. Words are runs of lower-case letters and
digits, matched whole ("ai" does not match "mail"). Media and weather come before ai and data,
so "AI image generator" is media/image and "weather data" is weather.
"""


def local_target_reason(host: str) -> str | None:
    """Return why a URL host is private or local without resolving it, else None.

    IP literals (and numeric/hex hosts that resolvers read as IPv4, e.g. `2130706433`) are
    judged by `refusal_reason`; names by the local-name rules of the module docstring.
    """
    name = host.lower().rstrip(".").strip("[]")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return refusal_reason(str(address))
    labels = name.split(".")
    if labels and _NUMERIC_LABEL.fullmatch(labels[-1]):
        # No public suffix is numeric: this is an IPv4 address in inet_aton's looser forms.
        try:
            packed = socket.inet_aton(name)  # pure parsing, no lookup
        except OSError:
            return f"numeric host {name[:60]!r}"
        return refusal_reason(socket.inet_ntoa(packed))
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        return f"local host name {name[:60]!r}"
    if "." not in name:
        return f"single-label host name {name[:60]!r}"
    return None


def trim(text: str, limit: int, *, keep_lines: bool = False) -> str:
    """Return `text` without control characters, whitespace collapsed, at most `limit` chars.

    Longer text is cut at the last word boundary that fits and ends with "…"; a single word
    longer than the limit is cut inside it. `keep_lines` keeps line breaks (descriptions).
    """
    cleaned = _CONTROL.sub(" ", text)
    if keep_lines:
        lines = (" ".join(line.split()) for line in cleaned.splitlines())
        cleaned = "\n".join(line for line in lines if line)
    else:
        cleaned = " ".join(cleaned.split())
    if len(cleaned) <= limit:
        return cleaned
    head = cleaned[: limit - 1]
    cut = max(head.rfind(" "), head.rfind("\n"))
    if cut > limit // 2:
        head = head[:cut]
    return head.rstrip(" \n,;:-–") + "…"


def short_text(value: JsonValue) -> str | None:
    """Return a 1–32 printable-ASCII string stripped of outer spaces, else None."""
    if isinstance(value, str) and _PRINTABLE_ASCII.fullmatch(value) and value.strip():
        return value.strip()
    return None


def provider_of(item: Mapping[str, JsonValue], url: str) -> str | None:
    """Return `serviceName`, else `metadata.provider`, else the URL's registrable domain."""
    resource = item.get("resource")
    metadata = item.get("metadata")
    for value in (
        item.get("serviceName"),
        resource.get("serviceName") if isinstance(resource, Mapping) else None,
        metadata.get("provider") if isinstance(metadata, Mapping) else None,
    ):
        name = short_text(value)
        if name is not None:
            return name
    return registrable_domain(host_of(url))


@cache
def _suffix_list() -> PublicSuffixList:
    return PublicSuffixList()  # the bundled list: parsed once, no download


def registrable_domain(host: str) -> str | None:
    """Return the registrable domain of a host name per the Public Suffix List, else None.

    `api.foo.co.uk` → `foo.co.uk`, `a.b.github.io` → `b.github.io` (private suffixes count).
    IP literals, bare public suffixes and empty hosts → None; never the first host label.
    """
    name = host.lower().rstrip(".").strip("[]")
    if not name:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        return None  # inet_aton-style IPv4 spellings
    domain = _suffix_list().privatesuffix(name)
    return domain if isinstance(domain, str) else None


def category_of(item: Mapping[str, JsonValue], text: str | None, url: str) -> str | None:
    """Return the category of an item: catalogue metadata/tags first, then CATEGORY_RULES."""
    metadata = item.get("metadata")
    declared = short_text(metadata.get("category")) if isinstance(metadata, Mapping) else None
    if declared is not None:
        return declared.lower()
    tags = item.get("tags")
    valid_tags: list[str] = []
    for tag in tags[:5] if isinstance(tags, list) else []:
        short = short_text(tag)
        if short is not None:
            valid_tags.append(short.lower())
    for tag in valid_tags:
        matched = _match(" ".join(_WORD.findall(tag)))
        if matched is not None:
            return matched
    if valid_tags:
        return valid_tags[0]
    for words in (text or "", host_of(url) + " " + url.split("://", 1)[-1].partition("/")[2]):
        matched = _match(words.lower())
        if matched is not None:
            return matched
    return None


def category_rules_markdown() -> str:
    """Return CATEGORY_RULES as a Markdown table (the README copies it)."""
    rows = [f"| {name} | {', '.join(words)} |" for name, words in CATEGORY_RULES]
    return "\n".join(["| category | any of these words |", "|---|---|", *rows])


def _match(text: str) -> str | None:
    words = set(_WORD.findall(text))
    for category, keywords in CATEGORY_RULES:
        if not words.isdisjoint(keywords):
            return category
    return None


def parse_last_updated(value: JsonValue) -> datetime | None:
    """Return `lastUpdated` as an aware UTC datetime: unix s or ms (numbers or digit strings)
    or ISO 8601 (naive means UTC); None when absent, junk or out of range."""
    try:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not value > 0:  # also refuses NaN
                return None
            seconds = value / 1000 if value > MS_THRESHOLD else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and 0 < len(value) <= 64:
            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None
