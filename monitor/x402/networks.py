"""Know the networks x402 payments run on: v1 names, CAIP-2 ids and the mapping between them.

Data first (reference/x402-protocol.md §3.1), functions second; the asset table of §3.2 lives
in `monitor.x402.assets`. Pure: stdlib only.
"""

from __future__ import annotations

import re

V1_NETWORKS: dict[str, str] = {
    "base": "eip155:8453",
    "base-sepolia": "eip155:84532",
    "avalanche": "eip155:43114",
    "avalanche-fuji": "eip155:43113",
    "polygon": "eip155:137",
    "polygon-amoy": "eip155:80002",
    "sei": "eip155:1329",
    "sei-testnet": "eip155:1328",
    "iotex": "eip155:4689",
    "peaq": "eip155:3338",
    "abstract": "eip155:2741",
    "abstract-testnet": "eip155:11124",
    # The next three disagree between SDKs (see AMBIGUOUS_V1_NETWORKS); TS/Go ids listed first.
    "story": "eip155:1514",
    "educhain": "eip155:41923",
    "skale-base-sepolia": "eip155:324705682",
    "megaeth": "eip155:4326",
    "monad": "eip155:143",
    "monad-testnet": "eip155:10143",
    "stable": "eip155:988",
    "stable-testnet": "eip155:2201",
    "celo": "eip155:42220",
    "flare": "eip155:14",
    "ethereum": "eip155:1",
    "sepolia": "eip155:11155111",
    "solana": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    "solana-devnet": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    "solana-testnet": "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
}
"""Every v1 network name of reference §3.1 → its CAIP-2 id (TS/Go value where SDKs disagree)."""

AMBIGUOUS_V1_NETWORKS: dict[str, tuple[str, ...]] = {
    "story": ("eip155:1514", "eip155:1513"),
    "educhain": ("eip155:41923", "eip155:656476"),
    "skale-base-sepolia": ("eip155:324705682", "eip155:1444673419"),
}
"""v1 names whose chain id differs between the TS/Go SDKs (first) and the Python SDK 2.25."""

SOLANA_NETWORKS: frozenset[str] = frozenset(
    {
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
    }
)
"""The only Solana CAIP-2 ids clients recognise (mainnet, devnet, testnet genesis hashes)."""

ALGORAND_NETWORKS: frozenset[str] = frozenset(
    {
        "algorand:wGHE2Pwdvd7S12BL5FaOP20EGYesN73ktiC1qzkkit8=",
        "algorand:SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI=",
    }
)
"""x402's Algorand ids: base64 references outside the CAIP-2 grammar, so allow-listed."""

OTHER_NETWORKS: frozenset[str] = frozenset(
    {"stellar:pubnet", "stellar:testnet", "aptos:1", "aptos:2", "tvm:-239", "tvm:-3"}
)
"""Non-EVM, non-Solana v2 ids documented by the SDKs (reference §3.1)."""

ASSET_TABLE_NETWORKS: frozenset[str] = frozenset(
    f"eip155:{chain}"
    for chain in (
        *(42161, 421614, 31611, 31612, 11142220, 723487, 72344),
        *(36900, 190415, 181228, 50, 51, 38833, 5042, 5042002),
    )
)
"""EVM chains without a v1 name that the asset table of reference §3.2 lists (Arbitrum, Mezo…)."""

KNOWN_CAIP2: frozenset[str] = frozenset(
    set(V1_NETWORKS.values())
    | ASSET_TABLE_NETWORKS
    | {chain for ids in AMBIGUOUS_V1_NETWORKS.values() for chain in ids}
    | SOLANA_NETWORKS
    | ALGORAND_NETWORKS
    | OTHER_NETWORKS
)
"""Every CAIP-2 id the reference names."""

CAIP2_PATTERN = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
"""CAIP-2 `namespace:reference` grammar (use with fullmatch)."""


def is_caip2(value: str) -> bool:
    """Return whether `value` is a syntactically valid CAIP-2 id or an allow-listed Algorand id."""
    return value in ALGORAND_NETWORKS or CAIP2_PATTERN.fullmatch(value) is not None


def is_ambiguous(name_or_id: str) -> bool:
    """Return whether a v1 name maps to different chain ids depending on the SDK."""
    return name_or_id in AMBIGUOUS_V1_NETWORKS


def to_caip2(name_or_id: str) -> str | None:
    """Return the CAIP-2 id of a v1 name, the id itself for a CAIP-2 id, else None.

    Exact match only: x402 clients compare network strings verbatim, so `Base` is not `base`.
    For an ambiguous v1 name the TS/Go id is returned (check `is_ambiguous` to flag it).
    """
    if name_or_id in V1_NETWORKS:
        return V1_NETWORKS[name_or_id]
    if is_caip2(name_or_id):
        return name_or_id
    return None


def is_known_network(name_or_id: str) -> bool:
    """Return whether `name_or_id` is a v1 name or a CAIP-2 id listed in the reference."""
    return name_or_id in V1_NETWORKS or name_or_id in KNOWN_CAIP2
