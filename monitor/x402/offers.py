"""Fold one `accepts` entry into an `Offer`: v1/v2 names, CAIP-2 network, asset verdict, price.

The Offer is what the store keeps and the pages show, so its text fields are the endpoint's
values bounded to one safe line: an identifier (scheme, network, asset, payTo) of at most
MAX_IDENTIFIER_CHARS, an amount of at most MAX_AMOUNT_CHARS, a price of at most
MAX_PRICE_CHARS. Values that fit are kept exactly as sent. Pure: stdlib + base58.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from monitor.models import JsonValue, Offer
from monitor.untrusted import clean_line
from monitor.x402.assets import asset_verdict, lookup
from monitor.x402.codes import as_int
from monitor.x402.context import MAX_TIMEOUT_SECONDS, offer_caip2
from monitor.x402.price import MAX_AMOUNT_DIGITS, amount_fits_uint256, format_price

__all__ = ["MAX_AMOUNT_CHARS", "MAX_IDENTIFIER_CHARS", "MAX_PRICE_CHARS", "fold_offer"]

MAX_IDENTIFIER_CHARS = 200
"""Longest scheme, network, asset or payTo kept: real ones are under 70 characters."""
MAX_AMOUNT_CHARS = MAX_AMOUNT_DIGITS + 2
"""Longest amount text kept: every valid amount (78 digits at most) fits unchanged."""
MAX_PRICE_CHARS = MAX_AMOUNT_DIGITS + MAX_IDENTIFIER_CHARS + 30
"""Longest display price: `<78 digits> atomic units of <asset>` fits unchanged."""


def _text(entry: Mapping[str, JsonValue], key: str, limit: int) -> str | None:
    value = entry.get(key)
    return clean_line(value, limit) if isinstance(value, str) else None


def _price(amount: JsonValue, caip2: str | None, asset: str | None) -> str | None:
    """Return the display price of a valid amount (digits, > 0, uint256) of an asset, else None.

    `asset` is the bounded one the Offer keeps: the asset table matches it exactly when the
    endpoint's value is short enough to be a real address, and never otherwise.
    """
    if not isinstance(amount, str) or asset is None or not asset.strip():
        return None
    if not (amount.isascii() and amount.isdigit()) or not amount.strip("0"):
        return None
    if not amount_fits_uint256(amount):
        return None
    return _display_price(amount, caip2, asset)


# Decimal formatting is the dearest step of folding an offer, and a price rarely changes even
# when the challenge does (nonces, timestamps). Pure and bounded: 1024 prices, each of at most
# 78 digits of a bounded asset, about 300 B.
@lru_cache(maxsize=1024)
def _display_price(amount: str, caip2: str | None, asset: str) -> str:
    return clean_line(format_price(amount, lookup(caip2, asset), asset), MAX_PRICE_CHARS)


def fold_offer(entry: JsonValue, index: int, valid: bool) -> Offer:
    """Fold one accepts entry's v1/v2 field names into an Offer (wrongly typed fields → None).

    Also derives the CAIP-2 network, the asset verdict and the display price; text fields are
    bounded (see the module docstring), and `max_timeout_seconds` is None unless it is a
    whole number in 1..MAX_TIMEOUT_SECONDS.
    """
    if not isinstance(entry, Mapping):
        return Offer(index, None, None, None, None, None, None, None, valid)
    timeout = as_int(entry.get("maxTimeoutSeconds"))
    extra = entry.get("extra")
    raw_amount = entry.get("amount")
    if not isinstance(raw_amount, str):
        raw_amount = entry.get("maxAmountRequired")
    amount = clean_line(raw_amount, MAX_AMOUNT_CHARS) if isinstance(raw_amount, str) else None
    caip2 = offer_caip2(entry)
    asset = _text(entry, "asset", MAX_IDENTIFIER_CHARS)
    return Offer(
        index=index,
        scheme=_text(entry, "scheme", MAX_IDENTIFIER_CHARS),
        network=_text(entry, "network", MAX_IDENTIFIER_CHARS),
        amount=amount,
        asset=asset,
        pay_to=_text(entry, "payTo", MAX_IDENTIFIER_CHARS),
        max_timeout_seconds=(
            timeout if timeout is not None and 0 < timeout <= MAX_TIMEOUT_SECONDS else None
        ),
        extra=extra if isinstance(extra, Mapping) else None,
        valid=valid,
        caip2=caip2,
        asset_verdict=asset_verdict(caip2, entry.get("asset"), entry.get("scheme"), extra),
        price=_price(raw_amount, caip2, asset),
    )
