"""Read a facilitator's `GET /supported` and cross-check offers against it (reference §4.2, §8.20).

Pure core: stdlib and base58 only; no I/O, clock or environment (`monitor.discovery` fetches).
Document checks follow x402-conformance S0–S4: a JSON object with a flat `kinds` list; v2 kinds
need top-level `extensions` and `signers`, CAIP-2 networks, Solana genesis-hash ids, and Solana
`exact` kinds a 32-byte base58 `extra.feePayer` listed under a matching `signers` pattern.

Verdicts (`check_offer`, `facilitator_verdict`), first rule that applies:
  unreachable → UNREACHABLE; no facilitator known → UNKNOWN; document unusable (invalid AND no
  readable kind) → INVALID; offer without version/scheme/network → UNKNOWN; a kind with the same
  x402Version, scheme and network (compared as CAIP-2) → SUPPORTED, else UNSUPPORTED.
A readable but nonconformant document (grouped kinds, missing `signers`…) still cross-checks:
the kinds it lists are what the facilitator says it settles, so the verdict follows them and
the document's findings are attached to explain the doubt. Cross-check findings are about the
facilitator, not the challenge: callers must not fold them into offer or challenge validity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import base58

from monitor.models import Challenge, FacilitatorVerdict, Finding, JsonValue, Offer, Severity
from monitor.x402.codes import as_int, type_name
from monitor.x402.decode import MAX_JSON_DEPTH, JsonTooDeepError, loads_bounded
from monitor.x402.facilitator_codes import FACILITATOR_CODES
from monitor.x402.networks import SOLANA_NETWORKS, V1_NETWORKS, is_caip2, to_caip2

_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

MAX_FINDINGS = 20
"""Document findings kept; they are attached to every endpoint using the facilitator."""

SOLANA_V1_NAMES = frozenset({"solana", "solana-devnet", "solana-mainnet", "solana-testnet"})
_MAX_KEY_CHARS = 44  # 32 bytes in base58; longer input is refused before the quadratic decode


@dataclass(frozen=True)
class SupportedKind:
    """One readable `kinds[]` entry; `network` as published, `caip2` its CAIP-2 id if known."""

    x402_version: int
    scheme: str
    network: str
    caip2: str | None
    extra: Mapping[str, JsonValue] | None
    path: str = ""
    """Where the kind sits in the document, e.g. `kinds[3]` or `kinds["2"][0]` when grouped."""


@dataclass(frozen=True)
class Supported:
    """A parsed `/supported`: the readable kinds, extensions, signers, and what is wrong.

    `valid` is True when no finding is an error. Unreadable kinds are dropped (with a finding);
    readable ones are kept even in a nonconformant document so offers can still be checked.
    """

    kinds: tuple[SupportedKind, ...]
    extensions: tuple[str, ...]
    signers: Mapping[str, tuple[str, ...]]
    findings: tuple[Finding, ...]
    valid: bool

    @property
    def usable(self) -> bool:
        """Return whether offers can be cross-checked: valid, or at least one readable kind."""
        return self.valid or bool(self.kinds)


def _finding(code: str, path: str, problem: str, fix: str | None = None) -> Finding:
    """Build a Finding of a registered facilitator code; the message is `problem; fix`."""
    rule = FACILITATOR_CODES[code]
    return Finding(code, rule.severity, f"{problem}; {fix or rule.fix}", path)


def unusable(code: str, problem: str, fix: str | None = None) -> Supported:
    """Return an invalid Supported without kinds carrying one finding (non-200, oversized)."""
    return Supported((), (), {}, (_finding(code, "", problem, fix),), False)


def parse_supported(body: bytes) -> Supported:
    """Parse and validate a `/supported` body; never raises (a bug becomes a finding)."""
    try:
        return _parse(body)
    except Exception as exc:  # a hostile document must never stop a round
        return unusable("supported-unreadable", f"reading /supported failed ({type(exc).__name__})")


def _parse(body: bytes) -> Supported:
    try:
        # Depth-bounded: a deep `[[[[…` crashes the C JSON scanner when the recursion limit is high.
        document = loads_bounded(body.decode("utf-8"))
    except JsonTooDeepError:
        problem = f"/supported nests deeper than {MAX_JSON_DEPTH} levels"
        return unusable("supported-not-json", problem)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors; NaN too
        return unusable("supported-not-json", "/supported is not UTF-8 JSON")
    if not isinstance(document, Mapping):
        return unusable("supported-not-object", f"/supported is {type_name(document)}")
    findings: list[Finding] = []
    signers = _signers(document.get("signers"), findings)
    kinds: list[SupportedKind] = []
    for path, entry, group_version in _kind_entries(document.get("kinds"), findings):
        kind = _kind(path, entry, group_version, signers, findings)
        if kind is not None:
            kinds.append(kind)
    if isinstance(document.get("kinds"), Mapping):
        problem = f"kinds is grouped by version; read {len(kinds)} kinds, clients expect a list"
        findings.insert(0, _finding("supported-kinds-grouped", "kinds", problem))
    if "kinds" in document and not kinds and not findings:
        findings.append(_finding("supported-kinds-empty", "kinds", "kinds is empty"))
    extensions = _extensions(document.get("extensions"), findings)
    if any(kind.x402_version == 2 for kind in kinds):  # v1-only documents are graded v1 (S1)
        if signers is None:
            findings.append(_finding("supported-signers-missing", "signers", "no signers"))
        if document.get("extensions") is None:
            findings.append(_finding("supported-extensions-missing", "extensions", "none"))
    valid = not any(item.severity is Severity.ERROR for item in findings)
    if len(findings) > MAX_FINDINGS:
        more = len(findings) - MAX_FINDINGS
        findings = findings[:MAX_FINDINGS]
        findings.append(_finding("supported-findings-truncated", "", f"{more} more not shown"))
    return Supported(tuple(kinds), extensions, signers or {}, tuple(findings), valid)


def _kind_entries(
    raw: JsonValue, findings: list[Finding]
) -> Iterable[tuple[str, JsonValue, int | None]]:
    """Yield (path, entry, version implied by its group) for every kind, flat or grouped."""
    if isinstance(raw, list):
        return [(f"kinds[{i}]", entry, None) for i, entry in enumerate(raw)]
    if raw is None:
        findings.append(_finding("supported-kinds-missing", "kinds", "no kinds list"))
        return []
    if not isinstance(raw, Mapping):
        findings.append(_finding("supported-kinds-invalid", "kinds", f"kinds is {type_name(raw)}"))
        return []
    entries: list[tuple[str, JsonValue, int | None]] = []
    for key, group in raw.items():
        group_path = f"kinds[{json.dumps(key)}]"
        if not isinstance(group, list):
            problem = f"{group_path} is {type_name(group)}"
            findings.append(_finding("supported-kinds-invalid", group_path, problem))
            continue
        version = int(key) if key in ("1", "2") else None
        entries.extend((f"{group_path}[{i}]", entry, version) for i, entry in enumerate(group))
    return entries


def _kind(
    path: str,
    entry: JsonValue,
    group_version: int | None,
    signers: Mapping[str, tuple[str, ...]] | None,
    findings: list[Finding],
) -> SupportedKind | None:
    """Read one kind, adding its findings; None when it cannot be matched against offers."""
    if not isinstance(entry, Mapping):
        findings.append(
            _finding("supported-kind-not-object", path, f"{path} is {type_name(entry)}")
        )
        return None
    raw_version = entry.get("x402Version")
    version = as_int(raw_version)
    if raw_version is None and group_version is not None:
        version = group_version  # grouped documents often imply it; already reported as grouped
    elif isinstance(raw_version, str) and raw_version in ("1", "2"):
        version = int(raw_version)  # readable, and pydantic-based SDKs coerce it, but not the spec
        problem = f"{path}.x402Version is the string {raw_version!r}"
        findings.append(_finding("supported-kind-version-invalid", f"{path}.x402Version", problem))
    if version not in (1, 2):
        problem = f"{path}.x402Version is {_show(raw_version)}"
        findings.append(_finding("supported-kind-version-invalid", f"{path}.x402Version", problem))
        return None
    texts: dict[str, str] = {}
    for key in ("scheme", "network"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            texts[key] = value
        else:
            problem = f"{path}.{key} is {_show(value)}, not a non-empty string"
            findings.append(_finding("supported-kind-field-invalid", f"{path}.{key}", problem))
    if len(texts) < 2:
        return None
    scheme, network = texts["scheme"], texts["network"]
    extra = entry.get("extra")
    if extra is not None and not isinstance(extra, Mapping):
        problem = f"{path}.extra is {type_name(extra)}"
        findings.append(_finding("supported-kind-field-invalid", f"{path}.extra", problem))
        extra = None
    assert version is not None
    findings.extend(_network_findings(path, version, network))
    kind = SupportedKind(version, scheme, network, to_caip2(network), extra, path)
    if scheme == "exact" and _is_solana(network, kind.caip2):
        findings.extend(_fee_payer_findings(kind, signers))
    return kind


def _show(value: JsonValue) -> str:
    """Describe a JSON value briefly for a message (strings quoted and cut)."""
    return repr(value[:64]) if isinstance(value, str) else type_name(value)


def _network_findings(path: str, version: int, network: str) -> list[Finding]:
    """Require CAIP-2 (S2) and the Solana genesis-hash ids (S3) on v2 kinds."""
    if version != 2:
        return []
    where = f"{path}.network"
    if network in SOLANA_V1_NAMES or (
        network.startswith("solana:") and network not in SOLANA_NETWORKS
    ):
        problem = f"{where} {network[:64]!r} is not a Solana genesis-hash id"
        return [_finding("supported-network-noncanonical", where, problem)]
    if not is_caip2(network):
        suggestion = V1_NETWORKS.get(network)
        fix = f"use {suggestion!r}" if suggestion else None
        problem = f"{where} {network[:64]!r} is not CAIP-2"
        return [_finding("supported-network-not-caip2", where, problem, fix)]
    return []


def _is_solana(network: str, caip2: str | None) -> bool:
    return network.startswith("solana") or (caip2 or "").startswith("solana:")


def _is_solana_key(value: str) -> bool:
    """Return whether `value` is base58 that decodes to 32 bytes (a Solana public key)."""
    if not 32 <= len(value) <= _MAX_KEY_CHARS:
        return False
    try:
        return len(base58.b58decode(value)) == 32
    except ValueError:  # invalid character (UnicodeEncodeError is a ValueError too)
        return False


def _fee_payer_findings(
    kind: SupportedKind, signers: Mapping[str, tuple[str, ...]] | None
) -> list[Finding]:
    """Require a 32-byte base58 `extra.feePayer` (error) listed in `signers` (warning) (S4).

    Without a `signers` object (a v1-only document) there is nothing to list it in.
    """
    path = f"{kind.path}.extra.feePayer"
    fee_payer = kind.extra.get("feePayer") if kind.extra else None
    if fee_payer is None:
        return [_finding("supported-feepayer-missing", path, f"{path} is missing")]
    if not isinstance(fee_payer, str) or not _is_solana_key(fee_payer):
        problem = f"{path} {_show(fee_payer)} is not a 32-byte base58 key"
        return [_finding("supported-feepayer-invalid", path, problem)]
    if signers is not None and fee_payer not in _signers_for(signers, kind):
        problem = f"{path} {fee_payer} is not under signers['solana:*'] or {kind.network!r}"
        return [_finding("supported-feepayer-not-signer", path, problem)]
    return []


def _extensions(raw: JsonValue, findings: list[Finding]) -> tuple[str, ...]:
    """Return the extension names; report anything but a list of strings."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        problem = "holds non-strings" if isinstance(raw, list) else f"is {type_name(raw)}"
        problem = f"extensions {problem}"
        findings.append(_finding("supported-extensions-invalid", "extensions", problem))
    return tuple(item for item in raw if isinstance(item, str)) if isinstance(raw, list) else ()


def _signers(raw: JsonValue, findings: list[Finding]) -> Mapping[str, tuple[str, ...]] | None:
    """Return pattern → addresses (None when absent); report anything else than string lists."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problem = f"signers is {type_name(raw)}"
        findings.append(_finding("supported-signers-invalid", "signers", problem))
        return {}
    signers: dict[str, tuple[str, ...]] = {}
    for pattern, addresses in raw.items():
        path = f"signers[{json.dumps(pattern)}]"
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            problem = f"{path} is not a list of address strings"
            findings.append(_finding("supported-signers-invalid", path, problem))
        if isinstance(addresses, list):
            signers[pattern] = tuple(a for a in addresses if isinstance(a, str))
    return signers


def _matches(pattern: str, kind: SupportedKind) -> bool:
    """Return whether a `signers` pattern (`solana:*`, an exact id, `*`) covers the kind."""
    names = {kind.network, kind.caip2 or kind.network}
    if pattern == "*":
        return True
    if pattern.endswith(":*"):
        return any(name.startswith(pattern[:-1]) for name in names)
    return pattern in names


def _signers_for(signers: Mapping[str, tuple[str, ...]], kind: SupportedKind) -> set[str]:
    return {
        a for pattern, addresses in signers.items() if _matches(pattern, kind) for a in addresses
    }


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
        return FacilitatorVerdict.UNREACHABLE, [_finding("facilitator-unreachable", "", problem)]
    if supported is None:
        problem = "no facilitator is configured or listed for this endpoint"
        return FacilitatorVerdict.UNKNOWN, [_finding("facilitator-unknown", "", problem)]
    if not supported.usable:
        first = next((f.message for f in supported.findings), "no readable kind")
        problem = f"the facilitator's /supported is unusable ({first})"
        invalid = _finding("facilitator-invalid", "", problem)
        return FacilitatorVerdict.INVALID, [*supported.findings, invalid]
    return None


def _describe(version: int, scheme: str, network: str) -> str:
    return f"(v{version}, {scheme}, {network[:64]})"


def _cross_check(
    supported: Supported, offer: Offer, version: int | None
) -> tuple[FacilitatorVerdict, list[Finding]]:
    """Match one offer on (x402Version, scheme, CAIP-2 network); no document findings."""
    if version not in (1, 2) or not offer.scheme or not offer.network:
        return FacilitatorVerdict.UNKNOWN, []  # the challenge's own findings say what is missing
    assert version is not None
    caip2 = offer.caip2 or to_caip2(offer.network)
    same_chain = [
        kind
        for kind in supported.kinds
        if kind.network == offer.network or (caip2 is not None and kind.caip2 == caip2)
    ]
    matches = [k for k in same_chain if k.x402_version == version and k.scheme == offer.scheme]
    path = f"accepts[{offer.index}]"
    wanted = _describe(version, offer.scheme, offer.network)
    if not matches:
        listed = ", ".join(_describe(k.x402_version, k.scheme, k.network) for k in same_chain[:8])
        problem = f"the facilitator lists no kind {wanted}; for this network it supports " + (
            listed or "nothing"
        )
        return FacilitatorVerdict.UNSUPPORTED, [
            _finding("facilitator-unsupported", f"{path}.network", problem)
        ]
    findings: list[Finding] = []
    if not any(kind.network == offer.network for kind in matches):
        problem = f"{path}.network {offer.network!r} matched {matches[0].network!r} only as the "
        problem += "same chain; a facilitator comparing names verbatim will refuse it"
        findings.append(_finding("facilitator-network-alias", f"{path}.network", problem))
    findings.extend(_offer_fee_payer(supported, offer, matches, path))
    return FacilitatorVerdict.SUPPORTED, findings


def _offer_fee_payer(
    supported: Supported, offer: Offer, matches: list[SupportedKind], path: str
) -> list[Finding]:
    """Warn when a Solana exact offer's feePayer is not one the facilitator signs with."""
    fee_payer = offer.extra.get("feePayer") if offer.extra else None
    if offer.scheme != "exact" or not _is_solana(offer.network or "", matches[0].caip2):
        return []
    if not isinstance(fee_payer, str) or not fee_payer:
        return []  # missing feePayer is the challenge validator's error, not ours
    published = (k.extra.get("feePayer") for k in matches if k.extra)
    candidates = {value for value in published if isinstance(value, str)}  # lists are unhashable
    if not candidates:  # kinds without feePayer: fall back to the signers the document lists
        candidates = set().union(*(_signers_for(supported.signers, k) for k in matches))
    if not candidates or fee_payer in candidates:
        return []
    known = ", ".join(sorted(candidates)[:3])
    problem = f"{path}.extra.feePayer {fee_payer[:64]!r} is not the facilitator's ({known}): "
    problem += "the facilitator will not sign as this fee payer"
    return [_finding("facilitator-feepayer-mismatch", f"{path}.extra.feePayer", problem)]
