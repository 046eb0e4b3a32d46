"""Validate a decoded x402 challenge with small rule functions (reference §8).

Rules live in `ENVELOPE_RULES` (the challenge object) and `OFFER_RULES` (one `accepts` entry);
add a rule by appending a function that yields Findings of a code registered in `codes.CODES`.
Chain-specific rules (addresses, assets, transfer methods) live in `chain_rules`.
Pure: stdlib + base58.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import urlsplit

from monitor.models import Finding, JsonValue
from monitor.untrusted import clean_line
from monitor.x402.chain_rules import (
    check_addresses,
    check_asset,
    check_duplicates,
    check_evm_exact,
    check_extra,
    check_payment_flow,
    check_svm_exact,
)
from monitor.x402.codes import CODES, MAX_SHOWN_CHARS, as_int, finding, shown, type_name
from monitor.x402.context import MAX_TIMEOUT_SECONDS, OfferContext, required_string
from monitor.x402.networks import (
    AMBIGUOUS_V1_NETWORKS,
    SOLANA_NETWORKS,
    V1_NETWORKS,
    is_ambiguous,
    is_caip2,
)
from monitor.x402.price import UINT256_MAX, amount_fits_uint256

__all__ = ["CODES", "ENVELOPE_RULES", "OFFER_RULES", "OfferContext", "required_string"]

# Envelope rules -------------------------------------------------------------------------------

EnvelopeRule = Callable[[Mapping[str, JsonValue], int], Iterator[Finding]]
"""A check of the whole challenge object, given its x402Version (or the inferred vocabulary)."""


def check_error(doc: Mapping[str, JsonValue], version: int) -> Iterator[Finding]:
    """Require v1's `error` string (warning when missing); any `error` present must be a string."""
    if "error" not in doc:
        if version == 1:
            yield finding("error-missing", "error", "error message missing")
    elif not isinstance(doc["error"], str):
        yield finding(
            "field-type", "error", f"error is {type_name(doc['error'])}", "make `error` a string"
        )


def check_resource(doc: Mapping[str, JsonValue], version: int) -> Iterator[Finding]:
    """Require v2's top-level `resource` object with a non-empty `url` string."""
    if version != 2:
        return
    if "resource" not in doc or doc["resource"] is None:
        yield finding("resource-missing", "resource", "resource missing")
        return
    resource = doc["resource"]
    if not isinstance(resource, Mapping):
        yield finding(
            "resource-invalid",
            "resource",
            f"resource is {type_name(resource)}",
            "make resource an object {url, description, mimeType}",
        )
        return
    yield from required_string(resource, "url", "resource.url", "set the resource's absolute URL")


def check_accepts(doc: Mapping[str, JsonValue], version: int) -> Iterator[Finding]:
    """Require `accepts` to be a non-empty list."""
    if "accepts" not in doc:
        yield finding("field-missing", "accepts", "accepts missing", "list the payment options")
    elif not isinstance(doc["accepts"], list):
        yield finding(
            "field-type",
            "accepts",
            f"accepts is {type_name(doc['accepts'])}",
            "make accepts an array of payment options",
        )
    elif not doc["accepts"]:
        yield finding("accepts-empty", "accepts", "accepts is empty")


def check_extensions(doc: Mapping[str, JsonValue], version: int) -> Iterator[Finding]:
    """Require `extensions`, when present, to be an object."""
    if "extensions" in doc and not isinstance(doc["extensions"], Mapping):
        yield finding(
            "field-type",
            "extensions",
            f"extensions is {type_name(doc['extensions'])}",
            "make extensions an object or omit it",
        )


_TOP_LEVEL_KEYS = {
    1: frozenset({"x402Version", "error", "accepts"}),
    2: frozenset({"x402Version", "error", "resource", "accepts", "extensions"}),
}
_V2_ONLY_TOP_LEVEL = frozenset({"resource", "extensions"})
_MAX_KEY_FINDINGS = 10


def check_top_level_keys(doc: Mapping[str, JsonValue], version: int) -> Iterator[Finding]:
    """Report keys the version does not define: v2 ones in v1 as hybrid, others as info.

    Unknown keys are kept and never fail the challenge (rule 8); at most ten are reported.
    """
    known = _TOP_LEVEL_KEYS.get(version, _TOP_LEVEL_KEYS[2])
    extra_keys = [key for key in doc if key not in known][:_MAX_KEY_FINDINGS]
    for key in extra_keys:
        if version == 1 and key in _V2_ONLY_TOP_LEVEL:
            yield finding(
                "hybrid-fields",
                key,
                f"{key} is a v2 field in a v1 challenge",
                "v1 puts resource, description and mimeType in each accepts entry",
            )
        else:
            # The key is the endpoint's text: the path holds it as one safe, short line.
            path = clean_line(key, MAX_SHOWN_CHARS)
            yield finding("unknown-key", path, f"{shown(key)} is not a v{version} challenge field")


ENVELOPE_RULES: list[EnvelopeRule] = [
    check_error,
    check_resource,
    check_accepts,
    check_extensions,
    check_top_level_keys,
    check_duplicates,
]


# Offer rules ----------------------------------------------------------------------------------


OfferRule = Callable[[OfferContext], Iterator[Finding]]
"""A check of one `accepts` entry; every finding's path starts with `accepts[i]`."""

_FIELD_FIXES = {
    "scheme": 'set the payment scheme, e.g. "exact"',
    "network": 'set the network, e.g. "base" (v1) or "eip155:8453" (v2)',
    "asset": "set the token contract address",
    "payTo": "set the wallet address that receives the payment",
    "resource": "set the absolute URL of the paid resource",
}
_DIGITS = re.compile(r"[0-9]+")
_LONG_TIMEOUT_S = 3600
_MAX_EXACT_FLOAT = 2**53
"""Floats up to this are whole numbers exactly; above, `10000.0` may not be what was meant."""


def check_required_strings(ctx: OfferContext) -> Iterator[Finding]:
    """Require non-empty `scheme`, `network`, `asset`, `payTo` (and v1 `resource`) strings."""
    keys = ["scheme", "network", "asset", "payTo"] + (["resource"] if ctx.version == 1 else [])
    for key in keys:
        yield from required_string(ctx.entry, key, ctx.path(key), _FIELD_FIXES[key])


def check_amount(ctx: OfferContext) -> Iterator[Finding]:
    """Require the version's amount field as a string of ASCII digits, > 0, at most 2^256-1."""
    key = ctx.amount_key
    path = ctx.path(key)
    value = ctx.entry.get(key)
    if value is None:
        yield finding(
            "field-missing", path, f"{path} missing", 'set the price in atomic units, e.g. "10000"'
        )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield finding(
            "amount-not-string",
            path,
            f"{path} must be a string, got {shown(value)}",
            _quoted(value),
        )
    elif isinstance(value, str) and value != value.strip() and _DIGITS.fullmatch(value.strip()):
        stripped = value.strip()
        fix = f'send "{stripped}" without spaces' if amount_fits_uint256(stripped) else None
        problem = f"{path} {shown(value, 40)} has leading or trailing spaces"
        yield finding("amount-invalid", path, problem, fix)
    elif not isinstance(value, str) or _DIGITS.fullmatch(value) is None:
        yield finding("amount-invalid", path, f"{path} is {shown(value, 40)}, not digits")
    elif not value.strip("0"):  # no int(): Python refuses to parse over 4300 digits
        yield finding("amount-zero", path, f"{path} is 0")
    elif not amount_fits_uint256(value):
        # Said by length: writing a 100,000-digit number out would be the bug it reports.
        size = f"{len(value)} digits" + (" with leading zeros" if value[0] == "0" else "")
        problem = f"{path} has {size}, beyond uint256 (at most 2^256-1, 78 digits)"
        yield finding("amount-too-large", path, problem)


def _quoted(value: int | float) -> str | None:
    """Return the fix "send it quoted" when the number is a usable amount, else None."""
    if isinstance(value, float):
        if not value.is_integer() or not 0 < value <= _MAX_EXACT_FLOAT:
            return None
        value = int(value)
    if not 0 < value <= UINT256_MAX:
        return None
    return f'send "{value}" in quotes if it is in atomic units'


def check_timeout(ctx: OfferContext) -> Iterator[Finding]:
    """Require `maxTimeoutSeconds` as a whole number in 1..2^53-1 (60.0 accepted); warn > 1 h.

    2^53-1 is the largest whole number JavaScript clients hold exactly; 1e308 (a JSON number
    Python reads as a float) is refused rather than turned into a 309-digit int for display.
    """
    path = ctx.path("maxTimeoutSeconds")
    value = ctx.entry.get("maxTimeoutSeconds")
    if value is None:
        yield finding("field-missing", path, f"{path} missing", CODES["timeout-invalid"].fix)
    elif (seconds := as_int(value)) is None or seconds <= 0:
        yield finding("timeout-invalid", path, f"{path} is {shown(value, 40)}")
    elif seconds > MAX_TIMEOUT_SECONDS:
        problem = f"{path} is {shown(value, 40)}, above 2^53-1 (clients cannot hold it exactly)"
        yield finding("timeout-invalid", path, problem)
    elif seconds > _LONG_TIMEOUT_S:
        yield finding("timeout-long", path, f"{path} is {seconds} s")


def check_network(ctx: OfferContext) -> Iterator[Finding]:
    """Require a known v1 name (else warn) or, for v2, a canonical CAIP-2 id (else error)."""
    network = ctx.entry.get("network")
    if not isinstance(network, str) or not network.strip():
        return  # reported by check_required_strings
    path = ctx.path("network")
    if ctx.version == 1:
        if network not in V1_NETWORKS and is_caip2(network):
            names = [name for name, chain in V1_NETWORKS.items() if chain == network]
            v1_fix = f"use the v1 name {names[0]!r}" if names else "use a v1 network name"
            message = f"{path} {shown(network)} is a v2 CAIP-2 id in a v1 challenge"
            yield finding("hybrid-fields", path, message, v1_fix)
        elif network not in V1_NETWORKS:
            yield finding(
                "network-unknown", path, f"{path} {shown(network)} is not a known network"
            )
        elif is_ambiguous(network):
            chains = " or ".join(AMBIGUOUS_V1_NETWORKS[network])
            yield finding("network-ambiguous", path, f"{path} {network!r} means {chains}")
        return
    if not is_caip2(network):
        suggestion = V1_NETWORKS.get(network)
        fix = f"use {suggestion!r}" if suggestion else None
        what = "a v1 network name, not CAIP-2" if suggestion else "not CAIP-2"
        yield finding("network-not-caip2", path, f"{path} {shown(network)} is {what}", fix)
    elif network.startswith("solana:") and network not in SOLANA_NETWORKS:
        problem = f"{path} {shown(network)} is not a Solana id"
        yield finding("network-noncanonical", path, problem)


def check_v1_resource(ctx: OfferContext) -> Iterator[Finding]:
    """Require v1's per-entry `resource` to be an absolute http(s) URL; warn on http (rule 9)."""
    value = ctx.entry.get("resource")
    if ctx.version != 1 or not isinstance(value, str) or not value.strip():
        return  # absence and type are reported by check_required_strings
    try:
        parts = urlsplit(value.strip())
        absolute = parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:
        absolute = False
    path = ctx.path("resource")
    if not absolute:
        yield finding("resource-not-url", path, f"{path} {shown(value)} is not an absolute URL")
    elif parts.scheme == "http":
        yield finding("resource-not-https", path, f"{path} {shown(value)} is not https")


def check_description(ctx: OfferContext) -> Iterator[Finding]:
    """Require v1's `description` string (warning when empty)."""
    if ctx.version != 1:
        return
    path = ctx.path("description")
    value = ctx.entry.get("description")
    if value is None:
        yield finding("field-missing", path, f"{path} missing", "describe what the payment buys")
    elif not isinstance(value, str):
        yield finding("field-type", path, f"{path} is {type_name(value)}", "make it a string")
    elif not value.strip():
        yield finding("description-empty", path, f"{path} empty")


def check_mime_type(ctx: OfferContext) -> Iterator[Finding]:
    """Require `mimeType`, when present and not null, to be a string."""
    value = ctx.entry.get("mimeType")
    if value is not None and not isinstance(value, str):
        path = ctx.path("mimeType")
        yield finding(
            "field-type",
            path,
            f"{path} is {type_name(value)}",
            'make it a string, e.g. "application/json"',
        )


_V1_ENTRY_FIELDS = {
    "maxAmountRequired": "use 'amount' only",
    "resource": "move it to the top-level resource object",
    "description": "move it to the top-level resource object",
    "mimeType": "move it to the top-level resource object",
    "outputSchema": "publish the request description as extensions.bazaar",
}
_V2_ENTRY_FIELDS = {"amount": "use 'maxAmountRequired' only"}


def check_hybrid(ctx: OfferContext) -> Iterator[Finding]:
    """Warn for each field of the other version inside the entry (a v1/v2 hybrid).

    v2 entries with v1's `maxAmountRequired`, `resource`, `description`, `mimeType` or
    `outputSchema`; v1 entries with v2's `amount`. (Network ids: see `check_network`.)
    """
    fields = _V1_ENTRY_FIELDS if ctx.version == 2 else _V2_ENTRY_FIELDS
    for key, fix in fields.items():
        if key in ctx.entry:
            path = ctx.path(key)
            problem = f"{path} is a v{3 - ctx.version} field in a v{ctx.version} challenge"
            yield finding("hybrid-fields", path, problem, fix)


OFFER_RULES: list[OfferRule] = [
    check_required_strings,
    check_amount,
    check_timeout,
    check_extra,
    check_network,
    check_v1_resource,
    check_description,
    check_mime_type,
    check_hybrid,
    check_addresses,
    check_evm_exact,
    check_svm_exact,
    check_asset,
    check_payment_flow,
]
