"""Decode and validate the payment challenge of an HTTP 402 answer.

`parse_challenge` reads the v2 `PAYMENT-REQUIRED` header first, else the v1 JSON body, runs the
rules of `monitor.x402.rules` and folds v1/v2 field names into `Offer`s, each with its CAIP-2
network, asset verdict and display price. A v1 body sent beside a header is validated and
compared with it (warnings only). Every read is bounded (header size, JSON depth) and nothing
raises on hostile input. Pure: stdlib + base58.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import NoReturn

from monitor.models import Challenge, Finding, JsonValue, Offer, Severity
from monitor.x402.assets import asset_verdict, lookup
from monitor.x402.bazaar import describe
from monitor.x402.codes import as_int, finding, type_name
from monitor.x402.compare import compare_header_and_body
from monitor.x402.context import MAX_OFFERS, offer_caip2
from monitor.x402.price import format_price
from monitor.x402.rules import ENVELOPE_RULES, OFFER_RULES, OfferContext

__all__ = ["MAX_JSON_DEPTH", "MAX_OFFERS", "first_error", "parse_challenge"]

HEADER = "payment-required"
MAX_JSON_DEPTH = 64
"""Deepest array/object nesting accepted; deeper input is refused before `json.loads` recurses."""
LARGE_HEADER_BYTES = 8 * 1024
"""Above this, common servers and proxies (aiohttp, Node behind some proxies) reject the header."""
OVERSIZE_HEADER_BYTES = 16 * 1024
"""Above this, Node.js clients (default `maxHeaderSize`) refuse the whole response: an error."""

_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_OFFER_PATH = re.compile(r"accepts\[([0-9]+)\]")


class JsonTooDeepError(ValueError):
    """The text nests arrays/objects deeper than allowed."""


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


# One decoder for every call: `json.loads(text, parse_constant=...)` builds a new decoder and
# scanner each time, which costs more than decoding a typical challenge's top level.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def loads_bounded(text: str, max_depth: int = MAX_JSON_DEPTH) -> JsonValue:
    """Parse strict JSON text whose nesting is at most `max_depth`.

    Raises JsonTooDeepError when nested deeper (checked before parsing, so `json.loads` never
    hits the recursion limit) and ValueError for anything that is not JSON (NaN included).
    """
    # Cheap bound first: without that many opening brackets the text cannot nest that deep.
    if text.count("[") + text.count("{") > max_depth:
        depth = 0
        for match in _BRACKET.finditer(_STRING_LITERAL.sub('""', text)):
            depth += 1 if match.group() in "[{" else -1
            if depth > max_depth:
                raise JsonTooDeepError(f"nested deeper than {max_depth}")
    if text.startswith("\ufeff"):  # as json.loads does: a second BOM is not JSON
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        return _DECODER.decode(text)
    except RecursionError as exc:  # only if the bound above is set near the recursion limit
        raise JsonTooDeepError(str(exc)) from exc


def b64decode_lenient(value: str) -> bytes:
    """Decode standard or URL-safe base64, ignoring whitespace and missing padding.

    Raises ValueError when the text is not base64 in either alphabet.
    """
    # str.split() drops exactly what the regex `\s` matches (str.isspace), far faster.
    text = "".join(value.split())
    if not text.isascii():
        raise ValueError("non-ASCII characters")
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise ValueError("truncated base64")
    text += "=" * (-len(text) % 4)
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(text, altchars=altchars, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


def _decode_header(value: str, max_header_bytes: int) -> tuple[JsonValue, list[Finding]]:
    """Return the JSON object of a PAYMENT-REQUIRED value (or None) and the findings on the way."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > max_header_bytes:
        problem = f"PAYMENT-REQUIRED header is {size} bytes (limit {max_header_bytes})"
        return None, [finding("header-too-large", "", problem)]
    findings = []
    if size > OVERSIZE_HEADER_BYTES:
        findings.append(finding("header-over-16kb", "", f"PAYMENT-REQUIRED header is {size} bytes"))
    elif size > LARGE_HEADER_BYTES:
        findings.append(finding("header-large", "", f"PAYMENT-REQUIRED header is {size} bytes"))
    try:
        raw = b64decode_lenient(value)
    except ValueError:
        return None, [*findings, finding("header-not-base64", "", "PAYMENT-REQUIRED not base64")]
    try:
        document = loads_bounded(raw.decode("utf-8-sig"))
    except JsonTooDeepError:
        problem = f"PAYMENT-REQUIRED JSON nests deeper than {MAX_JSON_DEPTH} levels"
        return None, [*findings, finding("json-too-deep", "", problem)]
    except ValueError:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
        problem = "PAYMENT-REQUIRED decodes to something that is not JSON"
        return None, [*findings, finding("header-not-json", "", problem)]
    if not isinstance(document, dict):
        problem = f"PAYMENT-REQUIRED decodes to {type_name(document)}, not an object"
        return None, [*findings, finding("header-not-object", "", problem)]
    return document, findings


def _looks_like_html(headers: Mapping[str, str], text: str) -> bool:
    content_type = headers.get("content-type", "").lower()
    return "html" in content_type or text.lstrip()[:1] == "<"


def _decode_body(headers: Mapping[str, str], body: bytes) -> tuple[JsonValue, list[Finding]]:
    """Return the JSON challenge object of a body (or None) and the findings on the way."""
    if not body.strip():
        return None, [finding("challenge-missing", "", "402 answer has no challenge (empty body)")]
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [finding("body-not-json", "", "402 body is not UTF-8 JSON")]
    try:
        document = loads_bounded(text)
    except JsonTooDeepError:
        problem = f"402 body JSON nests deeper than {MAX_JSON_DEPTH} levels"
        return None, [finding("json-too-deep", "", problem)]
    except ValueError:
        # Checked only now: some servers label JSON as text/html, so the label proves nothing.
        if _looks_like_html(headers, text):
            return None, [finding("body-html", "", "402 body is HTML, not a JSON challenge")]
        return None, [finding("body-not-json", "", "402 body is not JSON")]
    if not isinstance(document, dict):
        problem = f"402 body is {type_name(document)}, not a JSON object"
        return None, [finding("body-not-object", "", problem)]
    if "x402Version" not in document and "accepts" not in document:
        problem = "402 body has no x402Version or accepts"
        return None, [finding("challenge-missing", "", problem)]
    return document, []


def _version(document: Mapping[str, JsonValue]) -> tuple[int | None, list[Finding]]:
    """Return x402Version when it is the JSON number 1 or 2, else None and a finding."""
    value = document.get("x402Version")
    if not isinstance(value, bool) and isinstance(value, int) and value in (1, 2):
        return value, []
    if "x402Version" not in document:
        problem = "x402Version missing"
    else:
        shown = repr(value) if isinstance(value, int | float | str) else type_name(value)
        problem = f"x402Version is {shown[:40]}"
    return None, [finding("version-invalid", "x402Version", problem)]


def _vocabulary(document: Mapping[str, JsonValue]) -> int | None:
    """Guess which version's rules fit a challenge whose x402Version is invalid.

    "2" or 2.0 → 2; else the amount field name of the first entry that has one; else None.
    The challenge stays invalid: this only lets the owner see every other problem at once.
    """
    declared = document.get("x402Version")
    if isinstance(declared, str | float) and not isinstance(declared, bool):
        try:
            guess = float(declared)
        except ValueError:
            guess = 0.0
        if guess in (1.0, 2.0):
            return int(guess)
    accepts = document.get("accepts")
    for entry in accepts if isinstance(accepts, list) else []:
        if isinstance(entry, Mapping) and "amount" in entry:
            return 2
        if isinstance(entry, Mapping) and "maxAmountRequired" in entry:
            return 1
    return None


def _offer_index(path: str) -> int | None:
    """Return i for a path inside `accepts[i]`, else None (an envelope path)."""
    match = _OFFER_PATH.match(path)
    return int(match.group(1)) if match else None


def _text(entry: Mapping[str, JsonValue], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _price(amount: str | None, caip2: str | None, asset: str | None) -> str | None:
    """Return the display price of a valid amount (digits, > 0) of a named asset, else None."""
    if amount is None or asset is None or not asset.strip():
        return None
    if not (amount.isascii() and amount.isdigit()) or not amount.strip("0"):
        return None
    return _display_price(amount, caip2, asset)


# Decimal formatting is the dearest step of folding an offer, and a price rarely changes even
# when the challenge does (nonces, timestamps). Pure and small: 1024 prices of ~100 B each.
@lru_cache(maxsize=1024)
def _display_price(amount: str, caip2: str | None, asset: str) -> str:
    return format_price(amount, lookup(caip2, asset), asset)


def _offer(entry: JsonValue, index: int, valid: bool) -> Offer:
    """Fold one accepts entry's v1/v2 field names into an Offer (wrongly typed fields → None).

    Also derives the CAIP-2 network, the asset verdict and the display price.
    """
    if not isinstance(entry, Mapping):
        return Offer(index, None, None, None, None, None, None, None, valid)
    timeout = as_int(entry.get("maxTimeoutSeconds"))
    extra = entry.get("extra")
    amount = _text(entry, "amount")
    amount = amount if amount is not None else _text(entry, "maxAmountRequired")
    caip2 = offer_caip2(entry)
    asset = _text(entry, "asset")
    verdict = asset_verdict(caip2, asset, entry.get("scheme"), extra)
    return Offer(
        index=index,
        scheme=_text(entry, "scheme"),
        network=_text(entry, "network"),
        amount=amount,
        asset=asset,
        pay_to=_text(entry, "payTo"),
        max_timeout_seconds=timeout if timeout is not None and timeout > 0 else None,
        extra=extra if isinstance(extra, Mapping) else None,
        valid=valid,
        caip2=caip2,
        asset_verdict=verdict,
        price=_price(amount, caip2, asset),
    )


def _object_at(root: JsonValue, *keys: str) -> Mapping[str, JsonValue] | None:
    """Return the object at `root[k1][k2]…` when every step is an object, else None."""
    node = root
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, Mapping) else None


def _schemas(
    document: Mapping[str, JsonValue], version: int | None
) -> tuple[Mapping[str, JsonValue] | None, Mapping[str, JsonValue] | None]:
    """Return the published (input, output) schemas: v1 outputSchema, v2 bazaar `info`."""
    if version == 2:
        info = _object_at(document, "extensions", "bazaar", "info")
        return _object_at(info, "input"), _object_at(info, "output")
    accepts = document.get("accepts")
    for entry in accepts if isinstance(accepts, list) else []:
        output_schema = _object_at(entry, "outputSchema")
        if output_schema is not None:
            return _object_at(output_schema, "input"), _object_at(output_schema, "output")
    return None, None


def _validate(document: Mapping[str, JsonValue], source: str, found: list[Finding]) -> Challenge:
    """Run every rule over a decoded challenge object and assemble the Challenge."""
    findings = list(found)
    version, problems = _version(document)
    findings += problems
    if version == 2 and source == "body":
        findings.append(finding("v2-in-body", "", "v2 challenge found only in the 402 body"))
    vocabulary = version if version is not None else _vocabulary(document)
    if vocabulary is not None:
        for rule in ENVELOPE_RULES:
            findings += rule(document, vocabulary)
    accepts = document.get("accepts")
    entries: list[JsonValue] = accepts if isinstance(accepts, list) else []
    if len(entries) > MAX_OFFERS:
        problem = f"accepts lists {len(entries)} offers, only the first {MAX_OFFERS} were checked"
        findings.append(finding("accepts-too-many", "accepts", problem))
        entries = entries[:MAX_OFFERS]
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            path = f"accepts[{index}]"
            findings.append(finding("offer-not-object", path, f"{path} is {type_name(entry)}"))
        elif vocabulary is not None:
            context = OfferContext(entry=entry, index=index, version=vocabulary)
            for offer_rule in OFFER_RULES:
                findings += offer_rule(context)
    # DESIGN.md: an offer is valid without an error on its own path; any other error is the
    # envelope's and invalidates the whole challenge.
    error_indexes = {_offer_index(f.path) for f in findings if f.severity is Severity.ERROR}
    envelope_ok = None not in error_indexes
    offers = [
        _offer(entry, index, vocabulary is not None and index not in error_indexes)
        for index, entry in enumerate(entries)
    ]
    valid_count = sum(offer.valid for offer in offers)
    if envelope_ok and 0 < valid_count < len(offers):
        bad = [f"accepts[{offer.index}]" for offer in offers if not offer.valid]
        problem = f"{len(bad)} of {len(offers)} offers invalid ({', '.join(bad[:5])})"
        findings.append(finding("offers-partly-invalid", "accepts", problem))
    input_schema, output_schema = _schemas(document, version)
    # Discovery metadata never decides payability: its findings are warnings and notes.
    findings += describe(document)[1]
    return Challenge(
        version=version,
        source=source,
        document=document,
        offers=tuple(offers),
        findings=tuple(findings),
        valid=envelope_ok and valid_count > 0,
        input_schema=input_schema,
        output_schema=output_schema,
    )


def _body_beside_header(document: Mapping[str, JsonValue], body: bytes) -> list[Finding]:
    """Validate a v1 body challenge sent with a header one and compare the two (rule 5).

    Returns warnings only: the header is the source of truth. Bodies that are not a v1
    challenge (the usual `{}`, HTML, a v2 copy) are ignored.
    """
    if not body.strip():  # the commonest v2 body; skips raising and catching a JSON error
        return []
    try:
        body_document = loads_bounded(body.decode("utf-8-sig"))
    except ValueError:
        return []
    version = body_document.get("x402Version") if isinstance(body_document, dict) else None
    if not isinstance(body_document, dict) or type(version) is not int or version != 1:
        return []  # type() also refuses True, which == 1
    findings = []
    body_challenge = _validate(body_document, "body", [])
    if not body_challenge.valid:
        error = first_error(body_challenge)
        detail = error.message.partition("; ")[0] if error else "no valid offer"
        problem = f"body v1 challenge is invalid: {detail[:120]}"
        findings.append(finding("body-challenge-invalid", "body", problem))
    return findings + compare_header_and_body(document, body_document)


def _parse(headers: Mapping[str, str], body: bytes, max_header_bytes: int) -> Challenge:
    findings: list[Finding] = []
    header = headers.get(HEADER)
    if header is not None and header.strip():
        document, findings = _decode_header(header, max_header_bytes)
        if document is None:
            return Challenge(None, "header", None, (), tuple(findings), valid=False)
        return _validate(document, "header", findings + _body_beside_header(document, body))
    if header is not None:
        findings.append(finding("header-empty", "", "PAYMENT-REQUIRED header is empty"))
    document, problems = _decode_body(headers, body)
    if document is None:
        return Challenge(None, None, None, (), (*findings, *problems), valid=False)
    return _validate(document, "body", findings + problems)


def parse_challenge(
    headers: Mapping[str, str], body: bytes, *, max_header_bytes: int = 65536
) -> Challenge:
    """Decode and validate the challenge of a 402 answer; never raises.

    `headers` have lower-case names. A non-empty `payment-required` header wins over the body
    (an undecodable header makes the challenge invalid, source "header"); otherwise a JSON
    object body with `x402Version` or `accepts` is the challenge (source "body"). Without
    either, source is None. `valid` is True when the challenge parsed without envelope errors
    and at least one offer has no error finding.
    """
    try:
        return _parse(headers, body, max_header_bytes)
    # A monitor bug must not stop a probe round; the junk-input tests assert this never fires.
    except Exception as exc:
        problem = f"internal error {type(exc).__name__} while reading the challenge"
        unreadable = finding("challenge-unreadable", "", problem)
        return Challenge(None, None, None, (), (unreadable,), valid=False)


def first_error(challenge: Challenge) -> Finding | None:
    """Return the first error-severity finding of a challenge, or None when it has none."""
    return next((f for f in challenge.findings if f.severity is Severity.ERROR), None)
