"""Render an offer's atomic amount as a price people read, with exact decimal arithmetic.

USD stablecoins read `$5.00`, `$0.001`; other known tokens `0.05 MegaUSD`; anything whose
decimals are not known stays in atomic units with the full asset address, because guessing
decimals (say, 6) misstates 18-decimal tokens by a factor of 10¹². Pure: stdlib only.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

from monitor.x402.assets import AssetRow

__all__ = ["MAX_AMOUNT_DIGITS", "UINT256_MAX", "amount_fits_uint256", "format_price", "to_decimal"]

UINT256_MAX = 2**256 - 1
"""The largest amount an EVM token (and the SDKs' bigint/uint256 types) can represent."""
MAX_AMOUNT_DIGITS = len(str(UINT256_MAX))
"""78: no uint256 needs more decimal digits, so longer amount texts are refused unparsed."""

_DIGITS = re.compile(r"[0-9]+")
_CENT = Decimal("0.01")


def amount_fits_uint256(amount: str) -> bool:
    """Return whether ASCII digits `amount` has at most 78 digits and is at most 2^256-1.

    The length is checked first, so a 100,000-digit amount costs no int() parse (Python
    refuses to parse over 4300 digits anyway). Leading zeros count as digits: no SDK needs
    them, and the amount is kept and shown as sent.
    """
    if len(amount) < MAX_AMOUNT_DIGITS:
        return True
    return len(amount) == MAX_AMOUNT_DIGITS and int(amount) <= UINT256_MAX


def to_decimal(amount: str, decimals: int) -> Decimal:
    """Return `amount` atomic units as a token amount, exactly, without trailing zeros.

    Raises ValueError unless `amount` is ASCII digits and `decimals` is not negative.
    """
    if _DIGITS.fullmatch(amount) is None or decimals < 0:
        raise ValueError(f"not an atomic amount: {amount[:40]!r} with {decimals} decimals")
    # Enough precision for every digit: the default 28 would round long amounts.
    with localcontext() as context:
        context.prec = len(amount) + decimals + 2
        value = Decimal(amount).scaleb(-decimals).normalize()
        # normalize() turns 100 into 1E+2; re-quantizing to 1 keeps it a plain integer.
        return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def _plain(value: Decimal) -> str:
    return format(value, "f")


def format_price(amount: str, row: AssetRow | None, asset: str) -> str:
    """Return the display price of `amount` atomic units of `asset` (its table row or None).

    USD rows: `$` with at least two decimals and as many more as needed (`$5.00`, `$0.000001`).
    Other rows with known decimals: `0.05 MegaUSD`. Unknown asset, or unknown decimals:
    `10000 atomic units of <asset>` (the seller's `extra.decimals` is not trusted).
    Raises ValueError unless `amount` is a string of ASCII digits.
    """
    if _DIGITS.fullmatch(amount) is None:
        raise ValueError(f"not an atomic amount: {amount[:40]!r}")
    if row is None or row.decimals is None:
        return f"{_plain(to_decimal(amount, 0))} atomic units of {asset}"
    value = to_decimal(amount, row.decimals)
    if not row.usd:
        return f"{_plain(value)} {row.symbol}"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        with localcontext() as context:
            context.prec = len(amount) + 4
            value = value.quantize(_CENT)
    return f"${_plain(value)}"
