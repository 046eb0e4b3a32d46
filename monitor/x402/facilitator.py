"""Judge whether an endpoint's facilitator can settle its offers, from its `/supported`.

Pure core (`monitor.discovery` fetches; `monitor.x402.supported_document` reads the document).
Verdicts (`check_offer`, `facilitator_verdict`), first rule that applies:
  unreachable → UNREACHABLE; no facilitator known → UNKNOWN; the answer is malformed (not 200
  JSON, or a shape the official SDK refuses as a whole) → INVALID; offer without version,
  scheme or network → UNKNOWN; no kind with the same x402Version, scheme and network (compared
  as CAIP-2) → UNSUPPORTED; every such kind carries an error (a Solana kind without feePayer)
  → INVALID; else SUPPORTED, with a warning when the network matched only as an alias (`base`
  against `eip155:8453`: the facilitator settles that chain; only the spelling is in doubt).
So SUPPORTED means the facilitator's answer for this offer is usable. The document's findings
are attached to every verdict they explain. Cross-check findings are about the facilitator,
not the challenge: callers must not fold them into offer or challenge validity.
"""

from __future__ import annotations

from monitor.models import Challenge, FacilitatorVerdict, Finding, Offer
from monitor.x402.facilitator_codes import facilitator_finding
from monitor.x402.networks import to_caip2
from monitor.x402.supported_document import (
    MAX_FINDINGS,
    Supported,
    SupportedKind,
    clip,
    is_solana,
    parse_supported,
    show,
)

__all__ = [
    "MAX_FINDINGS",
    "Supported",
    "SupportedKind",
    "check_offer",
    "facilitator_verdict",
    "parse_supported",
]


def check_offer(
    supported: Supported | None,
    offer: Offer,
    x402_version: int | None,
    *,
    reachable: bool = True,
) -> tuple[FacilitatorVerdict, list[Finding]]:
    """Return whether the facilitator can settle `offer`, and the findings that say why.

    See the module docstring for the order of the rules. Document findings are attached when
    the document was read, so a nonconformant facilitator is explained next to its verdict.
    """
    early = _facilitator_state(supported, reachable)
    if early is not None:
        return early
    assert supported is not None
    verdict, findings = _cross_check(supported, offer, x402_version)
    return verdict, [*supported.findings, *findings]


def facilitator_verdict(
    supported: Supported | None,
    challenge: Challenge | None,
    *,
    reachable: bool = True,
) -> tuple[FacilitatorVerdict, list[Finding]]:
    """Return the verdict of the challenge's headline offer and the findings of every offer.

    Facilitator problems (unreachable, unknown, unusable) win even without a challenge: an
    endpoint whose facilitator is down often answers 500 instead of 402 (reference §5.4).
    """
    early = _facilitator_state(supported, reachable)
    if early is not None:
        return early
    assert supported is not None
    headline = challenge.headline_offer if challenge is not None else None
    if challenge is None or headline is None:
        return FacilitatorVerdict.UNKNOWN, list(supported.findings)
    findings = list(supported.findings)
    verdict = FacilitatorVerdict.UNKNOWN
    for offer in challenge.offers:
        offer_verdict, offer_findings = _cross_check(supported, offer, challenge.version)
        findings.extend(offer_findings)
        if offer is headline:
            verdict = offer_verdict
    return verdict, findings


def _facilitator_state(
    supported: Supported | None, reachable: bool
) -> tuple[FacilitatorVerdict, list[Finding]] | None:
    """Return the verdict when the facilitator itself decides it, else None (cross-check)."""
    if not reachable:
        problem = "the facilitator's /supported did not answer"
        return FacilitatorVerdict.UNREACHABLE, [
            facilitator_finding("facilitator-unreachable", "", problem)
        ]
    if supported is None:
        problem = "no facilitator is configured or listed for this endpoint"
        return FacilitatorVerdict.UNKNOWN, [facilitator_finding("facilitator-unknown", "", problem)]
    if supported.malformed is not None:
        problem = f"the facilitator's /supported is unusable ({supported.malformed})"
        invalid = facilitator_finding("facilitator-invalid", "", problem)
        return FacilitatorVerdict.INVALID, [*supported.findings, invalid]
    return None


def _describe(version: int, scheme: str, network: str) -> str:
    return f"(v{version}, {clip(scheme)}, {clip(network)})"


def _cross_check(
    supported: Supported, offer: Offer, version: int | None
) -> tuple[FacilitatorVerdict, list[Finding]]:
    """Match one offer on (x402Version, scheme, CAIP-2 network); no document findings."""
    if version not in (1, 2) or not offer.scheme or not offer.network:
        return FacilitatorVerdict.UNKNOWN, []  # the challenge's own findings say what is missing
    assert version is not None
    caip2 = offer.caip2 or to_caip2(offer.network)
    same_chain = supported.kinds_on(offer.network, caip2)
    matches = [k for k in same_chain if k.x402_version == version and k.scheme == offer.scheme]
    path = f"accepts[{offer.index}]"
    wanted = _describe(version, offer.scheme, offer.network)
    if not matches:
        listed = ", ".join(_describe(k.x402_version, k.scheme, k.network) for k in same_chain[:8])
        problem = f"the facilitator lists no kind {wanted}; for this network it supports " + (
            listed or "nothing"
        )
        return FacilitatorVerdict.UNSUPPORTED, [
            facilitator_finding("facilitator-unsupported", f"{path}.network", problem)
        ]
    usable = [kind for kind in matches if kind.error is None]
    if not usable:  # the facilitator lists the offer, but not in a form anyone can use
        broken = matches[0]
        problem = f"the facilitator's kind {wanted} at {broken.path} is broken ({broken.error})"
        return FacilitatorVerdict.INVALID, [
            facilitator_finding("facilitator-kind-invalid", path, problem)
        ]
    findings: list[Finding] = []
    if not any(kind.network == offer.network for kind in usable):
        problem = f"{path}.network {show(offer.network)} matched {show(usable[0].network)} "
        problem += "only as the same chain; a facilitator comparing names verbatim will refuse it"
        findings.append(
            facilitator_finding("facilitator-network-alias", f"{path}.network", problem)
        )
    findings.extend(_offer_fee_payer(offer, usable, path))
    return FacilitatorVerdict.SUPPORTED, findings


def _offer_fee_payer(offer: Offer, usable: list[SupportedKind], path: str) -> list[Finding]:
    """Warn when a Solana exact offer's feePayer is not one the facilitator signs with.

    Usable Solana `exact` kinds always publish a valid feePayer (without one they are broken).
    """
    fee_payer = offer.extra.get("feePayer") if offer.extra else None
    if offer.scheme != "exact" or not is_solana(offer.network or "", usable[0].caip2):
        return []
    if not isinstance(fee_payer, str) or not fee_payer:
        return []  # missing feePayer is the challenge validator's error, not ours
    published = (k.extra.get("feePayer") for k in usable if k.extra)
    candidates = {value for value in published if isinstance(value, str)}  # lists are unhashable
    if not candidates or fee_payer in candidates:
        return []
    known = ", ".join(clip(value) for value in sorted(candidates)[:3])
    problem = f"{path}.extra.feePayer {show(fee_payer)} is not the facilitator's ({known}): "
    problem += "the facilitator will not sign as this fee payer"
    return [facilitator_finding("facilitator-feepayer-mismatch", f"{path}.extra.feePayer", problem)]
