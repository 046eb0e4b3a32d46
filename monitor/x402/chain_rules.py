"""Validate what an offer says about its chain: extra, addresses, asset, transfer method, flow.

Reference §8 rules 12 and 14–17: each function is an offer rule (or, for duplicates, an
envelope rule) listed in `rules.OFFER_RULES` / `rules.ENVELOPE_RULES`. Pure: stdlib + base58.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from monitor.models import Finding, JsonValue
from monitor.x402.assets import TRANSFER_METHODS, domain_issues, lookup, transfer_method
from monitor.x402.codes import finding, shown, type_name
from monitor.x402.context import MAX_OFFERS, OfferContext, offer_caip2
from monitor.x402.formats import address_problem, namespace_of
from monitor.x402.networks import KNOWN_CAIP2

__all__ = [
    "check_addresses",
    "check_asset",
    "check_duplicates",
    "check_evm_exact",
    "check_extra",
    "check_payment_flow",
    "check_svm_exact",
]

PAYMENT_FLOWS = frozenset({"authorization", "upfront", "escrow"})


def _text(value: JsonValue) -> str | None:
    """Return a non-blank string as is, anything else as None."""
    return value if isinstance(value, str) and value.strip() else None


def _svm_exact(ctx: OfferContext) -> bool:
    return ctx.namespace == "solana" and ctx.entry.get("scheme") == "exact"


def check_extra(ctx: OfferContext) -> Iterator[Finding]:
    """Require `extra`, when present, to be an object; null is a warning (rule 12).

    On a Solana `exact` offer a null `extra` means the fee payer is missing: `check_svm_exact`
    reports that error, so no warning here.
    """
    if "extra" not in ctx.entry:
        return
    path = ctx.path("extra")
    value = ctx.entry["extra"]
    if value is None:
        if not _svm_exact(ctx):
            yield finding("extra-null", path, f"{path} is null")
    elif not isinstance(value, Mapping):
        yield finding("extra-not-object", path, f"{path} is {type_name(value)}")


def check_addresses(ctx: OfferContext) -> Iterator[Finding]:
    """Require EVM hex `payTo`/`asset` on eip155 and base58 32-byte ones on Solana (rule 14).

    Other namespaces are not checked: v2 allows role constants and ISO-4217 codes there.
    """
    for key in ("payTo", "asset"):
        value = _text(ctx.entry.get(key))
        problem = address_problem(ctx.namespace, value) if value is not None else None
        if value is not None and problem is not None:
            path = ctx.path(key)
            yield finding("address-invalid", path, f"{path} {shown(value)} {problem}")


def check_evm_exact(ctx: OfferContext) -> Iterator[Finding]:
    """Require a valid transfer method and, for EIP-3009, the EIP-712 domain (rule 15)."""
    if ctx.namespace != "eip155" or ctx.entry.get("scheme") != "exact":
        return
    extra = ctx.extra
    if extra is not None and not isinstance(extra, Mapping):
        return  # extra-not-object already says it
    method = transfer_method(extra)
    if method not in TRANSFER_METHODS:
        path = ctx.path("extra.assetTransferMethod")
        yield finding("transfer-method-invalid", path, f"{path} is {shown(method, 40)}")
        return
    if method != "eip3009":
        return
    if not isinstance(extra, Mapping):
        path = ctx.path("extra")
        problem = f"{path} missing (EIP-3009 needs name and version)"
        yield finding("eip712-domain-missing", path, problem)
        return
    for key in ("name", "version"):
        if _text(extra.get(key)) is None:
            path = ctx.path(f"extra.{key}")
            value = extra.get(key)
            state = "missing" if value is None else f"is {type_name(value)}"
            if isinstance(value, str):
                state = "empty"
            yield finding("eip712-domain-missing", path, f"{path} {state}")


def check_svm_exact(ctx: OfferContext) -> Iterator[Finding]:
    """Require a Solana `exact` offer's `extra.feePayer`, a base58 32-byte key (rules 12, 15)."""
    if not _svm_exact(ctx):
        return
    extra = ctx.extra
    if extra is not None and not isinstance(extra, Mapping):
        return  # extra-not-object already says it
    path = ctx.path("extra.feePayer")
    fee_payer = extra.get("feePayer") if isinstance(extra, Mapping) else None
    if fee_payer is None:
        why = "extra is null" if "extra" in ctx.entry and extra is None else "missing"
        yield finding("feepayer-missing", path, f"{path} missing ({why})")
        return
    if not isinstance(fee_payer, str):
        yield finding("address-invalid", path, f"{path} is {type_name(fee_payer)}")
    elif (problem := address_problem("solana", fee_payer)) is not None:
        yield finding("address-invalid", path, f"{path} {shown(fee_payer)} {problem}")


def check_asset(ctx: OfferContext) -> Iterator[Finding]:
    """Compare the asset with the known-token table: unknown → warning, wrong domain (rule 15).

    Known EVM `exact` tokens paid by EIP-3009 must carry the table's EIP-712 name/version
    (error), or only a warning when the table's value is low-confidence; Permit2/ERC-7710 do
    not sign the token's domain, so a difference there is a warning. A Permit2-only token
    offered with the default eip3009 method is an error.
    """
    caip2, asset = ctx.caip2, _text(ctx.entry.get("asset"))
    if caip2 is None or asset is None or address_problem(ctx.namespace, asset) is not None:
        return  # network or address findings already explain why nothing can be looked up
    row = lookup(caip2, asset)
    path = ctx.path("asset")
    if row is None:
        where = caip2 if caip2 in KNOWN_CAIP2 else f"{caip2} (a network the monitor does not know)"
        problem = f"{path} {shown(asset)} is not a known token on {where}"
        yield finding("asset-unverified", path, problem)
        return
    if ctx.namespace != "eip155" or ctx.entry.get("scheme") != "exact":
        return
    extra = ctx.extra
    method = transfer_method(extra)
    if method == "eip3009" and row.method != "eip3009":
        problem = f"{path} is {row.symbol}, which has no EIP-3009 (offer uses the eip3009 default)"
        yield finding("asset-method-mismatch", path, problem)
    for issue in domain_issues(row, extra):
        key_path = ctx.path(f"extra.{issue.key}")
        problem = f"{key_path} {shown(issue.actual, 40)} is not {row.symbol}'s {issue.expected!r}"
        if method == "eip3009" and issue.confirmed:
            yield finding("asset-domain-mismatch", key_path, problem)
        elif method == "eip3009":
            why = "table value from a low-confidence source"
            yield finding("asset-domain-unconfirmed", key_path, f"{problem} ({why})")
        elif method in TRANSFER_METHODS:
            why = f"{method} does not sign it, EIP-2612 sponsoring does"
            yield finding("asset-domain-unconfirmed", key_path, f"{problem} ({why})")


def check_payment_flow(ctx: OfferContext) -> Iterator[Finding]:
    """Warn when a v2 `extra.paymentFlow` is not authorization, upfront or escrow (rule 16)."""
    extra = ctx.extra
    if ctx.version != 2 or not isinstance(extra, Mapping) or "paymentFlow" not in extra:
        return
    value = extra["paymentFlow"]
    if value not in PAYMENT_FLOWS:
        path = ctx.path("extra.paymentFlow")
        yield finding("payment-flow-unknown", path, f"{path} is {shown(value, 40)}")


def _fold(namespace: str | None, value: str) -> str:
    return value.lower() if namespace == "eip155" else value


def check_duplicates(doc: Mapping[str, JsonValue], version: int) -> Iterator[Finding]:
    """Warn once per group of entries with the same scheme, network, asset and payTo (rule 17).

    Networks compare after CAIP-2 mapping and EVM addresses in any letter case.
    """
    accepts = doc.get("accepts")
    if not isinstance(accepts, list) or len(accepts) < 2:
        return  # the common single offer cannot repeat anything
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, entry in enumerate(accepts[:MAX_OFFERS]):
        if not isinstance(entry, Mapping):
            continue
        parts = [_text(entry.get(key)) for key in ("scheme", "network", "asset", "payTo")]
        scheme, network, asset, pay_to = parts
        if scheme is None or network is None or asset is None or pay_to is None:
            continue
        caip2 = offer_caip2(entry) or network
        namespace = namespace_of(caip2)
        key = (scheme, caip2, _fold(namespace, asset), _fold(namespace, pay_to))
        groups.setdefault(key, []).append(index)
    for first, *repeats in groups.values():
        if repeats:
            path = f"accepts[{repeats[0]}]"
            more = f" (and {len(repeats) - 1} more)" if len(repeats) > 1 else ""
            problem = f"{path} repeats accepts[{first}]{more}: same scheme, network, asset, payTo"
            yield finding("offer-duplicate", path, problem)
