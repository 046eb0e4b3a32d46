"""Check address formats per CAIP-2 namespace (reference §8 rule 14).

`eip155` addresses are `0x` + 40 hex digits; Solana addresses are base58 text that decodes to
exactly 32 bytes. Other namespaces (Stellar, Aptos, Algorand, fiat rails such as `ach:us`) have
no format check here: v2 allows role constants and ISO-4217 codes there. The EIP-55 checksum is
not checked: it needs Keccak-256, which the stdlib lacks (`hashlib.sha3_256` is a different
hash) and the core takes no crypto dependency for one warning. Pure: stdlib + base58.
"""

from __future__ import annotations

import re
from functools import lru_cache

import base58

__all__ = ["address_problem", "is_evm_address", "is_solana_address", "namespace_of"]

_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
"""A Solana public key is 32 bytes: 32 to 44 base58 characters (checked before decoding)."""


def namespace_of(caip2: str | None) -> str | None:
    """Return the namespace of a CAIP-2 id (`eip155` for `eip155:8453`), None without one."""
    if caip2 is None or ":" not in caip2:
        return None
    return caip2.split(":", 1)[0]


def is_evm_address(value: str) -> bool:
    """Return whether `value` is `0x` followed by exactly 40 hex digits (any letter case)."""
    return _EVM_ADDRESS.fullmatch(value) is not None


def is_solana_address(value: str) -> bool:
    """Return whether `value` is base58 text that decodes to exactly 32 bytes."""
    return _BASE58.fullmatch(value) is not None and _decodes_to_32_bytes(value)


# base58 decoding is pure Python and a Solana offer asks up to four times (payTo, asset,
# feePayer, asset lookup); the same few keys recur on every check. ≤ 44-character keys only.
@lru_cache(maxsize=4096)
def _decodes_to_32_bytes(value: str) -> bool:
    try:
        return len(base58.b58decode(value)) == 32
    except ValueError:  # cannot happen after the alphabet check; kept so junk never raises
        return False


def address_problem(namespace: str | None, value: str) -> str | None:
    """Return why `value` is not an address of `namespace` ("" never), or None when it is fine.

    None also for namespaces without a format rule, so callers can run it on every offer.
    """
    if namespace == "eip155" and not is_evm_address(value):
        return "is not an EVM address (0x + 40 hex digits)"
    if namespace == "solana" and not is_solana_address(value):
        return "is not a Solana address (base58 of 32 bytes)"
    return None
