"""Make text written by strangers safe to keep and show: valid Unicode, no control bytes, bounded.

Core module, pure. Endpoints, catalogues and facilitators write strings we store (SQLite,
PostgreSQL), render (HTML, SVG, Atom) and print. Two kinds of characters break those sinks:
lone UTF-16 surrogates (`"\\ud800"` is legal JSON, but cannot be encoded as UTF-8, so a save
or a page write fails) and control characters (NUL is refused by PostgreSQL text columns and
by XML; the others corrupt terminals and logs). Both are *replaced* by U+FFFD, never dropped:
dropping would turn an invalid value into a valid one (`"100\\u0000"` must not become
`"100"`). Text is cleaned once, where it enters; later code can rely on it.
"""

from __future__ import annotations

import re
from typing import TypeVar

REPLACEMENT = "\ufffd"
ELLIPSIS = "…"

_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""Lone surrogates, C0 controls other than tab, line feed and carriage return, DEL, and the
C1 controls (U+009B is a terminal's escape sequence introducer, like ESC [)."""
_UNSAFE_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""The same, plus every line break (tab, LF, CR, U+2028, U+2029): for one-line texts."""

_JSON_MAY_DECODE_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"
    r"|\\(?:[bf]|u(?:00[0189][0-9a-fA-F]|007[fF]|[dD][89a-fA-F][0-9a-fA-F]{2}))"
)
"""Everything in JSON text that can decode to a character _UNSAFE matches: the character
itself, its `\\b`/`\\f` escape, or its `\\u` escape (kept beside _UNSAFE: they change together)."""

MAX_NESTING = 64
"""Deeper JSON than this is not walked (decoders refuse it earlier; this is a backstop)."""

J = TypeVar("J")


def clean_text(value: str, limit: int | None = None) -> str:
    """Return `value` with unsafe characters replaced by U+FFFD, cut to `limit` characters.

    Unsafe: lone surrogates, and C0 and C1 control characters except tab, line feed and
    carriage return. A cut text ends with "…" and is exactly `limit` characters long.
    """
    if _UNSAFE.search(value) is not None:
        value = _UNSAFE.sub(REPLACEMENT, value)
    return bound(value, limit)


def clean_line(value: str, limit: int | None = None) -> str:
    """Return `value` as one safe line: like clean_text, and line breaks and tabs as spaces."""
    if _UNSAFE_IN_LINE.search(value) is not None:
        value = _UNSAFE_IN_LINE.sub(_line_character, value)
    return bound(value, limit)


def _line_character(match: re.Match[str]) -> str:
    return " " if match.group() in "\t\n\r\u2028\u2029" else REPLACEMENT


def bound(value: str, limit: int | None) -> str:
    """Return `value` cut to at most `limit` characters, ending with "…" when cut."""
    if limit is None or len(value) <= limit:
        return value
    if limit <= 0:
        return ""
    return value[: limit - 1] + ELLIPSIS


def may_decode_unsafe(json_text: str) -> bool:
    """Return whether decoding `json_text` can yield a character clean_text would replace.

    False means clean_json has nothing to do on the decoded value (a scan of the text costs
    less than the walk).
    """
    return _JSON_MAY_DECODE_UNSAFE.search(json_text) is not None


def is_clean(value: str) -> bool:
    """Return whether `value` has no lone surrogate and no unsafe control character."""
    return _UNSAFE.search(value) is None


def clean_json(value: J) -> J:
    """Return decoded JSON with every string (keys too) passed through clean_text, no cut.

    Returns `value` itself when nothing needed cleaning (the common case costs one walk and
    no copy). Containers nested deeper than MAX_NESTING are returned as they are: JSON
    decoders refuse such input before it gets here.
    """
    cleaned, _ = _clean(value, 0)
    return cleaned  # type: ignore[return-value]


def _clean(value: object, depth: int) -> tuple[object, bool]:
    """Return (cleaned value, whether anything changed)."""
    if isinstance(value, str):
        if _UNSAFE.search(value) is None:
            return value, False
        return _UNSAFE.sub(REPLACEMENT, value), True
    if depth >= MAX_NESTING:
        return value, False
    if isinstance(value, dict):
        items = []
        changed = False
        for key, item in value.items():
            new_key, key_changed = _clean(key, depth + 1)
            new_item, item_changed = _clean(item, depth + 1)
            items.append((new_key, new_item))
            changed = changed or key_changed or item_changed
        return (dict(items), True) if changed else (value, False)
    if isinstance(value, list):
        results = [_clean(item, depth + 1) for item in value]
        if any(changed for _, changed in results):
            return [item for item, _ in results], True
        return value, False
    return value, False
