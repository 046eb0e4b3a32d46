"""Display prices: exact decimals from the asset table, `$` for USD stablecoins."""

from __future__ import annotations

from decimal import Decimal

import pytest

from monitor.x402.assets import AssetRow, lookup
from monitor.x402.price import format_price, to_decimal

BASE_USDC = lookup("eip155:8453", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
MEGA_USD = lookup("eip155:4326", "0xFAfDdbb3FC7688494971a79cc65DCa3EF82079E7")
MEZO_USD = lookup("eip155:31612", "0xdD468A1DDc392dcdbEf6db6e34E89AA338F9F186")
STELLAR_USDC = lookup("stellar:pubnet", "CCW67TSZV3SSS2HXMBQ5JFGCKJNXKZM7UQUWUZPUTHXSTZLEO7SJMI75")
IOTEX_USDC = lookup("eip155:4689", "0xcdf79194c6c285077a58da47641d4dbe51f63542")
UNKNOWN = "0xAbC0000000000000000000000000000000000001"


def _row(row: AssetRow | None) -> AssetRow:
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("amount", "price"),
    [
        ("5000000", "$5.00"),
        ("10000", "$0.01"),
        ("100000", "$0.10"),
        ("120000", "$0.12"),
        ("1000", "$0.001"),
        ("1234", "$0.001234"),
        ("1", "$0.000001"),
        ("0", "$0.00"),
        ("000010000", "$0.01"),
        ("1000000000000", "$1000000.00"),
        ("1000000000001", "$1000000.000001"),
        ("9" * 40, "$" + "9" * 34 + "." + "9" * 6),
    ],
)
def test_usd_stablecoins_show_dollars_with_at_least_two_decimals(amount: str, price: str) -> None:
    assert format_price(amount, _row(BASE_USDC), "ignored") == price


@pytest.mark.parametrize(
    ("row", "amount", "price"),
    [
        (MEGA_USD, "50000000000000000", "0.05 MegaUSD"),
        (MEGA_USD, "1000000000000000000", "1 MegaUSD"),
        (MEGA_USD, "100000000000000000000", "100 MegaUSD"),
        (MEGA_USD, "10000", "0.00000000000001 MegaUSD"),
        (MEGA_USD, "1", "0.000000000000000001 MegaUSD"),
        (MEZO_USD, "2500000000000000000", "2.5 mUSD"),
    ],
)
def test_other_known_tokens_show_their_symbol_and_real_decimals(
    row: AssetRow | None, amount: str, price: str
) -> None:
    assert format_price(amount, _row(row), "ignored") == price


def test_seven_decimal_usdc_on_stellar() -> None:
    assert format_price("100000", _row(STELLAR_USDC), "ignored") == "$0.01"


def test_unknown_assets_and_unknown_decimals_stay_atomic() -> None:
    assert format_price("10000", None, UNKNOWN) == f"10000 atomic units of {UNKNOWN}"
    assert format_price("0010000", None, UNKNOWN) == f"10000 atomic units of {UNKNOWN}"
    iotex = _row(IOTEX_USDC)
    assert iotex.decimals is None
    assert format_price("10000", iotex, iotex.address) == f"10000 atomic units of {iotex.address}"


@pytest.mark.parametrize("amount", ["", "1.5", "-1", " 1", "１", "1e6", "0x10"])
def test_non_atomic_amounts_are_refused(amount: str) -> None:
    with pytest.raises(ValueError, match="not an atomic amount"):
        format_price(amount, _row(BASE_USDC), "x")


@pytest.mark.parametrize(
    ("amount", "decimals", "value"),
    [
        ("10000", 6, Decimal("0.01")),
        ("1", 18, Decimal("1E-18")),
        ("100", 0, Decimal(100)),
        ("0", 6, Decimal(0)),
        ("123456789012345678901234567890123456789", 18,
         Decimal("123456789012345678901.234567890123456789")),
    ],
)  # fmt: skip
def test_to_decimal_is_exact(amount: str, decimals: int, value: Decimal) -> None:
    result = to_decimal(amount, decimals)
    assert result == value
    assert format(result, "f") == format(value, "f")
    assert "E" not in format(result, "f")


def test_to_decimal_refuses_negative_decimals() -> None:
    with pytest.raises(ValueError, match="not an atomic amount"):
        to_decimal("1", -1)
