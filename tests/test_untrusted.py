"""Cleaning untrusted text: every unsafe character replaced (never dropped), lengths bounded."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.untrusted import (
    ELLIPSIS,
    MAX_NESTING,
    REPLACEMENT,
    bound,
    clean_json,
    clean_line,
    clean_text,
    is_clean,
)
from monitor.x402.decode import MAX_JSON_DEPTH, loads_bounded

SETTINGS = settings(max_examples=300, deadline=None)

LINE_BREAKS = ["\t", "\n", "\r"]
SURROGATE_RANGE_ENDS = ["\ud800", "\udbff", "\udc00", "\udfff"]
"""First and last high surrogate, first and last low surrogate."""
C0_UNSAFE = [chr(code) for code in range(0x20) if chr(code) not in LINE_BREAKS]
UNSAFE = [*C0_UNSAFE, "\x7f", *SURROGATE_RANGE_ENDS]
"""Every class clean_text must replace: NUL and the other C0 controls, DEL, lone surrogates."""
SAFE_NEIGHBOURS = [
    " ",  # U+0020, just above the C0 block
    "~",  # U+007E, just below DEL
    "\ud7ff",  # just below the surrogates
    "\ue000",  # just above them
    "\ufffd",
    "\U00010000",  # astral: one code point here, a surrogate pair only in UTF-16
    "\U0001f600",
    "\U0010ffff",
    "é",
    "€",
]


def _unsafe_oracle(char: str, *, line: bool) -> bool:
    """Independent statement of the contract: which single characters must be replaced."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF or 0x7F <= code <= 0x9F:  # surrogates, DEL, C1 controls
        return True
    if code < 0x20:
        return line or char not in "\t\n\r"
    return line and char in "\u2028\u2029"  # line and paragraph separators break lines


def _expected_clean(value: str, *, line: bool) -> str:
    out = []
    for char in value:
        if line and char in "\t\n\r\u2028\u2029":
            out.append(" ")
        elif _unsafe_oracle(char, line=line):
            out.append(REPLACEMENT)
        else:
            out.append(char)
    return "".join(out)


# --- every unsafe class, character by character ------------------------------------------


@pytest.mark.parametrize("char", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
def test_clean_text_replaces_each_unsafe_character_instead_of_dropping_it(char: str) -> None:
    value = f"100{char}"
    cleaned = clean_text(value)
    assert cleaned == "100" + REPLACEMENT
    assert cleaned != "100"  # dropping would turn an invalid amount into a valid one
    assert clean_text(char) == REPLACEMENT
    assert not is_clean(value)
    assert is_clean(cleaned)
    cleaned.encode("utf-8")


@pytest.mark.parametrize("char", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
def test_clean_line_replaces_each_unsafe_character_instead_of_dropping_it(char: str) -> None:
    assert clean_line(f"a{char}b") == f"a{REPLACEMENT}b"
    assert clean_line(char) == REPLACEMENT


@pytest.mark.parametrize("char", LINE_BREAKS, ids=["tab", "LF", "CR"])
def test_clean_text_keeps_tab_line_feed_and_carriage_return(char: str) -> None:
    value = f"a{char}b"
    assert clean_text(value) == value
    assert is_clean(value)


@pytest.mark.parametrize("char", LINE_BREAKS, ids=["tab", "LF", "CR"])
def test_clean_line_turns_tab_line_feed_and_carriage_return_into_spaces(char: str) -> None:
    assert clean_line(f"a{char}b") == "a b"
    assert clean_line("x\r\ny") == "x  y"  # one space per character: lengths never change


@pytest.mark.parametrize("char", SAFE_NEIGHBOURS, ids=[f"U+{ord(c):04X}" for c in SAFE_NEIGHBOURS])
def test_characters_next_to_the_unsafe_ranges_are_kept(char: str) -> None:
    value = f"a{char}b"
    assert clean_text(value) == value
    assert clean_line(value) == value
    assert is_clean(value)


def test_every_ascii_character_is_classified_as_the_contract_says() -> None:
    for code in range(0x80):
        char = chr(code)
        text_expected = REPLACEMENT if _unsafe_oracle(char, line=False) else char
        line_expected = " " if char in "\t\n\r" else text_expected
        assert clean_text(char) == text_expected, f"U+{code:04X}"
        assert clean_line(char) == line_expected, f"U+{code:04X}"
        assert is_clean(char) == (text_expected == char), f"U+{code:04X}"


def test_every_lone_surrogate_is_replaced() -> None:
    surrogates = "".join(chr(code) for code in range(0xD800, 0xE000))
    assert clean_text(surrogates) == REPLACEMENT * 0x800
    assert clean_line(surrogates) == REPLACEMENT * 0x800


def test_a_surrogate_pair_held_as_two_code_points_becomes_two_replacements() -> None:
    # json.loads joins "\ud83d\ude00" into one code point; a str holding the halves apart
    # is two lone surrogates and must not be glued back into an emoji.
    assert clean_text("\ud83d\ude00") == REPLACEMENT * 2
    assert clean_text(json.loads('"\\ud83d\\ude00"')) == "\U0001f600"


def test_several_unsafe_characters_are_each_replaced_in_place() -> None:
    assert clean_text("\x00a\ud800b\x7f\tc\x1b[31m") == "\ufffda\ufffdb\ufffd\tc\ufffd[31m"
    assert clean_line("\x00a\ud800b\x7f\tc\n") == "\ufffda\ufffdb\ufffd c "


# --- bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("abc", None, "abc"),
        ("", None, ""),
        ("abc", 3, "abc"),
        ("abc", 4, "abc"),
        ("abcd", 3, "ab…"),
        ("abc", 2, "a…"),
        ("ab", 2, "ab"),
        ("abc", 1, "…"),
        ("a", 1, "a"),
        ("abc", 0, ""),
        ("", 0, ""),
        ("abc", -1, ""),
        ("x" * 10_000, 5, "xxxx…"),
    ],
)
def test_bound_cuts_to_exactly_limit_characters_ending_with_an_ellipsis(
    value: str, limit: int | None, expected: str
) -> None:
    assert bound(value, limit) == expected
    assert clean_text(value, limit) == expected
    assert clean_line(value, limit) == expected


def test_cleaning_happens_before_the_cut() -> None:
    assert clean_text("\x00" * 10, 4) == REPLACEMENT * 3 + ELLIPSIS
    assert clean_line("\n" * 10, 4) == "   " + ELLIPSIS
    assert clean_text("ab\ud800", 3) == "ab" + REPLACEMENT
    assert clean_text("ab\ud800c", 3) == "ab" + ELLIPSIS


@SETTINGS
@given(value=st.text(), limit=st.integers(min_value=0, max_value=40))
def test_bound_property(value: str, limit: int) -> None:
    result = bound(value, limit)
    assert len(result) == min(len(value), limit)
    if len(value) <= limit:
        assert result == value
    elif limit > 0:
        assert result == value[: limit - 1] + ELLIPSIS
    else:
        assert result == ""


# --- properties of cleaning ------------------------------------------------------------------

ANY_CHARACTER = st.characters(exclude_categories=()) | st.sampled_from(UNSAFE + LINE_BREAKS)
"""Every code point, lone surrogates included, biased towards the unsafe ones."""
ANY_TEXT = st.text(alphabet=ANY_CHARACTER, max_size=60)


@SETTINGS
@given(value=ANY_TEXT)
@example(value="\ud800")
@example(value="\x00\r\n\t\x7f\udfff")
def test_cleaned_text_encodes_as_utf8_and_has_no_unsafe_character(value: str) -> None:
    for line, clean in ((False, clean_text), (True, clean_line)):
        cleaned = clean(value)
        cleaned.encode("utf-8")
        assert is_clean(cleaned)
        assert not any(_unsafe_oracle(char, line=line) for char in cleaned)
        assert cleaned == _expected_clean(value, line=line)
        assert len(cleaned) == len(value)


@SETTINGS
@given(value=ANY_TEXT, limit=st.none() | st.integers(min_value=0, max_value=70))
def test_cleaning_is_a_fixed_point(value: str, limit: int | None) -> None:
    for clean in (clean_text, clean_line):
        once = clean(value, limit)
        assert clean(once, limit) == once
        assert clean(once) == once
        once.encode("utf-8")
        if limit is not None:
            assert len(once) <= limit
    assert clean_text(clean_line(value)) == clean_line(value)


@SETTINGS
@given(value=ANY_TEXT)
def test_is_clean_says_whether_clean_text_would_change_anything(value: str) -> None:
    assert is_clean(value) == (clean_text(value) == value)


@SETTINGS
@given(
    prefix=ANY_TEXT,
    unsafe=st.sampled_from(UNSAFE) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    suffix=ANY_TEXT,
)
def test_a_value_with_an_unsafe_character_never_equals_it_deleted(
    prefix: str, unsafe: str, suffix: str
) -> None:
    value = prefix + unsafe + suffix
    deleted = prefix + suffix
    for clean in (clean_text, clean_line):
        assert clean(value) != deleted
        assert clean(value) != clean(deleted)
        assert clean(value)[len(prefix)] == REPLACEMENT


# --- JSON ------------------------------------------------------------------------------------


def test_clean_json_cleans_strings_and_keys_at_every_level() -> None:
    value: Any = {
        "a\x00": ["x\ud800", {"k\x7f": "\x1b[2J", "ok": "fine"}, 7, 1.5, True, None],
        "plain": {"nested": ["\udfff", []]},
        "n": 1,
    }
    before = copy.deepcopy(value)
    cleaned = clean_json(value)
    assert cleaned == {
        "a\ufffd": ["x\ufffd", {"k\ufffd": "\ufffd[2J", "ok": "fine"}, 7, 1.5, True, None],
        "plain": {"nested": ["\ufffd", []]},
        "n": 1,
    }
    assert list(cleaned) == ["a\ufffd", "plain", "n"]  # key order kept
    assert value == before  # the input is not modified
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")


def test_clean_json_keeps_tab_and_line_breaks_inside_strings() -> None:
    value = {"description": "line one\nline two\tend\r"}
    assert clean_json(value) is value


@pytest.mark.parametrize(
    "value",
    [
        {"a": ["b", {"c": 1, "d": [None, True, 2.5]}], "e": "line\nbreak\ttab"},
        ["x", ["y", []], {}],
        {},
        [],
        "text",
        "",
        12,
        1.5,
        None,
        False,
    ],
    ids=repr,
)
def test_clean_json_returns_an_unchanged_value_itself(value: object) -> None:
    assert clean_json(value) is value


def test_clean_json_on_a_top_level_string_cleans_it() -> None:
    assert clean_json("\x00") == REPLACEMENT


def _nest_lists(depth: int, leaf: object) -> list[Any]:
    value: Any = leaf
    for _ in range(depth):
        value = [value]
    result: list[Any] = value
    return result


def _nest_dicts(depth: int, key: str, leaf: object) -> dict[str, Any]:
    value: Any = leaf
    for _ in range(depth):
        value = {key: value}
    result: dict[str, Any] = value
    return result


def _innermost(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
    return value


def test_deep_nesting_far_beyond_max_nesting_does_not_crash() -> None:
    deep = _nest_lists(100_000, "\ud800")
    assert clean_json(deep) is deep  # the backstop: not walked past MAX_NESTING, no recursion
    deep_dicts = _nest_dicts(100_000, "k", "\x00")
    assert clean_json(deep_dicts) is deep_dicts


def test_strings_inside_max_nesting_containers_are_cleaned() -> None:
    cleaned = clean_json(_nest_lists(MAX_NESTING, "\ud800"))
    assert _innermost(cleaned, MAX_NESTING) == REPLACEMENT
    cleaned_dicts = clean_json(_nest_dicts(MAX_NESTING, "k\x00", "v\x00"))
    innermost_dict = _innermost(cleaned_dicts, MAX_NESTING - 1)
    assert innermost_dict == {"k\ufffd": "v\ufffd"}


def test_containers_deeper_than_max_nesting_are_returned_as_they_are() -> None:
    deep = _nest_lists(MAX_NESTING + 1, "\ud800")
    assert clean_json(deep) is deep


@pytest.mark.parametrize(
    "text",
    [
        "[" * MAX_JSON_DEPTH + '"\\ud800"' + "]" * MAX_JSON_DEPTH,
        '{"\\u0000":' * MAX_JSON_DEPTH + '"\\udc00"' + "}" * MAX_JSON_DEPTH,
        '[{"\\u007f":' * (MAX_JSON_DEPTH // 2) + '"\\u001b"' + "}]" * (MAX_JSON_DEPTH // 2),
    ],
    ids=["lists", "objects", "mixed"],
)
def test_everything_the_json_decoder_accepts_comes_out_clean(text: str) -> None:
    """The backstop's premise: the monitor's decoder refuses input that clean_json would skip."""
    cleaned = clean_json(loads_bounded(text))
    dumped = json.dumps(cleaned, ensure_ascii=False)
    dumped.encode("utf-8")
    assert is_clean(dumped)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=25,
)


def _reference_clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_reference_clean(item) for item in value]
    if isinstance(value, dict):
        return {_reference_clean(key): _reference_clean(item) for key, item in value.items()}
    return value


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _all_strings(item)]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *_all_strings(item)]]
    return []


@SETTINGS
@given(value=JSON_VALUES)
def test_clean_json_property(value: Any) -> None:
    before = copy.deepcopy(value)
    cleaned = clean_json(value)
    assert cleaned == _reference_clean(value)
    assert all(is_clean(text) for text in _all_strings(cleaned))
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")
    assert value == before  # never modified in place
    assert clean_json(cleaned) is cleaned  # a clean value is a fixed point, returned itself
    if all(is_clean(text) for text in _all_strings(value)):
        assert cleaned is value


@pytest.mark.parametrize(
    ("value", "text", "line"),
    [
        ("\x9b31m red", "\ufffd31m red", "\ufffd31m red"),  # C1 CSI: a terminal escape
        ("\x85next", "\ufffdnext", "\ufffdnext"),  # C1 NEL
        ("a\u2028b\u2029c", "a\u2028b\u2029c", "a b c"),  # separators: kept in text, not in a line
    ],
)
def test_c1_controls_are_replaced_and_unicode_line_breaks_end_no_line(
    value: str, text: str, line: str
) -> None:
    assert clean_text(value) == text
    assert clean_line(value) == line
