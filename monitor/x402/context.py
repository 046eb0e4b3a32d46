"""Give the rule modules what they share: the offer under check and the required-string check.

Split from `rules.py` so that rule modules (`rules`, `chain_rules`) can import it without
importing each other. Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from monitor.models import Finding, JsonValue
from monitor.x402.codes import finding, type_name
from monitor.x402.formats import namespace_of
from monitor.x402.networks import to_caip2

MAX_OFFERS = 100
"""Only this many `accepts` entries are checked and kept: findings stay bounded per check."""
MAX_TIMEOUT_SECONDS = 2**53 - 1
"""Largest `maxTimeoutSeconds` accepted: the largest whole number JavaScript holds exactly."""


@dataclass(frozen=True)
class OfferContext:
    """One `accepts[index]` entry (already known to be an object) and its challenge's version."""

    entry: Mapping[str, JsonValue]
    index: int
    version: int

    def path(self, key: str) -> str:
        """Return the JSON path of `key` inside this entry, e.g. `accepts[0].payTo`."""
        return f"accepts[{self.index}].{key}"

    @property
    def amount_key(self) -> str:
        """Return the amount field of this version: `amount` (v2) or `maxAmountRequired` (v1)."""
        return "amount" if self.version == 2 else "maxAmountRequired"

    # Cached: about ten rules ask per offer. The instance is frozen and `entry` is never
    # mutated during validation, so the first answer stays right.
    @cached_property
    def caip2(self) -> str | None:
        """Return the network as a CAIP-2 id (v1 names mapped), None when not readable."""
        return offer_caip2(self.entry)

    @cached_property
    def namespace(self) -> str | None:
        """Return the CAIP-2 namespace of the network (`eip155`, `solana`…), None if unknown."""
        return namespace_of(self.caip2)

    @property
    def extra(self) -> JsonValue:
        """Return `extra` as sent (None when absent)."""
        return self.entry.get("extra")


def offer_caip2(entry: Mapping[str, JsonValue]) -> str | None:
    """Return the CAIP-2 id of an entry's `network` (v1 names mapped, either version), or None.

    A v1 name in a v2 challenge is still mapped: it is reported as an error, but mapping it
    lets the owner see the address and asset findings too.
    """
    network = entry.get("network")
    return to_caip2(network) if isinstance(network, str) else None


def required_string(
    obj: Mapping[str, JsonValue], key: str, path: str, fix: str
) -> Iterator[Finding]:
    """Yield field-missing / field-type / field-empty unless `obj[key]` is a non-blank string."""
    if key not in obj or obj[key] is None:
        yield finding("field-missing", path, f"{path} missing", fix)
    elif not isinstance(obj[key], str):
        yield finding("field-type", path, f"{path} is {type_name(obj[key])}", fix)
    elif not obj[key].strip():
        yield finding("field-empty", path, f"{path} empty", fix)
