"""Turn one untrusted Bazaar catalogue item into a `CatalogueEntry` or a `Rejection`.

Core module: pure (stdlib, the monitor core and `publicsuffixlist`, which ships its list — no
network, no DNS, no clock). `normalise_item` never raises. Items are v1, v2 or hybrid (v2
version with v1 field names inside `accepts`, reference §4.3 and example 05); their offers
are validated by the x402 core as a catalogue document, not as a 402 body
(`offers.catalogue_challenge`); provider, category, title and dates come from `derive`.

Items arrive with their text already cleaned (`JsonClientOwner.get_json`: no lone surrogates
or control characters, U+FFFD in their place), so what is derived from them can be stored and
shown. Every derived text is bounded: title TITLE_CHARS, description DESCRIPTION_CHARS,
provider PROVIDER_CHARS, category 32 (`derive.short_text`), tool name MAX_TOOL_NAME_CHARS (else
rejected: it is part of the endpoint's identity), and the raw item kept is at most
MAX_ITEM_BYTES.

Rejection reasons (stable; counted per source, never stored as endpoints):
  not-object      the item is not a JSON object
  no-resource     no `resource` URL (missing, null or empty)
  not-http-url    not an absolute http(s) URL without credentials (`javascript:`, `ftp:`, …),
                  or one holding control characters or invalid Unicode (U+FFFD once cleaned)
  private-target  (unless `allow_private`) an IP literal `refusal_reason` refuses, a numeric
                  host, or a local name: localhost, *.localhost, *.local, *.localdomain,
                  *.internal, *.lan, *.home.arpa, single-label hosts. No DNS lookups.
  too-long        resource URL > 2,048 chars, a description > 100 KB, item JSON > 256 KB,
                  an MCP tool name > 128 chars
  malformed       wrong types: x402Version not 1/2, accepts not a list, resource/type/…
                  of the wrong type, unknown `type`, a number out of range (NaN, ±infinity:
                  a page's `1e400` or over-long integer), or an item that cannot be read
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from monitor.catalogue.derive import (
    CATEGORY_RULES,
    category_of,
    category_rules_markdown,
    local_target_reason,
    parse_last_updated,
    provider_of,
    registrable_domain,
    trim,
)
from monitor.catalogue.offers import catalogue_challenge, challenge_and_description
from monitor.models import JsonValue
from monitor.untrusted import REPLACEMENT, bound
from monitor.urls import host_of, is_http_url, normalise_url
from monitor.x402.bazaar import ApiDescription
from monitor.x402.context import MAX_OFFERS

__all__ = [
    "CATEGORY_RULES",
    "DESCRIPTION_CHARS",
    "MAX_DESCRIPTION_BYTES",
    "MAX_ITEM_BYTES",
    "MAX_TOOL_NAME_CHARS",
    "MAX_URL_CHARS",
    "PROVIDER_CHARS",
    "TITLE_CHARS",
    "CatalogueEntry",
    "Rejection",
    "catalogue_challenge",
    "category_of",
    "category_rules_markdown",
    "local_target_reason",
    "normalise_item",
    "parse_last_updated",
    "registrable_domain",
    "trim",
]

MAX_URL_CHARS: Final = 2048
MAX_DESCRIPTION_BYTES: Final = 100 * 1024
MAX_ITEM_BYTES: Final = 256 * 1024
MAX_TOOL_NAME_CHARS: Final = 128
"""MCP's own limit on tool names (names SHOULD be 1 to 128 characters)."""
TITLE_CHARS: Final = 80
DESCRIPTION_CHARS: Final = 2000
PROVIDER_CHARS: Final = 100
"""A provider is a name of at most 32 characters or a registrable domain (DNS: 253 at most)."""


@dataclass(frozen=True)
class Rejection:
    """Why an item is not indexed: a stable `reason` (module docstring) and a short detail."""

    reason: str
    detail: str


@dataclass(frozen=True)
class CatalogueEntry:
    """One indexable catalogue item, normalised; every field is derived from untrusted data.

    `url` is normalised (`monitor.urls.normalise_url`); `method` is the published HTTP method
    (None for MCP tools or when none is published). Price, network (CAIP-2) and asset come
    from the first valid offer. `kind` "mcp" items are indexed but not probed over HTTP.
    `item` is a plain-JSON copy of the raw item (≤ MAX_ITEM_BYTES, larger items are rejected).
    """

    url: str
    method: str | None
    title: str | None
    description: str | None
    provider: str | None
    category: str | None
    input_schema: Mapping[str, JsonValue] | None
    output_schema: Mapping[str, JsonValue] | None
    price: str | None
    network: str | None
    asset: str | None
    x402_version: int
    kind: str
    last_updated: datetime | None
    item: Mapping[str, JsonValue]
    tool_name: str | None = None
    api: ApiDescription | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """Return the endpoint identity: (url, method), or (url, "mcp:<tool>") for MCP tools."""
        if self.kind == "mcp" and self.tool_name:
            return self.url, f"mcp:{self.tool_name}"
        return self.url, self.method


class _RejectedError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail[:200])


def normalise_item(item: object, *, allow_private: bool) -> CatalogueEntry | Rejection:
    """Return the normalised entry of one catalogue item, or why it is rejected; never raises.

    `allow_private` is `probe.allow_private_addresses`: when True, IP-literal and local-name
    hosts are accepted (tests, the offline demo).
    """
    try:
        return _normalise(item, allow_private)
    except _RejectedError as rejected:
        return rejected.rejection
    # A monitor bug must not stop a crawl; the tests feed junk to make sure this never fires.
    except Exception as exc:
        return Rejection("malformed", f"unreadable item ({type(exc).__name__})")


def _normalise(item: object, allow_private: bool) -> CatalogueEntry:
    if not isinstance(item, Mapping):
        raise _RejectedError("not-object", f"item is {type(item).__name__}, not an object")
    try:
        dumped = json.dumps(item, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or ±infinity (a page's 1e400); or a cycle, which JSON cannot make
        raise _RejectedError("malformed", "item holds a number out of range") from None
    except (TypeError, RecursionError):
        raise _RejectedError("malformed", "item is not plain JSON") from None
    size = len(dumped.encode("utf-8", "surrogatepass"))
    if size > MAX_ITEM_BYTES:
        raise _RejectedError("too-long", f"item is {size} bytes (limit {MAX_ITEM_BYTES})")
    version = item.get("x402Version")
    if isinstance(version, bool) or version not in (1, 2):
        raise _RejectedError("malformed", f"x402Version is {str(version)[:20]!r}, not 1 or 2")
    accepts = item.get("accepts")
    if not isinstance(accepts, list):
        raise _RejectedError("malformed", f"accepts is {type(accepts).__name__}, not a list")
    kind = item.get("type", "http")
    if kind not in ("http", "mcp"):
        raise _RejectedError("malformed", f"type is {str(kind)[:20]!r}, not http or mcp")
    url = _resource_url(item.get("resource"), allow_private)
    descriptions = _descriptions(item)
    challenge, api = challenge_and_description(item)
    offer = challenge.first_valid_offer
    kind = "mcp" if kind == "mcp" or (api is not None and api.kind == "mcp") else "http"
    tool = api.tool_name if api is not None else None
    if tool is not None and len(tool) > MAX_TOOL_NAME_CHARS:
        raise _RejectedError("too-long", f"MCP tool name is {len(tool)} characters")
    text = next(iter(descriptions), None)
    title = text or tool
    provider = provider_of(item, url)
    return CatalogueEntry(
        url=url,
        method=api.method if api is not None and kind == "http" else None,
        title=trim(title, TITLE_CHARS) if title else None,
        description=trim(text, DESCRIPTION_CHARS, keep_lines=True) if text else None,
        provider=bound(provider, PROVIDER_CHARS) if provider else None,
        category=category_of(item, text, url),
        input_schema=challenge.input_schema,
        output_schema=challenge.output_schema,
        price=offer.price if offer else None,
        network=offer.caip2 if offer else None,
        asset=offer.asset if offer else None,
        x402_version=version,
        kind=kind,
        last_updated=parse_last_updated(item.get("lastUpdated")),
        item=json.loads(dumped),  # a fresh tree: nothing shared with the page being crawled
        tool_name=tool,
        api=api,
    )


def _resource_url(resource: JsonValue, allow_private: bool) -> str:
    """Return the normalised resource URL, or raise _RejectedError (resource string or {url})."""
    if isinstance(resource, Mapping):
        resource = resource.get("url")
    if resource is None or resource == "":
        raise _RejectedError("no-resource", "item has no resource URL")
    if not isinstance(resource, str):
        raise _RejectedError("malformed", f"resource is {type(resource).__name__}, not a string")
    if len(resource) > MAX_URL_CHARS:
        raise _RejectedError("too-long", f"resource URL is {len(resource)} characters")
    if REPLACEMENT in resource:  # was a control character or a lone surrogate: not a URL
        detail = "resource URL holds control characters or invalid Unicode"
        raise _RejectedError("not-http-url", detail)
    if not is_http_url(resource):
        raise _RejectedError("not-http-url", f"resource {resource[:80]!r} is not an http(s) URL")
    url = normalise_url(resource)
    if not allow_private:
        reason = local_target_reason(host_of(url))
        if reason is not None:
            raise _RejectedError("private-target", reason)
    return url


def _descriptions(item: Mapping[str, JsonValue]) -> list[str]:
    """Return the item's non-empty descriptions, best first; reject any over 100 KB."""
    candidates: list[JsonValue] = [item.get("description")]
    resource = item.get("resource")
    if isinstance(resource, Mapping):
        candidates.append(resource.get("description"))
    accepts = item.get("accepts")
    for entry in accepts[:MAX_OFFERS] if isinstance(accepts, list) else []:
        if isinstance(entry, Mapping):
            candidates.append(entry.get("description"))
    found = []
    for value in candidates:
        if not isinstance(value, str):
            continue
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_DESCRIPTION_BYTES:
            raise _RejectedError("too-long", f"description is {size} bytes")
        if value.strip():
            found.append(value)
    return found
