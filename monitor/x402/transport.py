"""Read the challenge of a 402 answer out of its transport: the v2 header or the JSON body.

Everything here is untrusted bytes and text. JSON is read with a nesting bound, integers of
more than `MAX_INT_DIGITS` digits are read as floats (Python refuses to parse over 4300 digits
and would call valid JSON "not JSON"), and every decoded string is cleaned where it enters
(`monitor.untrusted.clean_json`): lone surrogates — `"\\ud800"` escapes, or the raw bytes
ED A0 80 that Python's own `json.loads(bytes)` lets through — and control characters become
U+FFFD, so no later sink (a database, a page, JSON output) meets text it cannot encode.
Each reader returns the decoded object (or None) and the findings on the way; none raises on
hostile input. Pure: stdlib only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import NoReturn

from monitor.models import Finding, JsonValue
from monitor.untrusted import clean_json, clean_line, may_decode_unsafe
from monitor.x402.codes import finding, type_name

__all__ = [
    "HEADER",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_VALUES",
    "JsonTooDeepError",
    "JsonTooLargeError",
    "b64decode_lenient",
    "decode_body",
    "decode_header",
    "loads_bounded",
    "loads_bytes",
]

HEADER = "payment-required"
MAX_JSON_DEPTH = 64
"""Deepest array/object nesting accepted; deeper input is refused before `json.loads` recurses."""
MAX_INT_DIGITS = 100
"""Longer JSON integers are read as floats, as JavaScript reads every number: no x402 integer
needs more (a uint256 has 78 digits), and int() costs time quadratic in the digits."""
LARGE_HEADER_BYTES = 8 * 1024
"""Above this, common servers and proxies (aiohttp, Node behind some proxies) reject the header."""
OVERSIZE_HEADER_BYTES = 16 * 1024
"""Above this, Node.js clients (default `maxHeaderSize`) refuse the whole response: an error."""
MAX_BODY_ERROR_CHARS = 200
"""Characters of the probe's body error quoted in a finding."""

MAX_JSON_VALUES = 20_000
"""Most values (objects, arrays and commas counted) in a challenge: parsing time and memory
follow values, not bytes (1 MiB of `{},` is 350,000 objects and tens of MB). A challenge with
a Bazaar schema holds hundreds."""

_STRUCTURE = re.compile(r'\\.|["\[\]{},]', re.DOTALL)
"""What a linear scan of JSON text needs: escapes (skipped), quotes, brackets and commas."""


class JsonTooDeepError(ValueError):
    """The text nests arrays/objects deeper than allowed."""


class JsonTooLargeError(ValueError):
    """The text holds more values than allowed."""


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> int | float:
    # `text` may carry a minus sign; a few characters either way do not matter here.
    return int(text) if len(text) <= MAX_INT_DIGITS else float(text)


# One decoder for every call: `json.loads(text, parse_constant=...)` builds a new decoder and
# scanner each time, which costs more than decoding a typical challenge's top level.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)


def loads_bounded(
    text: str, max_depth: int = MAX_JSON_DEPTH, max_values: int = MAX_JSON_VALUES
) -> JsonValue:
    """Parse strict JSON text within `max_depth` nesting and `max_values` values; clean it.

    Raises JsonTooDeepError or JsonTooLargeError (checked before parsing, in one linear scan,
    so `json.loads` never recurses too deep nor builds millions of objects) and ValueError for
    anything that is not JSON (NaN included). Integers longer than MAX_INT_DIGITS come back as
    floats (inf beyond float range); every string, keys included, has lone surrogates and
    control characters replaced by U+FFFD.
    """
    # Cheap upper bounds first (brackets and commas inside strings count too).
    openings = text.count("[") + text.count("{")
    if openings > max_depth or openings + text.count(",") >= max_values:
        _check_structure(text, max_depth, max_values)
    if text.startswith("\ufeff"):  # as json.loads does: a second BOM is not JSON
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        document = _DECODER.decode(text)
    except RecursionError as exc:  # only if the bound above is set near the recursion limit
        raise JsonTooDeepError(str(exc)) from exc
    # Most challenges have nothing to clean; one scan of the text costs less than the walk.
    return clean_json(document) if may_decode_unsafe(text) else document


def _check_structure(text: str, max_depth: int, max_values: int) -> None:
    """Raise when the text, outside its strings, nests or counts beyond the bounds.

    One pass over the structural characters: an unterminated string full of escaped quotes
    costs as much as any other text (a regex that matched whole string literals rescanned to
    the end from every quote: quadratic).
    """
    depth = 0
    values = 1
    inside = False
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token == '"':
            inside = not inside
        elif inside or token[0] == "\\":
            continue
        elif token in "[{":
            depth += 1
            values += 1
            if depth > max_depth:
                raise JsonTooDeepError(f"nested deeper than {max_depth}")
        elif token == ",":
            values += 1
        else:
            depth -= 1
        if values > max_values:
            raise JsonTooLargeError(f"more than {max_values} values")


def loads_bytes(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> JsonValue:
    """Parse UTF-8 JSON bytes (one BOM allowed) like `loads_bounded`.

    Encoded lone surrogates (ED A0 80) are let through as `json.loads(bytes)` does, then
    cleaned; other invalid UTF-8 raises UnicodeDecodeError (a ValueError).
    """
    return loads_bounded(raw.decode("utf-8-sig", "surrogatepass"), max_depth)


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


def decode_header(value: str, max_header_bytes: int) -> tuple[JsonValue, list[Finding]]:
    """Return the JSON object of a PAYMENT-REQUIRED value (or None) and the findings on the way.

    The value is only measured and base64-decoded, never echoed: it may hold any character
    the probe decoded (UTF-8, else Latin-1, control characters included).
    """
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
        document = loads_bytes(raw)
    except JsonTooDeepError:
        problem = f"PAYMENT-REQUIRED JSON nests deeper than {MAX_JSON_DEPTH} levels"
        return None, [*findings, finding("json-too-deep", "", problem)]
    except JsonTooLargeError:
        problem = f"PAYMENT-REQUIRED JSON holds more than {MAX_JSON_VALUES} values"
        return None, [*findings, finding("json-too-large", "", problem)]
    except ValueError:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
        problem = "PAYMENT-REQUIRED decodes to something that is not JSON"
        return None, [*findings, finding("header-not-json", "", problem)]
    if not isinstance(document, dict):
        problem = f"PAYMENT-REQUIRED decodes to {type_name(document)}, not an object"
        return None, [*findings, finding("header-not-object", "", problem)]
    return document, findings


def _looks_like_html(headers: Mapping[str, str], text: str) -> bool:
    content_type = headers.get("content-type", "").lower()
    return "html" in content_type or _starts_like_markup(text)


def _starts_like_markup(text: str) -> bool:
    return text.lstrip()[:1] == "<"


def decode_body(
    headers: Mapping[str, str],
    body: bytes,
    *,
    truncated: bool = False,
    body_error: str | None = None,
) -> tuple[JsonValue, list[Finding]]:
    """Return the JSON challenge object of a body (or None) and the findings on the way.

    `truncated`: the probe cut the body at its `probe.max_body_bytes`, so `body` holds the
    first len(body) bytes; a cut body that does not parse is `body-too-large`, not "not JSON".
    `body_error`: why the probe could not read the body as sent (`body-unreadable`).
    """
    if body_error is not None:
        problem = f"402 body could not be read: {clean_line(body_error, MAX_BODY_ERROR_CHARS)}"
        return None, [finding("body-unreadable", "", problem)]
    if not body.strip():
        if truncated:  # a megabyte of whitespace, and more: cut, not empty
            return None, [_cut(body)]
        return None, [finding("challenge-missing", "", "402 answer has no challenge (empty body)")]
    try:
        text = body.decode("utf-8-sig", "surrogatepass")
    except UnicodeDecodeError:
        # A cut can split a multi-byte character: then the cut, not the encoding, is at fault.
        if truncated:
            return None, [_cut(body)]
        return None, [finding("body-not-json", "", "402 body is not UTF-8 JSON")]
    try:
        document = loads_bounded(text)
    except JsonTooDeepError:
        problem = f"402 body JSON nests deeper than {MAX_JSON_DEPTH} levels"
        return None, [finding("json-too-deep", "", problem)]
    except JsonTooLargeError:
        if truncated:  # it would not have parsed either: the cut is what to report
            return None, [_cut(body)]
        problem = f"402 body JSON holds more than {MAX_JSON_VALUES} values"
        return None, [finding("json-too-large", "", problem)]
    except ValueError:
        # Checked only now: some servers label JSON as text/html, so the label proves nothing.
        # A cut body is judged by its first character only: a huge JSON may be mislabelled.
        if truncated and not _starts_like_markup(text):
            return None, [_cut(body)]
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


def _cut(body: bytes) -> Finding:
    """Return the finding of a body cut at the probe's limit (len(body) bytes were read)."""
    problem = (
        "402 body is larger than the monitor reads "
        f"(probe.max_body_bytes = {len(body)} bytes) and could not be parsed where it was cut"
    )
    fix = "raise probe.max_body_bytes or send the challenge in the PAYMENT-REQUIRED header"
    return finding("body-too-large", "", problem, fix)
