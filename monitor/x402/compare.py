"""Compare a v2 header challenge with the v1 challenge some servers also send in the body.

Reference §8 rule 5: both are validated, and every disagreement is a warning — the header is
the source of truth, but a v1 client reading the body would pay something else. Networks are
compared after CAIP-2 mapping, EVM addresses in any letter case. Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from monitor.models import Finding, JsonValue
from monitor.x402.codes import finding, shown
from monitor.x402.context import MAX_OFFERS, offer_caip2
from monitor.x402.formats import namespace_of

__all__ = ["compare_header_and_body"]

MAX_MISMATCHES = 10
"""Reported disagreements per challenge: enough to show the pattern, bounded for pages."""

_FIX = "make the v1 body offer what the header offers, or send an empty body"

_Entry = tuple[int, Mapping[str, JsonValue]]


def _entries(doc: Mapping[str, JsonValue]) -> list[_Entry]:
    accepts = doc.get("accepts")
    items = accepts[:MAX_OFFERS] if isinstance(accepts, list) else []
    return [(index, entry) for index, entry in enumerate(items) if isinstance(entry, Mapping)]


def _key(entry: Mapping[str, JsonValue]) -> tuple[str, str]:
    """Return (network as CAIP-2 when mappable, scheme) — the identity of an offer here."""
    network = entry.get("network")
    caip2 = offer_caip2(entry) or (network if isinstance(network, str) else "?")
    scheme = entry.get("scheme")
    return caip2, scheme if isinstance(scheme, str) else "?"


def _same(namespace: str | None, left: JsonValue, right: JsonValue) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        if left.isdigit() and right.isdigit() and left.isascii() and right.isascii():
            # "010000" is "10000"; no int(): Python refuses to parse over 4300 digits.
            return left.lstrip("0") == right.lstrip("0")
        if namespace == "eip155":
            return left.strip().lower() == right.strip().lower()
        return left.strip() == right.strip()
    return bool(left == right)


def _compared(value: JsonValue) -> str:
    """Return a compared value for a message; None (absent) reads as None, as before."""
    return "None" if value is None else shown(value, 48)


def _resource(header: Mapping[str, JsonValue], body: list[_Entry]) -> Iterator[Finding]:
    resource = header.get("resource")
    url = resource.get("url") if isinstance(resource, Mapping) else None
    if not isinstance(url, str):
        return
    for index, entry in body:
        value = entry.get("resource")
        if isinstance(value, str) and value.strip() != url.strip():
            path = f"body.accepts[{index}].resource"
            theirs = f"the header's resource.url {_compared(url)}"
            problem = f"{path} {_compared(value)} differs from {theirs}"
            yield finding("header-body-mismatch", path, problem, _FIX)
            return  # one is enough: v1 entries usually repeat the same URL


def _offers(header: list[_Entry], body: list[_Entry]) -> Iterator[Finding]:
    header_by_key: dict[tuple[str, str], _Entry] = {}
    body_by_key: dict[tuple[str, str], _Entry] = {}
    for item in header:
        header_by_key.setdefault(_key(item[1]), item)
    for item in body:
        body_by_key.setdefault(_key(item[1]), item)
    for key, (index, entry) in header_by_key.items():
        network, scheme = key
        if key not in body_by_key:
            path = f"accepts[{index}].network"
            problem = f"{path} {shown(network)} ({shown(scheme, 20)}) is offered in the header only"
            yield finding("header-body-mismatch", path, problem, _FIX)
            continue
        body_index, body_entry = body_by_key[key]
        namespace = namespace_of(network)
        pairs = (("amount", "maxAmountRequired"), ("asset", "asset"), ("payTo", "payTo"))
        for header_field, body_field in pairs:
            left, right = entry.get(header_field), body_entry.get(body_field)
            if not _same(namespace, left, right):
                path = f"body.accepts[{body_index}].{body_field}"
                problem = (
                    f"{path} {_compared(right)} differs from the header's "
                    f"accepts[{index}].{header_field} {_compared(left)}"
                )
                yield finding("header-body-mismatch", path, problem, _FIX)
    for key, (index, _) in body_by_key.items():
        if key not in header_by_key:
            path = f"body.accepts[{index}].network"
            problem = f"{path} {shown(key[0])} ({shown(key[1], 20)}) is offered in the body only"
            yield finding("header-body-mismatch", path, problem, _FIX)


def compare_header_and_body(
    header: Mapping[str, JsonValue], body: Mapping[str, JsonValue]
) -> list[Finding]:
    """Return `header-body-mismatch` warnings for a v2 header and a v1 body challenge.

    Compared: the resource URL, which (network, scheme) pairs are offered, and for each pair
    the amount, asset and payTo. At most `MAX_MISMATCHES` findings.
    """
    body_entries = _entries(body)
    found = [*_resource(header, body_entries), *_offers(_entries(header), body_entries)]
    return found[:MAX_MISMATCHES]
