"""The asset table (reference §3.2), address formats and the asset verdict."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.models import AssetVerdict
from monitor.x402.assets import (
    ASSETS,
    AssetRow,
    asset_verdict,
    domain_issues,
    lookup,
    transfer_method,
)
from monitor.x402.formats import address_problem, is_evm_address, is_solana_address, namespace_of
from monitor.x402.networks import AMBIGUOUS_V1_NETWORKS, KNOWN_CAIP2, V1_NETWORKS, is_caip2

BASE = "eip155:8453"
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
SOLANA = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
SOLANA_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
MEGAETH = "eip155:4326"
MEGA_USD = "0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7"


# The table -----------------------------------------------------------------------------------


def test_table_size_and_unique_keys() -> None:
    assert len(ASSETS) == 59
    keys = {(row.caip2, row.address.lower()) for row in ASSETS}
    assert len(keys) == len(ASSETS)


@pytest.mark.parametrize("row", ASSETS, ids=lambda row: f"{row.caip2}/{row.symbol}")
def test_every_row_is_well_formed(row: AssetRow) -> None:
    assert is_caip2(row.caip2)
    assert row.caip2 in KNOWN_CAIP2, "every asset network is a known network"
    assert address_problem(namespace_of(row.caip2), row.address) is None
    assert row.source
    assert row.symbol
    assert row.decimals is None or row.decimals >= 0
    assert lookup(row.caip2, row.address) is row
    if row.caip2.startswith("eip155:"):
        assert row.name
        assert row.version
        assert row.method in {"eip3009", "permit2"}
    else:
        assert (row.name, row.version) == (None, None)
        assert row.method in {"spl", "token-2022", "native"}
    # Low confidence exactly where the source does not store a version (legacy TS, "("2")").
    assert row.version_confirmed == ("low confidence" not in row.source)


def test_low_confidence_rows_are_the_legacy_ts_ones() -> None:
    chains = sorted(int(row.caip2[7:]) for row in ASSETS if not row.version_confirmed)
    assert chains == [1514, 2741, 3338, 4689, 11124, 41923, 80002, 324705682]
    assert all(row.version == "2" for row in ASSETS if not row.version_confirmed)


@pytest.mark.parametrize(
    ("caip2", "address", "symbol", "decimals", "name", "version", "method", "usd"),
    [
        (BASE, BASE_USDC, "USDC", 6, "USD Coin", "2", "eip3009", True),
        ("eip155:84532", "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", 6, "USDC", "2",
         "eip3009", True),
        ("eip155:143", "0x754704Bc059F8C67012fEd69BC8A327a5aafb603", "USDC", 6, "USDC", "2",
         "eip3009", True),
        ("eip155:43114", "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", "USDC", 6, "USD Coin",
         "2", "eip3009", True),
        (MEGAETH, MEGA_USD, "MegaUSD", 18, "MegaUSD", "1", "permit2", False),
        ("eip155:31612", "0xdD468A1DDc392dcdbEf6db6e34E89AA338F9F186", "mUSD", 18, "Mezo USD",
         "1", "permit2", False),
        ("eip155:14", "0xe7cd86e13AC4309349F30B3435a9d337750fC82D", "USDT0", 6, "USD₮0", "1",
         "eip3009", True),
        ("eip155:988", "0x779Ded0c9e1022225f8E0630b35a9b54bE713736", "USDT0", 6, "USDT0", "1",
         "eip3009", True),
        ("eip155:4689", "0xcdf79194c6c285077a58da47641d4dbe51f63542", "USDC", None,
         "Bridged USDC", "2", "eip3009", True),
        (SOLANA, SOLANA_USDC, "USDC", 6, None, None, "spl", True),
        (SOLANA, "CASHx9KJUStyftLFWGvEVf59SGeG9sh5FfcnZMVPCASH", "CASH", 6, None, None,
         "token-2022", True),
        ("stellar:pubnet", "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75", "USDC", 7,
         None, None, "native", True),
    ],
)  # fmt: skip
def test_rows_from_the_reference(
    caip2: str,
    address: str,
    symbol: str,
    decimals: int | None,
    name: str | None,
    version: str | None,
    method: str,
    usd: bool,
) -> None:
    row = lookup(caip2, address)
    assert row is not None
    assert (row.symbol, row.decimals, row.name, row.version, row.method, row.usd) == (
        symbol,
        decimals,
        name,
        version,
        method,
        usd,
    )


def test_evm_table_agrees_with_the_python_sdk() -> None:
    """Every EVM default asset of the official SDK (dev dependency) is in the table, unchanged."""
    evm = pytest.importorskip("x402.mechanisms.evm.default_assets", exc_type=ImportError)
    for caip2, entries in evm.DEFAULT_ASSETS.items():
        for entry in entries:
            row = lookup(caip2, entry["asset"])
            assert row is not None, (caip2, entry)
            assert (row.name, row.version, row.decimals, row.symbol) == (
                entry["name"],
                entry["version"],
                entry["decimals"],
                entry["symbol"],
            )
            assert row.method == entry.get("asset_transfer_method", "eip3009")


def test_solana_table_agrees_with_the_python_sdk() -> None:
    """Every Solana default asset of the SDK is in the table (skipped without x402[svm])."""
    svm = pytest.importorskip("x402.mechanisms.svm.default_assets", exc_type=ImportError)
    for caip2, entries in svm.DEFAULT_ASSETS.items():
        for entry in entries:
            row = lookup(caip2, entry["asset"])
            assert row is not None, (caip2, entry)
            assert (row.decimals, row.symbol) == (entry["decimals"], entry["symbol"])


def test_ambiguous_chains_keep_the_ts_id_and_the_story_asset_sits_there() -> None:
    assert set(AMBIGUOUS_V1_NETWORKS) == {"story", "educhain", "skale-base-sepolia"}
    for name, ids in AMBIGUOUS_V1_NETWORKS.items():
        assert V1_NETWORKS[name] == ids[0]
    assert lookup("eip155:1514", "0xF1815bd50389c46847f0Bda824eC8da914045D14") is not None
    assert lookup("eip155:1513", "0xF1815bd50389c46847f0Bda824eC8da914045D14") is None


# Lookup --------------------------------------------------------------------------------------


def test_evm_lookup_ignores_letter_case_solana_does_not() -> None:
    assert lookup(BASE, BASE_USDC.lower()) is lookup(BASE, BASE_USDC.upper().replace("0X", "0x"))
    assert lookup(BASE, f" {BASE_USDC} ") is not None
    assert lookup(SOLANA, SOLANA_USDC) is not None
    assert lookup(SOLANA, SOLANA_USDC.lower()) is None
    assert lookup("eip155:84532", BASE_USDC) is None  # right token, wrong network
    assert lookup(None, BASE_USDC) is None
    assert lookup(BASE, None) is None


# Verdict -------------------------------------------------------------------------------------

DOMAIN = {"name": "USD Coin", "version": "2"}


@pytest.mark.parametrize(
    ("caip2", "asset", "scheme", "extra", "verdict"),
    [
        (BASE, BASE_USDC, "exact", DOMAIN, AssetVerdict.VERIFIED),
        (BASE, BASE_USDC.lower(), "exact", DOMAIN, AssetVerdict.VERIFIED),
        (BASE, BASE_USDC, "exact", {"name": "USDC", "version": "2"}, AssetVerdict.MISMATCH),
        (BASE, BASE_USDC, "exact", {"name": "USD Coin", "version": "1"}, AssetVerdict.MISMATCH),
        (BASE, BASE_USDC, "exact", {"name": "USD Coin"}, AssetVerdict.MISMATCH),
        (BASE, BASE_USDC, "exact", None, AssetVerdict.MISMATCH),
        (BASE, BASE_USDC, "exact", {**DOMAIN, "name": "X", "assetTransferMethod": "permit2"},
         AssetVerdict.UNVERIFIED),
        (BASE, BASE_USDC, "exact", {"assetTransferMethod": "permit2"}, AssetVerdict.VERIFIED),
        (BASE, BASE_USDC, "upto", {"name": "X"}, AssetVerdict.VERIFIED),
        (BASE, "0x" + "0" * 40, "exact", DOMAIN, AssetVerdict.UNVERIFIED),
        ("eip155:999999", BASE_USDC, "exact", DOMAIN, AssetVerdict.UNVERIFIED),
        (MEGAETH, MEGA_USD, "exact", {"name": "MegaUSD", "version": "1"}, AssetVerdict.MISMATCH),
        (MEGAETH, MEGA_USD, "exact", {"assetTransferMethod": "permit2"}, AssetVerdict.VERIFIED),
        ("eip155:80002", "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582", "exact",
         {"name": "USDC", "version": "1"}, AssetVerdict.UNVERIFIED),
        ("eip155:80002", "0x41E94Eb019C0762f9Bfcf9Fb1E58725BfB0e7582", "exact",
         {"name": "USD Coin", "version": "2"}, AssetVerdict.MISMATCH),
        (SOLANA, SOLANA_USDC, "exact", {"feePayer": "x"}, AssetVerdict.VERIFIED),
        (SOLANA, SOLANA_USDC, "exact", None, AssetVerdict.VERIFIED),
        (None, BASE_USDC, "exact", DOMAIN, AssetVerdict.UNKNOWN),
        (BASE, None, "exact", DOMAIN, AssetVerdict.UNKNOWN),
        (BASE, "  ", "exact", DOMAIN, AssetVerdict.UNKNOWN),
        (BASE, 5, "exact", DOMAIN, AssetVerdict.UNKNOWN),
    ],
)  # fmt: skip
def test_asset_verdict(
    caip2: str | None, asset: Any, scheme: Any, extra: Any, verdict: AssetVerdict
) -> None:
    assert asset_verdict(caip2, asset, scheme, extra) is verdict


def test_domain_issues_only_for_differing_strings() -> None:
    row = lookup(BASE, BASE_USDC)
    assert row is not None
    assert domain_issues(row, DOMAIN) == []
    assert domain_issues(row, {"name": 5, "version": None}) == []
    assert domain_issues(row, "not an object") == []
    [issue] = domain_issues(row, {"name": "USDC", "version": "2"})
    assert (issue.key, issue.expected, issue.actual, issue.confirmed) == (
        "name",
        "USD Coin",
        "USDC",
        True,
    )


@pytest.mark.parametrize(
    ("extra", "method"),
    [(None, "eip3009"), ({}, "eip3009"), ([], "eip3009"), ({"assetTransferMethod": 3}, 3),
     ({"assetTransferMethod": "permit2"}, "permit2")],
)  # fmt: skip
def test_transfer_method_defaults_to_eip3009(extra: Any, method: Any) -> None:
    assert transfer_method(extra) == method


# Address formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (BASE_USDC, True),
        (BASE_USDC.lower(), True),
        ("0x" + "A" * 40, True),
        ("0X" + "a" * 40, False),
        ("0x" + "a" * 39, False),
        ("0x" + "a" * 41, False),
        ("0x" + "g" * 40, False),
        (" " + BASE_USDC, False),
        ("", False),
    ],
)
def test_evm_addresses(value: str, ok: bool) -> None:
    assert is_evm_address(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (SOLANA_USDC, True),
        ("11111111111111111111111111111111", True),  # the System Program: 32 zero bytes
        ("1" * 31, False),
        ("z" * 44, False),  # 44 characters but 33 bytes
        ("0" + SOLANA_USDC[1:], False),  # 0 is not in the base58 alphabet
        ("...", False),
        (BASE_USDC, False),
        ("", False),
        ("１" * 32, False),
    ],
)
def test_solana_addresses(value: str, ok: bool) -> None:
    assert is_solana_address(value) is ok


def test_address_problem_by_namespace() -> None:
    assert address_problem("eip155", SOLANA_USDC) == "is not an EVM address (0x + 40 hex digits)"
    assert address_problem("solana", BASE_USDC) == "is not a Solana address (base58 of 32 bytes)"
    for namespace in ("stellar", "ach", "aptos", None):
        assert address_problem(namespace, "merchant") is None


@pytest.mark.parametrize(
    ("caip2", "namespace"),
    [(BASE, "eip155"), (SOLANA, "solana"), ("base", None), (None, None), ("a:b:c", "a")],
)
def test_namespace_of(caip2: str | None, namespace: str | None) -> None:
    assert namespace_of(caip2) == namespace
