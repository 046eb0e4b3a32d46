"""Register every finding code of the x402 checks: severity, meaning and the owner's fix.

One table (`CODES`) so that pages and the README can be generated from, and checked against, it;
`finding()` refuses unregistered codes. Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from monitor.models import Finding, JsonValue, Severity
from monitor.untrusted import bound, clean_line

_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

MAX_MESSAGE_CHARS = 500
"""Longest finding message kept (real ones are under 200 characters; bazaar ones under 450)."""
MAX_PATH_CHARS = 200
"""Longest finding path kept: paths can hold an endpoint's own keys (`unknown-key`, bazaar)."""
MAX_SHOWN_CHARS = 64
"""Characters of an endpoint's value quoted in a message: enough to recognise it."""
_REPR_BITS = 13_000
"""Ints up to this many bits (~3,900 digits) are written out in messages."""


class Rule(NamedTuple):
    """What a finding code means and how the endpoint's owner fixes it."""

    severity: Severity
    meaning: str
    fix: str


CODES: dict[str, Rule] = {
    # Finding the challenge
    "challenge-missing": Rule(
        _E,
        "402 without a PAYMENT-REQUIRED header or a JSON challenge body",
        "send the v2 PAYMENT-REQUIRED header or a v1 JSON body",
    ),
    "body-html": Rule(
        _E,
        "402 body is HTML and there is no PAYMENT-REQUIRED header",
        "answer API clients with JSON or add the PAYMENT-REQUIRED header",
    ),
    "body-not-json": Rule(
        _E,
        "402 body is not JSON and there is no PAYMENT-REQUIRED header",
        "send the challenge as a JSON object",
    ),
    "body-too-large": Rule(
        _E,
        "402 body is larger than the monitor reads (probe.max_body_bytes) and is not JSON where"
        " it was cut; there is no PAYMENT-REQUIRED header",
        "send the challenge in the PAYMENT-REQUIRED header or keep the 402 body small"
        " (the monitor's operator can raise probe.max_body_bytes)",
    ),
    "body-unreadable": Rule(
        _E,
        "402 body cannot be read as sent (a Content-Encoding the monitor does not decode,"
        " corrupt compressed data, or a decompression bomb); there is no PAYMENT-REQUIRED header",
        "send the 402 body uncompressed (the monitor asks for identity) or the challenge in"
        " the PAYMENT-REQUIRED header",
    ),
    "body-not-object": Rule(
        _E, "402 body is JSON but not an object", "send the challenge as a JSON object"
    ),
    "header-empty": Rule(
        _W,
        "PAYMENT-REQUIRED header is present but empty",
        "put the base64 JSON challenge in it or drop it",
    ),
    "header-large": Rule(
        _W,
        "PAYMENT-REQUIRED header exceeds 8 KB",
        "keep it under 8 KB: many servers and proxies reject larger headers",
    ),
    "header-over-16kb": Rule(
        _E,
        "PAYMENT-REQUIRED header exceeds 16 KB",
        "keep it under 8 KB: Node.js clients refuse headers over 16 KB by default",
    ),
    "header-too-large": Rule(
        _E,
        "PAYMENT-REQUIRED header exceeds the monitor's size limit",
        "shorten the challenge (move descriptions out of the header)",
    ),
    "header-not-base64": Rule(
        _E, "PAYMENT-REQUIRED header is not base64", "base64-encode the JSON challenge"
    ),
    "header-not-json": Rule(
        _E,
        "PAYMENT-REQUIRED header does not decode to UTF-8 JSON",
        "base64-encode a UTF-8 JSON object",
    ),
    "header-not-object": Rule(
        _E, "PAYMENT-REQUIRED header decodes to JSON that is not an object", "encode a JSON object"
    ),
    "json-too-deep": Rule(
        _E, "challenge JSON nests deeper than the monitor accepts", "flatten the challenge"
    ),
    "json-too-large": Rule(
        _E,
        "challenge JSON holds more values than the monitor reads (20,000)",
        "keep the challenge small: a few offers and a short schema",
    ),
    "header-body-mismatch": Rule(
        _W,
        "the v1 body challenge disagrees with the PAYMENT-REQUIRED header (the header wins)",
        "make the v1 body offer what the header offers, or send an empty body",
    ),
    "body-challenge-invalid": Rule(
        _W,
        "the v1 body challenge sent beside the header has errors (v1 clients read it)",
        "fix the v1 body challenge or drop it",
    ),
    # Envelope
    "version-invalid": Rule(
        _E,
        "x402Version is missing or not the number 1 or 2",
        "set x402Version to the JSON number 1 or 2",
    ),
    "v2-in-body": Rule(
        _E,
        "x402Version 2 challenge found only in the body: standard v2 clients read the header "
        "and fall back to the body only for v1",
        "send v2 challenges in the PAYMENT-REQUIRED header",
    ),
    "error-missing": Rule(
        _W, "v1 challenge without the `error` string the v1 spec requires", "add an `error` message"
    ),
    "resource-missing": Rule(
        _E, "v2 challenge without a `resource` object", "add resource: {url, description, mimeType}"
    ),
    "resource-invalid": Rule(
        _E, "v2 `resource` is not an object", "make resource an object with a non-empty `url`"
    ),
    "unknown-key": Rule(
        _I,
        "top-level key that the declared x402Version does not define (kept, not an error)",
        "drop it unless a client of yours needs it",
    ),
    "accepts-empty": Rule(
        _E, "`accepts` lists no payment option", "list at least one payment option"
    ),
    "accepts-too-many": Rule(
        _W,
        "`accepts` lists more offers than the monitor checks",
        "list fewer payment options (clients try them in order)",
    ),
    "offers-partly-invalid": Rule(
        _E,
        "some `accepts` entries are invalid (others are valid)",
        "fix or remove the invalid entries",
    ),
    # One accepts[] entry (or an envelope field)
    "offer-not-object": Rule(
        _E, "an `accepts` entry is not an object", "make every entry a payment-requirements object"
    ),
    "field-missing": Rule(_E, "a required field is missing", "add the field"),
    "field-type": Rule(_E, "a field has the wrong JSON type", "use the type the spec requires"),
    "field-empty": Rule(_E, "a required string is empty", "fill in the value"),
    "resource-not-https": Rule(
        _W, "v1 `resource` URL uses http://", "serve the paid resource over https://"
    ),
    "description-empty": Rule(_W, "v1 `description` is empty", "describe what the payment buys"),
    "amount-not-string": Rule(
        _E, "the amount is a JSON number, not a string", 'quote it: "10000" (atomic units)'
    ),
    "amount-invalid": Rule(
        _E, "the amount is not a string of digits", 'use atomic units as digits only, e.g. "10000"'
    ),
    "amount-zero": Rule(_E, "the amount is zero", "charge a positive amount"),
    "amount-too-large": Rule(
        _E,
        "the amount is longer than 78 digits or above 2^256-1, the largest amount EVM tokens"
        " and the SDKs represent",
        "charge an amount of at most 78 digits (a uint256), in atomic units",
    ),
    "timeout-invalid": Rule(
        _E,
        "maxTimeoutSeconds is not a positive whole number of at most 2^53-1",
        "set a positive integer number of seconds, e.g. 60",
    ),
    "timeout-long": Rule(
        _W, "maxTimeoutSeconds is above one hour", "use a shorter payment validity window"
    ),
    "extra-null": Rule(_W, "`extra` is null", "omit `extra` or make it an object"),
    "extra-not-object": Rule(_E, "`extra` is not an object", "make `extra` an object"),
    "network-unknown": Rule(
        _W,
        "v1 network name not in the list of known x402 networks",
        "use a known v1 network name, e.g. base",
    ),
    "network-ambiguous": Rule(
        _I,
        "v1 network name maps to different chain ids in different SDKs",
        "prefer v2 with an explicit CAIP-2 id",
    ),
    "network-not-caip2": Rule(
        _E, "v2 network is not a CAIP-2 id", "use a CAIP-2 id, e.g. eip155:8453"
    ),
    "network-noncanonical": Rule(
        _E,
        "v2 Solana network is not one of the genesis-hash ids",
        "use solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp for mainnet",
    ),
    "resource-not-url": Rule(
        _E,
        "v1 `resource` is not an absolute http(s) URL",
        "set the absolute URL of the paid resource",
    ),
    "address-invalid": Rule(
        _E,
        "payTo, asset or feePayer is not an address of the offer's network",
        "use 0x + 40 hex digits on EVM, a base58 32-byte key on Solana",
    ),
    "feepayer-missing": Rule(
        _E,
        "Solana `exact` offer without `extra.feePayer`",
        "set extra.feePayer to your facilitator's fee payer (listed by its /supported)",
    ),
    "transfer-method-invalid": Rule(
        _E,
        "EVM `exact` extra.assetTransferMethod is not eip3009, permit2 or erc7710",
        "omit it (eip3009) or set permit2 or erc7710",
    ),
    "eip712-domain-missing": Rule(
        _E,
        "EVM `exact` EIP-3009 offer without extra.name and extra.version strings",
        "set extra.name and extra.version to the token's EIP-712 name() and version()",
    ),
    "asset-domain-mismatch": Rule(
        _E,
        "known token with a wrong EIP-712 extra.name/extra.version: signatures will not verify",
        "use the token's on-chain name() and version()",
    ),
    "asset-domain-unconfirmed": Rule(
        _W,
        "EIP-712 domain differs from a low-confidence table value or one the method does not sign",
        "check the token's on-chain name() and version()",
    ),
    "asset-method-mismatch": Rule(
        _E,
        "known token without EIP-3009 offered with the default eip3009 transfer method",
        'set extra.assetTransferMethod to "permit2"',
    ),
    "asset-unverified": Rule(
        _W,
        "asset is not a token the monitor knows on this network (legal, but unchecked)",
        "nothing to do if it is the token you mean; its EIP-712 domain cannot be checked",
    ),
    "payment-flow-unknown": Rule(
        _W,
        "v2 extra.paymentFlow is not authorization, upfront or escrow",
        "use authorization (default), upfront or escrow, or omit it",
    ),
    "offer-duplicate": Rule(
        _W,
        "two `accepts` entries share scheme, network, asset and payTo",
        "remove the repeated entry (clients take the first)",
    ),
    "hybrid-fields": Rule(
        _W,
        "challenge mixes v1 and v2 field names or network ids",
        "use only the field names of the declared x402Version",
    ),
    # Bounds and safety net
    "findings-truncated": Rule(
        _I,
        "the challenge has more findings than the monitor keeps for one check",
        "fix the errors shown first; the rest appear once fewer remain",
    ),
    "challenge-unreadable": Rule(
        _E,
        "the monitor failed to read this challenge (a monitor bug)",
        "report it to the monitor's maintainers",
    ),
}


def registry_markdown(registry: Mapping[str, Rule] | None = None) -> str:
    """Return a registry (default CODES) as a Markdown table: code, severity, meaning, fix.

    Pipes in the texts are escaped so every row keeps four cells.
    """
    rows = ["| code | severity | meaning | fix |", "|---|---|---|---|"]
    for code, rule in (CODES if registry is None else registry).items():
        cells = [f"`{code}`", str(rule.severity), rule.meaning, rule.fix]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def finding(code: str, path: str, problem: str, fix: str | None = None) -> Finding:
    """Build a Finding of a registered code; the message is `problem; fix`.

    `fix` defaults to the registry's fix, so every message tells the owner what to change.
    Message and path are one safe line each, at most MAX_MESSAGE_CHARS / MAX_PATH_CHARS long
    (a backstop: rules already quote endpoint values through `shown`).
    Raises KeyError for an unregistered code (a programming error caught by the tests).
    """
    rule = CODES[code]
    return bounded_finding(code, rule.severity, f"{problem}; {fix or rule.fix}", path)


def bounded_finding(code: str, severity: Severity, message: str, path: str) -> Finding:
    """Return a Finding whose message and path are cleaned to one line and bounded."""
    return Finding(
        code, severity, clean_line(message, MAX_MESSAGE_CHARS), clean_line(path, MAX_PATH_CHARS)
    )


def shown(value: JsonValue, limit: int = MAX_SHOWN_CHARS) -> str:
    """Return an endpoint's value as a message shows it: one safe line, at most ~`limit` chars.

    Strings are quoted (`'base'`), cleaned and cut to `limit` characters ("…" marks a cut);
    numbers are written out, cut the same way; anything else is named by its JSON type.
    """
    if isinstance(value, str):
        return repr(clean_line(value, limit))
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _REPR_BITS:
        return "a number of over 4000 digits"  # repr() refuses ints over 4300 digits
    if isinstance(value, int | float) and not isinstance(value, bool):
        return bound(repr(value), limit)
    return type_name(value)


def as_int(value: JsonValue) -> int | None:
    """Return a JSON integer as int (integral floats such as 60.0 too), else None (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def type_name(value: JsonValue) -> str:
    """Return the JSON type name of a decoded value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
