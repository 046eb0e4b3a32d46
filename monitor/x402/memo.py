"""Remember each endpoint's last challenge verdict, so an unchanged answer is not parsed again.

An endpoint's challenge rarely changes between checks, and parsing plus validating one costs
tens of microseconds, so `ChallengeMemo.parse` keeps, per endpoint slot, the last inputs and
their `Challenge`, and returns that very object when the inputs are equal, else parses afresh
and replaces the slot. Core: no clock, no environment, no I/O; the only state is the memo
itself, and a hit is by construction the value `parse_challenge` returns for the same inputs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping

from monitor.models import Challenge
from monitor.x402.decode import parse_challenge

__all__ = ["CHALLENGE_HEADERS", "ChallengeMemo", "challenge_inputs"]

CHALLENGE_HEADERS = ("payment-required", "content-type")
"""Every header `parse_challenge` reads (tests/test_x402_memo.py proves no other is read)."""

ChallengeInputs = tuple[str | None, str | None, bytes, bool, str | None]
"""(payment-required, content-type, body, body truncated, body error): everything the verdict
depends on."""

MAX_SLOTS = 32_768
"""Endpoints remembered. Probes visit endpoints round-robin, and a round-robin over more slots
than an LRU holds misses every time, so this covers the 20,000 endpoints DESIGN.md targets with
room for churn. Retained memory is about 6.5 x the input bytes (measured: a 585 B header keeps
3.7 KB), so 20,000 typical 0.5-2 KB challenges keep roughly 65-260 MB."""
MAX_BYTES = 64 * 1024 * 1024
"""Input bytes (header + body) remembered in all: 20,000 challenges of 3.2 KB, and the bound on
memory: about 420 MB retained at 6.5 x (a 2-core monitor of 20,000 endpoints typically keeps
under 100 MB), more only for JSON made of tiny nested values (up to 16 x, measured)."""
MAX_ENTRY_BYTES = 16 * 1024
"""Larger inputs are parsed every time: real challenges are 0.5-4 KB, a header over 16 KB is
already an error, and one huge body must not evict hundreds of ordinary slots."""


def challenge_inputs(
    headers: Mapping[str, str],
    body: bytes,
    *,
    body_truncated: bool = False,
    body_error: str | None = None,
) -> ChallengeInputs:
    """Return the inputs `parse_challenge(headers, body, ...)` depends on, as an equality key.

    Two calls with equal keys return equal challenges. The body is copied when it is not
    `bytes`, so a caller reusing a buffer cannot change a remembered key.
    """
    frozen = body if type(body) is bytes else bytes(body)
    header, content_type = headers.get("payment-required"), headers.get("content-type")
    return header, content_type, frozen, body_truncated, body_error


def _size(inputs: ChallengeInputs) -> int:
    header, content_type, body, _, body_error = inputs
    return len(header or "") + len(content_type or "") + len(body) + len(body_error or "")


class ChallengeMemo:
    """A bounded map from endpoint slot to its last (inputs, Challenge); least recently used out.

    Slots are keyed by endpoint (e.g. URL and method), not by content: an endpoint whose
    challenge changes on every answer (a nonce, a timestamp) replaces its own slot instead of
    flooding the memo and evicting everyone else's. Safe to share between threads.
    """

    def __init__(
        self,
        max_slots: int = MAX_SLOTS,
        max_bytes: int = MAX_BYTES,
        max_entry_bytes: int = MAX_ENTRY_BYTES,
    ) -> None:
        self.max_slots = max_slots
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self.hits = 0
        self.misses = 0
        self._bytes = 0
        self._slots: OrderedDict[Hashable, tuple[ChallengeInputs, Challenge, int]] = OrderedDict()
        # Parsing happens outside the lock; only the few dict operations are serialised.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def size_bytes(self) -> int:
        """Return the input bytes currently remembered."""
        return self._bytes

    def parse(
        self,
        slot: Hashable,
        headers: Mapping[str, str],
        body: bytes,
        *,
        body_truncated: bool = False,
        body_error: str | None = None,
    ) -> Challenge:
        """Return `parse_challenge(headers, body, ...)`, reusing `slot`'s last one if equal.

        Equality is checked on the full inputs (never a hash of them), so a remembered answer
        is only ever returned for exactly the inputs it was computed from.
        """
        inputs = challenge_inputs(
            headers, body, body_truncated=body_truncated, body_error=body_error
        )
        with self._lock:
            remembered = self._slots.get(slot)
            if remembered is not None and remembered[0] == inputs:
                self._slots.move_to_end(slot)
                self.hits += 1
                return remembered[1]
            self.misses += 1
        challenge = parse_challenge(
            headers, body, body_truncated=body_truncated, body_error=body_error
        )
        size = _size(inputs)
        if size <= self.max_entry_bytes and _repeatable(challenge):
            self._remember(slot, inputs, challenge, size)
        else:
            self._forget(slot)
        return challenge

    def clear(self) -> None:
        """Forget every slot and reset the counters."""
        with self._lock:
            self._slots.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def _remember(
        self, slot: Hashable, inputs: ChallengeInputs, challenge: Challenge, size: int
    ) -> None:
        with self._lock:
            previous = self._slots.pop(slot, None)
            if previous is not None:
                self._bytes -= previous[2]
            self._slots[slot] = (inputs, challenge, size)
            self._bytes += size
            while len(self._slots) > self.max_slots or self._bytes > self.max_bytes:
                self._bytes -= self._slots.popitem(last=False)[1][2]

    def _forget(self, slot: Hashable) -> None:
        with self._lock:
            previous = self._slots.pop(slot, None)
            if previous is not None:
                self._bytes -= previous[2]


_TRANSIENT_CODES = frozenset({"challenge-unreadable", "bazaar-unreadable"})
"""Findings of an internal error (a monitor bug, MemoryError...): the next try may differ."""


def _repeatable(challenge: Challenge) -> bool:
    """Return whether a fresh parse of the same inputs is certain to give this challenge again."""
    return not any(finding.code in _TRANSIENT_CODES for finding in challenge.findings)
