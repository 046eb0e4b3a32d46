"""Know the default x402 payment assets (reference §3.2) and judge an offer's asset against them.

`ASSETS` is data: one `AssetRow` per (network, token) with its decimals, display symbol, EIP-712
domain, transfer method and the source it was copied from. `lookup` finds a row by CAIP-2 id
and address; `domain_issues` and `asset_verdict` compare an offer's `extra` with the row.
Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.models import AssetVerdict, JsonValue
from monitor.x402.formats import namespace_of

__all__ = [
    "ASSETS",
    "TRANSFER_METHODS",
    "AssetRow",
    "DomainIssue",
    "asset_verdict",
    "domain_issues",
    "lookup",
    "transfer_method",
]

TRANSFER_METHODS: frozenset[str] = frozenset({"eip3009", "permit2", "erc7710"})
"""Valid EVM `exact` values of `extra.assetTransferMethod` (absent means eip3009)."""


@dataclass(frozen=True)
class AssetRow:
    """One known token on one network.

    `name`/`version` are the EIP-712 domain an EIP-3009 signature needs (None outside EVM).
    `version_confirmed` is False where the source does not store a version (legacy TS hard-codes
    "2"): a different version is then only suspicious, not proven wrong. `decimals` is None when
    no source states it (prices then stay in atomic units). `usd` marks USD stablecoins.
    """

    caip2: str
    address: str
    symbol: str
    decimals: int | None
    name: str | None
    version: str | None
    method: str
    """eip3009 | permit2 (EVM), spl | token-2022 (Solana), or native (other ledgers)."""
    usd: bool
    source: str
    version_confirmed: bool = True


_PY_EVM = "PY x402 2.25.0 x402/mechanisms/evm/default_assets.py"
_PY_SVM = "PY x402 2.25.0 x402/mechanisms/svm/default_assets.py"
_PY_TVM = "PY x402 2.25.0 x402/mechanisms/tvm/constants.py + default_assets.py"
_LEGACY = "CB legacy TS types/shared/evm/config.ts + legacy Python chains.py"
_LEGACY_TS = (
    "CB legacy TS types/shared/evm/config.ts (usdcName); version not stored, "
    'middleware hard-codes "2": low confidence'
)
_CB_DOCS = "CB docs/core-concepts/network-and-token-support.mdx"


def _evm(
    chain: int,
    address: str,
    symbol: str,
    name: str,
    version: str,
    decimals: int | None = 6,
    *,
    method: str = "eip3009",
    usd: bool = True,
    source: str = _PY_EVM,
) -> AssetRow:
    return AssetRow(
        caip2=f"eip155:{chain}",
        address=address,
        symbol=symbol,
        decimals=decimals,
        name=name,
        version=version,
        method=method,
        usd=usd,
        source=source,
        version_confirmed=source != _LEGACY_TS,
    )


def _other(
    caip2: str, address: str, symbol: str, decimals: int, method: str, source: str
) -> AssetRow:
    return AssetRow(caip2, address, symbol, decimals, None, None, method, True, source)


_SOL = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
_SOL_DEV = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
_SOL_TEST = "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z"
_USDC_SOL_DEV = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
_USDG_SOL_DEV = "4F6PM96JJxngmHnZLBh9n58RH4aTVNWvDs2nuwrT5BP7"
_PYUSD_SOL_DEV = "CXk2AMBfi3TwaEL2468s6zP8xq9NxTXjp9gjMgzeUynM"
_RADIUS_SBC = "0x33ad9e4BD16B69B5BFdED37D8B5D9fF9aba014Fb"
_HPP_USDC = "0x401eCb1D350407f13ba348573E5630B83638E30D"
_ARC_USDC = "0x3600000000000000000000000000000000000000"

# fmt: off
ASSETS: tuple[AssetRow, ...] = (
    # EVM, PY 2.25 (newest; reference §3.2 primary table)
    _evm(8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USDC", "USD Coin", "2"),
    _evm(84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", "USDC", "2"),
    _evm(1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USDC", "USD Coin", "2"),
    # Avalanche: legacy Python said "USDC"; PR x402-foundation/x402#271 fixed it to "USD Coin".
    _evm(43114, "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", "USDC", "USD Coin", "2"),
    _evm(137, "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", "USDC", "USD Coin", "2"),
    _evm(42161, "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "USDC", "USD Coin", "2"),
    _evm(421614, "0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d", "USDC", "USD Coin", "2"),
    # Monad: on-chain name() is "USDC" (ISS x402-foundation/x402#3102, fixed by #3105/#3153).
    _evm(143, "0x754704Bc059F8C67012fEd69BC8A327a5aafb603", "USDC", "USDC", "2"),
    _evm(10143, "0x534b2f3A21130d7a60830c2Df862319e593943A3", "USDC", "USDC", "2"),
    _evm(988, "0x779Ded0c9e1022225f8E0630b35a9b54bE713736", "USDT0", "USDT0", "1"),
    _evm(2201, "0x78Cf24370174180738C5B8E352B6D14c83a6c9A9", "USDT0", "USDT0", "1"),
    # No EIP-3009 on these: x402 pays them through Permit2 (EIP-2612 for gas sponsoring).
    _evm(4326, "0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7", "MegaUSD", "MegaUSD", "1", 18,
         method="permit2", usd=False),
    _evm(31611, "0x118917a40FAF1CD7a13dB0Ef56C86De7973Ac503", "mUSD", "Mezo USD", "1", 18,
         method="permit2", usd=False),
    _evm(31612, "0xdD468A1DDc392dcdbEf6db6e34E89AA338F9F186", "mUSD", "Mezo USD", "1", 18,
         method="permit2", usd=False),
    _evm(723487, _RADIUS_SBC, "SBC", "Stable Coin", "1", method="permit2", usd=False),
    _evm(72344, _RADIUS_SBC, "SBC", "Stable Coin", "1", method="permit2", usd=False),
    _evm(38833, "0xA5b8BF902b2844dA17d4506cc827F7F1681735E7", "USDC", "USDC", "1",
         method="permit2"),
    _evm(1329, "0xe15fC38F6D8c56aF07bbCBe3BAf5708A2Bf42392", "USDC", "USDC", "2"),
    _evm(1328, "0x4fCF1784B31630811181f670Aea7A7bEF803eaED", "USDC", "USDC", "2"),
    _evm(42220, "0xcebA9300f2b948710d2653dD7B07f33A8B32118C", "USDC", "USDC", "2"),
    _evm(42220, "0x48065fbBE25f71C9282ddf5e1cD6D6A887483D5e", "USDT", "Tether USD", "1"),
    _evm(42220, "0xD2ab3C9A02DBBAB236BfEC45D1d755DF4267F771", "USAT", "Tether America USD",
         "1"),
    _evm(11142220, "0x01C5C0122039549AD1493B8220cABEdD739BC44E", "USDC", "USDC", "2"),
    # Non-ASCII EIP-712 name (U+20AE): a facilitator decoding it as Latin-1 breaks (§6).
    _evm(14, "0xe7cd86e13AC4309349F30B3435a9d337750fC82D", "USDT0", "USD\u20ae0", "1"),
    _evm(36900, "0x9cb8142aEBBcdc60AF7c97Af897A67A8f3CA71C2", "USDC.e", "USDC.e", "2"),
    _evm(190415, _HPP_USDC, "USDC.e", "Bridged USDC", "2"),
    _evm(181228, _HPP_USDC, "USDC.e", "Bridged USDC", "2"),
    _evm(50, "0xfA2958CB79b0491CC627c1557F441eF849Ca8eb1", "USDC", "USDC", "2"),
    _evm(51, "0xb5AB69F7bBada22B28e79C8FFAECe55eF1c771D4", "USDC", "USDC", "2"),
    _evm(5042, _ARC_USDC, "USDC", "USDC", "2"),
    _evm(5042002, _ARC_USDC, "USDC", "USDC", "2"),
    # EVM, legacy tables only
    _evm(43113, "0x5425890298aed601595a70AB815c96711a31Bc65", "USDC", "USD Coin", "2",
         source=_LEGACY),
    _evm(80002, "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582", "USDC", "USDC", "2",
         source=_LEGACY_TS),
    _evm(4689, "0xcdf79194c6c285077a58da47641d4dbe51f63542", "USDC", "Bridged USDC", "2",
         None, source=_LEGACY_TS),
    _evm(3338, "0xbbA60da06c2c5424f03f7434542280FCAd453d10", "USDC", "USDC", "2", None,
         source=_LEGACY_TS),
    _evm(2741, "0x84a71ccd554cc1b02749b35d22f684cc8ec987e1", "USDC", "Bridged USDC", "2",
         None, source=_LEGACY_TS),
    _evm(11124, "0xe4C7fBB0a626ed208021ccabA6Be1566905E2dFc", "USDC", "Bridged USDC", "2",
         None, source=_LEGACY_TS),
    _evm(1514, "0xF1815bd50389c46847f0Bda824eC8da914045D14", "USDC", "Bridged USDC", "2",
         None, source=_LEGACY_TS),
    _evm(41923, "0x12a272A581feE5577A5dFa371afEB4b2F3a8C2F8", "USDC",
         "Bridged USDC (Stargate)", "2", None, source=_LEGACY_TS),
    _evm(324705682, "0x2e08028E3C4c2356572E096d8EF835cD5C6030bD", "USDC",
         "Bridged USDC (SKALE Bridge)", "2", None, source=_LEGACY_TS),
    # Solana (the EIP-712 domain does not apply; `extra.feePayer` instead)
    _other(_SOL, "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "USDC", 6, "spl", _PY_SVM),
    _other(_SOL, "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", "USDT", 6, "spl", _PY_SVM),
    _other(_SOL, "2u1tszSeqZ3qBWF3uNGPFc8TzMk2tdiwknnRMWGWjGWH", "USDG", 6, "token-2022",
           _PY_SVM),
    _other(_SOL, "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo", "PYUSD", 6, "token-2022",
           _PY_SVM),
    _other(_SOL, "CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH", "CASH", 6, "token-2022",
           _PY_SVM),
    _other(_SOL_DEV, _USDC_SOL_DEV, "USDC", 6, "spl", _PY_SVM),
    _other(_SOL_DEV, _USDG_SOL_DEV, "USDG", 6, "token-2022", _PY_SVM),
    _other(_SOL_DEV, _PYUSD_SOL_DEV, "PYUSD", 6, "token-2022", _PY_SVM),
    _other(_SOL_TEST, _USDC_SOL_DEV, "USDC", 6, "spl", _PY_SVM),
    _other(_SOL_TEST, _USDG_SOL_DEV, "USDG", 6, "token-2022", _PY_SVM),
    _other(_SOL_TEST, _PYUSD_SOL_DEV, "PYUSD", 6, "token-2022", _PY_SVM),
    # Other ledgers
    _other("algorand:wGHE2Pwdvd7S12BL5FaOP20EGYesN73ktiC1qzkkit8=", "31566704", "USDC", 6,
           "native", _CB_DOCS),
    _other("algorand:SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI=", "10458941", "USDC", 6,
           "native", _CB_DOCS),
    _other("stellar:pubnet", "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75", "USDC",
           7, "native", _CB_DOCS),
    _other("stellar:testnet", "CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMA",
           "USDC", 7, "native", _CB_DOCS),
    _other("aptos:1", "0xbae207659db88bea0cbead6da0ed00aac12edcdda169e591cd41c94180b46f3b",
           "USDC", 6, "native", _CB_DOCS),
    _other("aptos:2", "0x69091fbab5f7d635ee7ac5098cf0c1efbe31d68fec0f2cd565e8d168daf52832",
           "USDC", 6, "native", _CB_DOCS),
    _other("tvm:-239", "0:b113a994b5024a16719f69139328eb759596c38a25f59028b146fecdc3621dfe",
           "USDT", 6, "native", _PY_TVM),
    _other("tvm:-3", "0:f418a04cf196ebc959366844a6cdf53a6fd6fff1eadafc892f05210bba31593e",
           "USDT", 6, "native", _PY_TVM),
)
# fmt: on

_CASE_INSENSITIVE = frozenset({"eip155", "aptos", "tvm"})
"""Namespaces whose addresses are hex (letter case carries no meaning beyond EIP-55)."""


def _key(caip2: str, address: str) -> tuple[str, str]:
    # base58 (Solana) and base32 (Stellar) are case-sensitive: folding them would match junk.
    folded = address.lower() if namespace_of(caip2) in _CASE_INSENSITIVE else address
    return caip2, folded


_INDEX: dict[tuple[str, str], AssetRow] = {_key(row.caip2, row.address): row for row in ASSETS}


def lookup(caip2: str | None, address: str | None) -> AssetRow | None:
    """Return the known asset at `address` on network `caip2`, or None.

    Hex addresses (EVM, Aptos, TON) match in any letter case; base58/base32 ones exactly.
    """
    if caip2 is None or address is None:
        return None
    return _INDEX.get(_key(caip2, address.strip()))


def transfer_method(extra: JsonValue) -> JsonValue:
    """Return the EVM `exact` transfer method an offer declares: `extra.assetTransferMethod`.

    Absent (or `extra` not an object) means the spec default "eip3009"; any other JSON value is
    returned as is so the caller can report it.
    """
    if isinstance(extra, Mapping) and "assetTransferMethod" in extra:
        return extra["assetTransferMethod"]
    return "eip3009"


@dataclass(frozen=True)
class DomainIssue:
    """One `extra.name`/`extra.version` value that differs from the known token's domain."""

    key: str
    expected: str
    actual: str
    confirmed: bool
    """False when the expected value comes from a low-confidence source (a warning only)."""


def domain_issues(row: AssetRow, extra: JsonValue) -> list[DomainIssue]:
    """Return the EIP-712 domain values of `extra` that are strings and differ from `row`.

    Missing or non-string values are not issues here (the EVM `exact` rule reports them).
    """
    if not isinstance(extra, Mapping):
        return []
    issues = []
    for key, expected, confirmed in (
        ("name", row.name, True),
        ("version", row.version, row.version_confirmed),
    ):
        actual = extra.get(key)
        if expected is not None and isinstance(actual, str) and actual != expected:
            issues.append(DomainIssue(key, expected, actual, confirmed))
    return issues


def _has_domain(extra: JsonValue) -> bool:
    return (
        isinstance(extra, Mapping)
        and isinstance(extra.get("name"), str)
        and isinstance(extra.get("version"), str)
    )


def asset_verdict(
    caip2: str | None, asset: JsonValue, scheme: JsonValue, extra: JsonValue
) -> AssetVerdict:
    """Judge an offer's asset: verified, mismatch, unverified or unknown.

    UNKNOWN without a readable network (`caip2` None) or asset string; UNVERIFIED for an asset
    not in `ASSETS`. For a known asset of an EVM `exact` offer paid by EIP-3009 (the default):
    MISMATCH when the token has no EIP-3009 (Permit2-only), when `extra.name`/`version` are
    missing, or when they differ from the table; UNVERIFIED when they differ only from a
    low-confidence value. Permit2/ERC-7710 offers do not sign the token's domain, so a
    different one there is only UNVERIFIED. Every other known asset is VERIFIED.
    """
    if caip2 is None or not isinstance(asset, str) or not asset.strip():
        return AssetVerdict.UNKNOWN
    row = lookup(caip2, asset)
    if row is None:
        return AssetVerdict.UNVERIFIED
    if namespace_of(caip2) != "eip155" or scheme != "exact":
        return AssetVerdict.VERIFIED
    issues = domain_issues(row, extra)
    if transfer_method(extra) == "eip3009":
        if row.method != "eip3009" or not _has_domain(extra):
            return AssetVerdict.MISMATCH
        if any(issue.confirmed for issue in issues):
            return AssetVerdict.MISMATCH
    return AssetVerdict.UNVERIFIED if issues else AssetVerdict.VERIFIED
