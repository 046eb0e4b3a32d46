"""Decode and validate the payment challenge of an HTTP 402 answer.

`parse_challenge` reads the v2 `PAYMENT-REQUIRED` header first, else the v1 JSON body (both
through `monitor.x402.transport`, which bounds and cleans what it reads), runs the rules of
`monitor.x402.rules` and folds each entry into an `Offer` (`monitor.x402.offers`). A v1 body
sent beside a header is validated and compared with it (warnings only). Findings are bounded
in number (MAX_FINDINGS) and each in length, and nothing raises on hostile input.
Pure: stdlib + base58.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from monitor.models import Challenge, Finding, JsonValue, Severity
from monitor.x402.bazaar import describe
from monitor.x402.codes import finding, shown, type_name
from monitor.x402.compare import compare_header_and_body
from monitor.x402.context import MAX_OFFERS
from monitor.x402.offers import fold_offer
from monitor.x402.rules import ENVELOPE_RULES, OFFER_RULES, OfferContext
from monitor.x402.transport import (
    HEADER,
    MAX_JSON_DEPTH,
    JsonTooDeepError,
    b64decode_lenient,
    decode_body,
    decode_header,
    loads_bounded,
    loads_bytes,
)

_log = logging.getLogger(__name__)

__all__ = [
    "MAX_FINDINGS",
    "MAX_JSON_DEPTH",
    "MAX_OFFERS",
    "JsonTooDeepError",
    "b64decode_lenient",
    "first_error",
    "loads_bounded",
    "parse_challenge",
]

MAX_FINDINGS = 100
"""Findings kept per challenge (real ones have a handful): the most telling first (see
`_rank`), the rest summed up in one `findings-truncated` note, so a check's record stays
bounded however many offers or keys a challenge lists."""

_OFFER_PATH = re.compile(r"accepts\[([0-9]+)\]")


def _version(document: Mapping[str, JsonValue]) -> tuple[int | None, list[Finding]]:
    """Return x402Version when it is the JSON number 1 or 2, else None and a finding."""
    value = document.get("x402Version")
    if not isinstance(value, bool) and isinstance(value, int) and value in (1, 2):
        return value, []
    if "x402Version" not in document:
        problem = "x402Version missing"
    else:
        problem = f"x402Version is {shown(value, 40)}"
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
        fold_offer(entry, index, vocabulary is not None and index not in error_indexes)
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
        findings=_bounded(findings),
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
        body_document = loads_bytes(body)
    except ValueError:  # a cut or unreadable body beside a header is not compared either
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


def _rank(item: Finding) -> int:
    """Return how soon a finding is kept when there are too many (lower is sooner).

    Errors and warnings about the whole challenge come first: they are few (about 80 at most,
    bazaar ones included) and say what every offer shares ("accepts lists 20000 offers").
    Then offer errors, offer warnings, and notes.
    """
    if item.severity is Severity.INFO:
        return 3
    if _offer_index(item.path) is None:
        return 0
    return 1 if item.severity is Severity.ERROR else 2


def _bounded(findings: list[Finding]) -> tuple[Finding, ...]:
    """Return at most MAX_FINDINGS findings: the most telling (`_rank`) in their order, a note.

    Validity is decided on every finding before this cut, so it changes nothing but what is
    shown and stored; the first error (a check's error text) is always kept, as fewer than
    MAX_FINDINGS findings rank before the first offer error.
    """
    if len(findings) <= MAX_FINDINGS:
        return tuple(findings)
    keep = MAX_FINDINGS - 1
    order = sorted(range(len(findings)), key=lambda i: (_rank(findings[i]), i))
    kept = sorted(order[:keep])
    problem = f"{len(findings) - keep} more findings not shown (at most {MAX_FINDINGS} are kept)"
    note = finding("findings-truncated", "", problem)
    return (*(findings[i] for i in kept), note)


def _parse(
    headers: Mapping[str, str],
    body: bytes,
    max_header_bytes: int,
    body_truncated: bool,
    body_error: str | None,
) -> Challenge:
    findings: list[Finding] = []
    header = headers.get(HEADER)
    if header is not None and header.strip():
        document, findings = decode_header(header, max_header_bytes)
        if document is None:
            return Challenge(None, "header", None, (), tuple(findings), valid=False)
        beside = [] if body_error is not None else _body_beside_header(document, body)
        return _validate(document, "header", findings + beside)
    if header is not None:
        findings.append(finding("header-empty", "", "PAYMENT-REQUIRED header is empty"))
    document, problems = decode_body(headers, body, truncated=body_truncated, body_error=body_error)
    if document is None:
        return Challenge(None, None, None, (), (*findings, *problems), valid=False)
    return _validate(document, "body", findings + problems)


def parse_challenge(
    headers: Mapping[str, str],
    body: bytes,
    *,
    max_header_bytes: int = 65536,
    body_truncated: bool = False,
    body_error: str | None = None,
) -> Challenge:
    """Decode and validate the challenge of a 402 answer; never raises.

    `headers` have lower-case names. A non-empty `payment-required` header wins over the body
    (an undecodable header makes the challenge invalid, source "header"); otherwise a JSON
    object body with `x402Version` or `accepts` is the challenge (source "body"). Without
    either, source is None. `valid` is True when the challenge parsed without envelope errors
    and at least one offer has no error finding. `body_truncated` and `body_error` are the
    probe's (`ProbeFacts`): a body cut at `probe.max_body_bytes` or unreadable as sent is
    reported as such when the challenge had to come from it. Every string of the result is
    valid Unicode without control characters; findings are bounded in number and length.
    """
    try:
        return _parse(headers, body, max_header_bytes, body_truncated, body_error)
    # A monitor bug must not stop a probe round; the junk-input tests assert this never fires.
    except Exception as exc:
        _log.error("reading a challenge failed inside the monitor", exc_info=exc)
        problem = f"internal error {type(exc).__name__} while reading the challenge"
        unreadable = finding("challenge-unreadable", "", problem)
        return Challenge(None, None, None, (), (unreadable,), valid=False)


def first_error(challenge: Challenge) -> Finding | None:
    """Return the first error-severity finding of a challenge, or None when it has none."""
    return next((f for f in challenge.findings if f.severity is Severity.ERROR), None)
