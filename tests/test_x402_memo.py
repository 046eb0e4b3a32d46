"""The challenge memo and the cold-path shortcuts give exactly the answers of a fresh parse."""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import assess as assess_module
from monitor.assess import assess
from monitor.models import Challenge, Finding, ProbeFacts, Severity
from monitor.untrusted import clean_json
from monitor.x402 import ChallengeMemo, parse_challenge
from monitor.x402 import memo as memo_module
from monitor.x402.decode import b64decode_lenient, loads_bounded
from monitor.x402.formats import is_solana_address
from monitor.x402.memo import CHALLENGE_HEADERS, challenge_inputs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
SLOT = ("https://api.example.com/pay", "GET")


def _inputs() -> list[tuple[str, dict[str, str], bytes]]:
    """Return (label, headers, body) for every fixture as served, and in the other placements."""
    cases: list[tuple[str, dict[str, str], bytes]] = []
    for path in sorted(FIXTURES.iterdir()):
        raw = path.read_bytes()
        if path.suffix == ".b64":
            header = raw.decode().strip()
            cases.append((f"{path.name}:header", {"payment-required": header}, b""))
            cases.append((f"{path.name}:header+{{}}", {"payment-required": header}, b"{}"))
        elif path.suffix == ".json":
            encoded = base64.b64encode(raw).decode()
            cases.append((f"{path.name}:body", {"content-type": "application/json"}, raw))
            cases.append((f"{path.name}:as-header", {"payment-required": encoded}, b""))
    v1 = (FIXTURES / "01-v1-evm-spec-base-sepolia.json").read_bytes()
    v2 = (FIXTURES / "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64").read_text().strip()
    cases += [
        ("v2 header beside a v1 body", {"payment-required": v2}, v1),
        ("empty header, v1 body", {"payment-required": " "}, v1),
        ("html body", {"content-type": "text/html"}, b"oops"),
        ("text body", {"content-type": "text/plain"}, b"oops"),
        ("empty answer", {}, b""),
        ("broken header", {"payment-required": "!!"}, b""),
        ("escaped surrogates", {}, v1.replace(b'"USDC"', b'"USDC\\ud800\\u0000"')),
        ("raw surrogate bytes", {}, v1.replace(b'"USDC"', b'"USDC\xed\xa0\x80"')),
    ]
    return cases


CASES = _inputs()
IDS = [label for label, _, _ in CASES]


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    assess_module.CHALLENGES.clear()
    yield
    assess_module.CHALLENGES.clear()


def _facts(headers: Mapping[str, str], body: bytes, url: str = SLOT[0]) -> ProbeFacts:
    return ProbeFacts(
        url=url,
        method="GET",
        method_guessed=False,
        started_at=T0,
        http_status=402,
        headers=headers,
        body=body,
        latency_ms=5.0,
    )


def _one_byte_off(text: str) -> str:
    """Return `text` with its middle character changed (still base64 where `text` was)."""
    middle = len(text) // 2
    replacement = "B" if text[middle] != "B" else "C"
    return text[:middle] + replacement + text[middle + 1 :]


# The memo never changes an answer -----------------------------------------------------------


@pytest.mark.parametrize(("label", "headers", "body"), CASES, ids=IDS)
def test_a_remembered_challenge_equals_a_fresh_one(
    label: str, headers: dict[str, str], body: bytes
) -> None:
    memo = ChallengeMemo()
    first = memo.parse(SLOT, headers, body)
    again = memo.parse(SLOT, dict(headers), bytes(body))  # equal inputs, other objects
    assert again is first
    assert (memo.hits, memo.misses) == (1, 1)
    assert again == parse_challenge(headers, body)


@pytest.mark.parametrize(("label", "headers", "body"), CASES, ids=IDS)
def test_a_remembered_check_result_equals_a_fresh_one(
    label: str, headers: dict[str, str], body: bytes
) -> None:
    first = assess(_facts(headers, body))
    again = assess(_facts(dict(headers), bytes(body)))
    assert again.challenge is first.challenge
    assess_module.CHALLENGES.clear()
    assert again == assess(_facts(headers, body))
    assert again.challenge == parse_challenge(headers, body)


WITH_HEADER = [case for case in CASES if "payment-required" in case[1]]


@pytest.mark.parametrize(
    ("label", "headers", "body"), WITH_HEADER, ids=[label for label, _, _ in WITH_HEADER]
)
def test_a_header_one_byte_off_is_parsed_afresh(
    label: str, headers: dict[str, str], body: bytes
) -> None:
    memo = ChallengeMemo()
    before = memo.parse(SLOT, headers, body)
    changed = {**headers, "payment-required": _one_byte_off(headers["payment-required"])}
    after = memo.parse(SLOT, changed, body)
    assert after is not before
    assert after == parse_challenge(changed, body)
    assert memo.hits == 0


@pytest.mark.parametrize(("label", "headers", "body"), CASES, ids=IDS)
@pytest.mark.parametrize("other_body", [b"", b"{}", b" ", b"x", b'{"x402Version": 1}'])
def test_a_different_body_is_parsed_afresh(
    label: str, headers: dict[str, str], body: bytes, other_body: bytes
) -> None:
    if other_body == body:
        return
    memo = ChallengeMemo()
    before = memo.parse(SLOT, headers, body)
    after = memo.parse(SLOT, headers, other_body)
    assert after is not before
    assert after == parse_challenge(headers, other_body)


PROBE_STATES = [
    {},
    {"body_truncated": True},
    {"body_error": "invalid gzip data"},
    {"body_error": "Content-Encoding 'br' is not decoded"},
    {"body_truncated": True, "body_error": "invalid gzip data"},
]
"""What the probe can say about a body beside its bytes (ProbeFacts.body_truncated/body_error)."""


@pytest.mark.parametrize("first", PROBE_STATES)
@pytest.mark.parametrize("second", PROBE_STATES)
@pytest.mark.parametrize(
    ("headers", "body"),
    [({}, b'{"x402Version": 1, "accepts": ['), ({"payment-required": "!!"}, b""), ({}, b"")],
)
def test_the_probe_body_facts_are_part_of_the_key(
    first: dict[str, Any], second: dict[str, Any], headers: dict[str, str], body: bytes
) -> None:
    memo = ChallengeMemo()
    memo.parse(SLOT, headers, body, **first)
    again = memo.parse(SLOT, headers, body, **second)
    assert again == parse_challenge(headers, body, **second)
    assert memo.hits == (1 if first == second else 0)


def test_every_header_the_parser_reads_is_part_of_the_key() -> None:
    html = memo_parse_twice({"content-type": "text/html"}, {}, b"oops")
    assert [f.code for f in html[0].findings] == ["body-html"]
    assert [f.code for f in html[1].findings] == ["body-not-json"]
    empty = memo_parse_twice({"payment-required": ""}, {}, b"")
    assert "header-empty" in [f.code for f in empty[0].findings]
    assert "header-empty" not in [f.code for f in empty[1].findings]


def memo_parse_twice(
    first: dict[str, str], second: dict[str, str], body: bytes
) -> tuple[Challenge, Challenge]:
    memo = ChallengeMemo()
    return memo.parse(SLOT, first, body), memo.parse(SLOT, second, body)


class _RecordingHeaders(Mapping[str, str]):
    """Headers that record which names were read, and whether they were listed."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {**values, "x-other": "1", "retry-after": "5", "date": "today"}
        self.read: set[str] = set()
        self.listed = False

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        self.listed = True
        return iter(self._values)

    def __len__(self) -> int:
        self.listed = True
        return len(self._values)


@pytest.mark.parametrize(("label", "headers", "body"), CASES, ids=IDS)
def test_parse_challenge_reads_no_header_outside_the_key(
    label: str, headers: dict[str, str], body: bytes
) -> None:
    # If a rule ever reads another header (or URL, method...), add it to challenge_inputs.
    recording = _RecordingHeaders(headers)
    challenge = parse_challenge(recording, body)
    assert recording.read <= set(CHALLENGE_HEADERS)
    assert not recording.listed
    only_keyed = {k: v for k, v in headers.items() if k in CHALLENGE_HEADERS}
    assert challenge == parse_challenge(only_keyed, body)


_HEADERS = st.sampled_from(
    [None, "", *(c[1]["payment-required"] for c in CASES if "payment-required" in c[1])]
)
_BODIES = st.sampled_from([b"", b"{}", *(c[2] for c in CASES if c[2])])
_CONTENT_TYPES = st.sampled_from([None, "application/json", "text/html"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), _HEADERS, st.booleans(), _CONTENT_TYPES, _BODIES),
        min_size=1,
        max_size=12,
    )
)
def test_any_sequence_of_answers_gets_fresh_verdicts(
    answers: list[tuple[int, str | None, bool, str | None, bytes]],
) -> None:
    memo = ChallengeMemo(max_slots=2)  # smaller than the slots used: eviction is exercised
    for slot, header, mutate, content_type, body in answers:
        headers = {}
        if header is not None:
            headers["payment-required"] = _one_byte_off(header) if mutate and header else header
        if content_type is not None:
            headers["content-type"] = content_type
        assert memo.parse(slot, headers, body) == parse_challenge(headers, body)


# Bounds ---------------------------------------------------------------------------------------


def test_slots_beyond_the_limit_evict_the_least_recently_used() -> None:
    headers = dict(CASES[0][1])
    memo = ChallengeMemo(max_slots=2)
    memo.parse("a", headers, b"")
    memo.parse("b", headers, b"")
    memo.parse("a", headers, b"")  # a is now the most recently used
    memo.parse("c", headers, b"")
    assert len(memo) == 2
    memo.parse("a", headers, b"")
    assert memo.hits == 2
    memo.parse("b", headers, b"")
    assert memo.misses == 4


def test_the_byte_budget_bounds_what_is_kept() -> None:
    body = (FIXTURES / "11-v1-evm-real-truecast-post-bodyfields.json").read_bytes()
    memo = ChallengeMemo(max_bytes=len(body) * 3)
    for slot in range(10):
        memo.parse(slot, {}, body)
    assert len(memo) == 3
    assert memo.size_bytes == len(body) * 3


def test_a_slot_that_changes_answer_is_replaced_not_added() -> None:
    memo = ChallengeMemo()
    for nonce in range(5):
        memo.parse(SLOT, {}, b'{"x402Version": 1, "accepts": [], "nonce": %d}' % nonce)
    assert len(memo) == 1
    assert memo.size_bytes == len(b'{"x402Version": 1, "accepts": [], "nonce": 4}')


def test_oversized_inputs_are_parsed_every_time() -> None:
    body = b'{"x402Version": 1, "accepts": [], "pad": "' + b"x" * 20_000 + b'"}'
    memo = ChallengeMemo()
    memo.parse(SLOT, {}, b"{}")
    first = memo.parse(SLOT, {}, body)
    assert len(memo) == 0  # the huge answer also dropped the slot's stale small one
    assert memo.parse(SLOT, {}, body) == first
    assert memo.hits == 0


def test_internal_errors_are_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Challenge(
        None, None, None, (), (Finding("challenge-unreadable", Severity.ERROR, "x"),), False
    )
    monkeypatch.setattr(memo_module, "parse_challenge", lambda headers, body, **_: broken)
    memo = ChallengeMemo()
    memo.parse(SLOT, {}, b"{}")
    monkeypatch.undo()
    assert len(memo) == 0
    assert memo.parse(SLOT, {}, b"{}") == parse_challenge({}, b"{}")


def test_a_reused_body_buffer_cannot_change_a_remembered_key() -> None:
    buffer = bytearray((FIXTURES / "01-v1-evm-spec-base-sepolia.json").read_bytes())
    key = challenge_inputs({}, buffer)  # type: ignore[arg-type]  # a mistake it survives
    buffer[:] = b"{}"
    assert key[2] != bytes(buffer)


def test_endpoints_with_the_same_challenge_keep_their_own_slots() -> None:
    headers = dict(CASES[0][1])
    results = [assess(_facts(headers, b"", url=f"https://a{i}.example/pay")) for i in range(3)]
    assert len(assess_module.CHALLENGES) == 3
    assert len({id(result.challenge) for result in results}) == 3


def test_threads_sharing_a_memo_always_get_fresh_verdicts() -> None:
    memo = ChallengeMemo(max_slots=3)
    expected = [parse_challenge(headers, body) for _, headers, body in CASES]
    failures: list[str] = []

    def worker(offset: int) -> None:
        for step in range(200):
            index = (step * 7 + offset) % len(CASES)
            label, headers, body = CASES[index]
            if memo.parse(step % 5, headers, body) != expected[index]:
                failures.append(label)

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, to interleave the dict operations
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures


# Cold-path shortcuts --------------------------------------------------------------------------


def test_whitespace_is_dropped_exactly_as_the_regex_did() -> None:
    every_character = "".join(map(chr, range(sys.maxunicode + 1)))
    assert "".join(every_character.split()) == re.sub(r"\s+", "", every_character)
    assert b64decode_lenient(" eyJ4Ijox\n fQ\u00a0==\t") == b'{"x":1}'


@pytest.mark.parametrize(
    "text", ["\ufeff{}", '{"a": NaN}', "[Infinity]", "-Infinity", "", "{", '{"a": 1}', "[1, 2]"]
)
def test_the_shared_decoder_accepts_and_refuses_what_json_loads_does(text: str) -> None:
    def reject(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    def outcome(load: Callable[[str], object]) -> tuple[str, object]:
        try:
            return "parsed", load(text)
        except ValueError as exc:
            return "refused", (type(exc), str(exc))

    assert outcome(loads_bounded) == outcome(lambda t: json.loads(t, parse_constant=reject))


_ANY_TEXT = st.text(
    st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Ll", "Nd", "Po"])
    | st.sampled_from(["\\", "u", "b", "f", "D", "0", "\x7f"]),
    max_size=16,
)
_TEXT_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_ANY_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_TEXT_JSON, st.booleans())
def test_skipping_the_clean_walk_gives_what_the_walk_gives(value: Any, ensure_ascii: bool) -> None:
    # The shortcut skips clean_json when the text cannot decode to an unsafe character.
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    assert loads_bounded(text) == clean_json(json.loads(text))


@pytest.mark.parametrize(
    "text", ['"\\b\\f"', '"\\u001F\\u007F"', '"\\uDBFF"', '"\\\\u0000"', '{"\\u0000": 1}']
)
def test_every_escape_of_an_unsafe_character_is_cleaned(text: str) -> None:
    assert loads_bounded(text) == clean_json(json.loads(text))


def test_a_doubled_bom_is_still_not_json() -> None:
    codes = [f.code for f in parse_challenge({}, b"\xef\xbb\xbf\xef\xbb\xbf{}").findings]
    assert codes == ["body-not-json"]


@pytest.mark.parametrize(
    "value",
    [
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        "1" * 32,
        "z" * 44,
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1",
        "11111111111111111111111111111112",
    ],
)
def test_remembered_solana_checks_match_a_fresh_decode(value: str) -> None:
    expected = len(base58.b58decode(value)) == 32
    assert is_solana_address(value) is expected
    assert is_solana_address("".join(value)) is expected  # now answered from the cache
