"""Read and validate a facilitator's `GET /supported` document (reference §4.2, §8.20).

Pure core: stdlib and base58 only. Checks follow x402-conformance S0–S4: a JSON object with a
flat `kinds` list; v2 kinds need top-level `extensions` and `signers`, CAIP-2 networks, Solana
genesis-hash ids, and Solana `exact` kinds a 32-byte base58 `extra.feePayer` listed under a
matching `signers` pattern. `monitor.x402.facilitator` judges offers against the result.

Two grades of trouble. A document is *malformed* (no offer can be checked against it) when the
facilitator answered something else than 200 JSON, or a shape the official SDK's
`SupportedResponse` refuses as a whole, so that no SDK-built seller can start with it: `kinds`
missing, not a list (grouped by version) or holding a non-object; a kind field of the wrong
JSON type (x402Version not a number, scheme or network not a string, extra not an object; the
SDK coerces boolean and numeric-string versions, the monitor holds to the spec's number);
`extensions` or `signers` present but not a list of strings / an object of string lists.
Errors the SDK tolerates are findings that spoil at most one kind: each kind keeps its first
error (a Solana kind without a valid feePayer, a v2 network that is not CAIP-2, x402Version
"2" as a string); a v2 document without `signers` or `extensions` (the SDK defaults them) is
reported but spoils nothing.

Every string the facilitator wrote is cut and made printable before it enters a message or a
path: these findings are stored with every check of every endpoint that uses the facilitator.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import base58

from monitor.models import Finding, JsonValue, Severity
from monitor.untrusted import clean_line
from monitor.x402.codes import MAX_SHOWN_CHARS, as_int, type_name
from monitor.x402.facilitator_codes import facilitator_finding
from monitor.x402.networks import SOLANA_NETWORKS, V1_NETWORKS, is_caip2, to_caip2
from monitor.x402.transport import (
    MAX_JSON_DEPTH,
    JsonTooDeepError,
    JsonTooLargeError,
    loads_bounded,
)

MAX_FINDINGS = 20
"""Document findings kept; they are attached to every endpoint using the facilitator."""

SOLANA_V1_NAMES = frozenset({"solana", "solana-devnet", "solana-mainnet", "solana-testnet"})
_MAX_KEY_CHARS = 44  # 32 bytes in base58; longer input is refused before the quadratic decode
_MAX_SHOWN = MAX_SHOWN_CHARS


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
    error: str | None = None
    """The message of the kind's first error finding (e.g. a Solana kind without feePayer);
    None when clean. Kept here because the document's findings are capped."""


@dataclass(frozen=True)
class Supported:
    """A parsed `/supported`: the readable kinds, extensions, signers, and what is wrong.

    `valid` is True when no finding is an error. `malformed` says why no offer can be checked
    against the answer (see the module docstring), None when it is usable. Unreadable kinds are
    dropped (with a finding); readable ones are kept, each with its first error, if any.
    """

    kinds: tuple[SupportedKind, ...]
    extensions: tuple[str, ...]
    signers: Mapping[str, tuple[str, ...]]
    findings: tuple[Finding, ...]
    valid: bool
    malformed: str | None = None

    @property
    def usable(self) -> bool:
        """Return whether offers can be cross-checked against this answer."""
        return self.malformed is None

    def kinds_on(self, network: str, caip2: str | None) -> list[SupportedKind]:
        """Return the kinds on a network named `network` or with CAIP-2 id `caip2`, in order.

        Looked up in an index built once per document: every check of every endpoint asks,
        and a facilitator may list thousands of kinds.
        """
        index = self._by_network()
        found = set(index.get(network, ()))
        if caip2 is not None:
            found.update(index.get("caip2:" + caip2, ()))
        return [self.kinds[position] for position in sorted(found)]

    def _by_network(self) -> Mapping[str, tuple[int, ...]]:
        cached: Mapping[str, tuple[int, ...]] | None = self.__dict__.get("_network_index")
        if cached is None:
            positions: dict[str, list[int]] = {}
            for position, kind in enumerate(self.kinds):
                positions.setdefault(kind.network, []).append(position)
                if kind.caip2 is not None:
                    positions.setdefault("caip2:" + kind.caip2, []).append(position)
            cached = {key: tuple(value) for key, value in positions.items()}
            object.__setattr__(self, "_network_index", cached)  # a cache on a frozen value
        return cached


def unusable(code: str, problem: str, fix: str | None = None) -> Supported:
    """Return an unusable Supported without kinds carrying one finding (non-200, oversized)."""
    item = facilitator_finding(code, "", problem, fix)
    return Supported((), (), {}, (item,), False, item.message)


class _Report:
    """Collect a document's findings and the first one that makes the document unusable."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.malformed: str | None = None

    def add(
        self, code: str, path: str, problem: str, fix: str | None = None, *, malformed: bool = False
    ) -> None:
        """Add a finding; `malformed` marks a shape the official SDK refuses as a whole."""
        item = facilitator_finding(code, path, problem, fix)
        self.findings.append(item)
        if malformed and self.malformed is None:
            self.malformed = item.message

    def first_error_since(self, start: int) -> str | None:
        """Return the message of the first error finding added at or after index `start`."""
        return next(
            (f.message for f in self.findings[start:] if f.severity is Severity.ERROR), None
        )


def parse_supported(body: bytes) -> Supported:
    """Parse and validate a `/supported` body; never raises (a bug becomes a finding)."""
    try:
        return _parse(body)
    except Exception as exc:  # a hostile document must never stop a round
        return unusable("supported-unreadable", f"reading /supported failed ({type(exc).__name__})")


MAX_SUPPORTED_VALUES = 250_000
"""Most JSON values in a /supported document (a facilitator listing every chain it settles
on holds a few thousand)."""


def _parse(body: bytes) -> Supported:
    try:
        # Depth-bounded: a deep `[[[[…` crashes the C JSON scanner when the recursion limit is high.
        document = loads_bounded(body.decode("utf-8"), max_values=MAX_SUPPORTED_VALUES)
    except JsonTooDeepError:
        problem = f"/supported nests deeper than {MAX_JSON_DEPTH} levels"
        return unusable("supported-not-json", problem)
    except JsonTooLargeError:
        problem = f"/supported holds more than {MAX_SUPPORTED_VALUES} JSON values"
        return unusable("supported-too-large", problem)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors; NaN too
        return unusable("supported-not-json", "/supported is not UTF-8 JSON")
    if not isinstance(document, Mapping):
        return unusable("supported-not-object", f"/supported is {type_name(document)}")
    report = _Report()
    signers = _signers(document, report)
    kinds: list[SupportedKind] = []
    for path, entry, group_version in _kind_entries(document.get("kinds"), report):
        kind = _kind(path, entry, group_version, signers, report)
        if kind is not None:
            kinds.append(kind)
    if isinstance(document.get("kinds"), Mapping):
        problem = f"kinds is grouped by version; read {len(kinds)} kinds, clients expect a list"
        grouped = facilitator_finding("supported-kinds-grouped", "kinds", problem)
        report.findings.insert(0, grouped)
        report.malformed = grouped.message  # the first problem, and the one to name
    if "kinds" in document and not kinds and not report.findings:
        report.add("supported-kinds-empty", "kinds", "kinds is empty")
    extensions = _extensions(document, report)
    if any(kind.x402_version == 2 for kind in kinds):  # v1-only documents are graded v1 (S1)
        if "signers" not in document:
            report.add("supported-signers-missing", "signers", "no signers")
        if "extensions" not in document:
            report.add("supported-extensions-missing", "extensions", "none")
    findings = report.findings
    valid = not any(item.severity is Severity.ERROR for item in findings)
    if len(findings) > MAX_FINDINGS:
        more = len(findings) - MAX_FINDINGS
        findings = findings[:MAX_FINDINGS]
        findings.append(
            facilitator_finding("supported-findings-truncated", "", f"{more} more not shown")
        )
    return Supported(
        tuple(kinds), extensions, signers or {}, tuple(findings), valid, report.malformed
    )


def _kind_entries(raw: JsonValue, report: _Report) -> Iterable[tuple[str, JsonValue, int | None]]:
    """Yield (path, entry, version implied by its group) for every kind, flat or grouped."""
    if isinstance(raw, list):
        return [(f"kinds[{i}]", entry, None) for i, entry in enumerate(raw)]
    if raw is None:
        report.add("supported-kinds-missing", "kinds", "no kinds list", malformed=True)
        return []
    if not isinstance(raw, Mapping):
        problem = f"kinds is {type_name(raw)}"
        report.add("supported-kinds-invalid", "kinds", problem, malformed=True)
        return []
    entries: list[tuple[str, JsonValue, int | None]] = []
    for key, group in raw.items():
        group_path = f"kinds[{_key(key)}]"
        if not isinstance(group, list):
            problem = f"{group_path} is {type_name(group)}"
            report.add("supported-kinds-invalid", group_path, problem, malformed=True)
            continue
        version = int(key) if key in ("1", "2") else None
        entries.extend((f"{group_path}[{i}]", entry, version) for i, entry in enumerate(group))
    return entries


def _kind(
    path: str,
    entry: JsonValue,
    group_version: int | None,
    signers: Mapping[str, tuple[str, ...]] | None,
    report: _Report,
) -> SupportedKind | None:
    """Read one kind, adding its findings; None when it cannot be matched against offers."""
    if not isinstance(entry, Mapping):
        problem = f"{path} is {type_name(entry)}"
        report.add("supported-kind-not-object", path, problem, malformed=True)
        return None
    start = len(report.findings)
    version = _kind_version(path, entry, group_version, report)
    texts: dict[str, str] = {}
    for key in ("scheme", "network"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            texts[key] = value
        else:  # an empty string is read by SDKs (and matches nothing); another type is refused
            problem = f"{path}.{key} is {show(value)}, not a non-empty string"
            where = f"{path}.{key}"
            report.add(
                "supported-kind-field-invalid", where, problem, malformed=not isinstance(value, str)
            )
    extra = entry.get("extra")
    if extra is not None and not isinstance(extra, Mapping):
        problem = f"{path}.extra is {type_name(extra)}"
        report.add("supported-kind-field-invalid", f"{path}.extra", problem, malformed=True)
        extra = None
    if version is None or len(texts) < 2:
        return None
    scheme, network = texts["scheme"], texts["network"]
    for item in _network_findings(path, version, network):
        report.findings.append(item)
    kind = SupportedKind(version, scheme, network, to_caip2(network), extra, path)
    if scheme == "exact" and is_solana(network, kind.caip2):
        report.findings.extend(_fee_payer_findings(kind, signers))
    error = report.first_error_since(start)
    return kind if error is None else replace(kind, error=error)


def _kind_version(
    path: str, entry: Mapping[str, JsonValue], group_version: int | None, report: _Report
) -> int | None:
    """Return a kind's x402Version (1 or 2), adding a finding when it is anything else.

    A number other than 1 or 2 drops the kind (an error, but a future version's kinds must
    not spoil the document); "1" and "2" as strings are read with an error, since SDKs coerce
    them. Anything else that is not a JSON number (missing, null, a boolean, another string) is
    malformed: the spec's type is a number, and the official SDK refuses a missing version.
    """
    where = f"{path}.x402Version"
    raw = entry.get("x402Version")
    if raw is None and group_version is not None:
        return group_version  # grouped documents often imply it; already reported as grouped
    if isinstance(raw, str) and raw in ("1", "2"):
        problem = f"{where} is the string {raw!r}"
        report.add("supported-kind-version-invalid", where, problem)
        return int(raw)
    version = as_int(raw)
    if version in (1, 2):
        return version
    shown = "missing" if "x402Version" not in entry else show(raw)
    problem = f"{where} is {shown if version is None else version}"
    is_number = version is not None
    report.add("supported-kind-version-invalid", where, problem, malformed=not is_number)
    return None


def _key(value: str) -> str:
    """Return an object key of the document as a JSON string for a path, cut and ASCII."""
    return json.dumps(clip(value))


def clip(value: str) -> str:
    """Return `value` made safe to quote in a message or a path.

    Cut to _MAX_SHOWN characters (a cut ends with "…"); control characters and lone
    surrogates become U+FFFD so that the text encodes as UTF-8 and stays on one line.
    """
    return clean_line(value, _MAX_SHOWN)


def show(value: JsonValue) -> str:
    """Describe a JSON value briefly for a message (strings quoted, cut and escaped by repr)."""
    return repr(value[:_MAX_SHOWN]) if isinstance(value, str) else type_name(value)


def _network_findings(path: str, version: int, network: str) -> list[Finding]:
    """Require CAIP-2 (S2) and the Solana genesis-hash ids (S3) on v2 kinds."""
    if version != 2:
        return []
    where = f"{path}.network"
    if network in SOLANA_V1_NAMES or (
        network.startswith("solana:") and network not in SOLANA_NETWORKS
    ):
        problem = f"{where} {show(network)} is not a Solana genesis-hash id"
        return [facilitator_finding("supported-network-noncanonical", where, problem)]
    if not is_caip2(network):
        suggestion = V1_NETWORKS.get(network)
        fix = f"use {suggestion!r}" if suggestion else None
        problem = f"{where} {show(network)} is not CAIP-2"
        return [facilitator_finding("supported-network-not-caip2", where, problem, fix)]
    return []


def is_solana(network: str, caip2: str | None) -> bool:
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
        return [facilitator_finding("supported-feepayer-missing", path, f"{path} is missing")]
    if not isinstance(fee_payer, str) or not _is_solana_key(fee_payer):
        problem = f"{path} {show(fee_payer)} is not a 32-byte base58 key"
        return [facilitator_finding("supported-feepayer-invalid", path, problem)]
    if signers is not None and fee_payer not in signers_for(signers, kind):
        where = show(kind.network)
        problem = f"{path} {fee_payer} is not under signers['solana:*'] or {where}"
        return [facilitator_finding("supported-feepayer-not-signer", path, problem)]
    return []


def _extensions(document: Mapping[str, JsonValue], report: _Report) -> tuple[str, ...]:
    """Return the extension names; report anything but a list of strings (null included)."""
    if "extensions" not in document:
        return ()
    raw = document["extensions"]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        problem = "holds non-strings" if isinstance(raw, list) else f"is {type_name(raw)}"
        report.add(
            "supported-extensions-invalid", "extensions", f"extensions {problem}", malformed=True
        )
    return tuple(item for item in raw if isinstance(item, str)) if isinstance(raw, list) else ()


def _signers(
    document: Mapping[str, JsonValue], report: _Report
) -> Mapping[str, tuple[str, ...]] | None:
    """Return pattern → addresses (None when absent); report anything but string lists."""
    if "signers" not in document:
        return None
    raw = document["signers"]
    if not isinstance(raw, Mapping):
        problem = f"signers is {type_name(raw)}"
        report.add("supported-signers-invalid", "signers", problem, malformed=True)
        return {}
    signers: dict[str, tuple[str, ...]] = {}
    for pattern, addresses in raw.items():
        path = f"signers[{_key(pattern)}]"
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            problem = f"{path} is not a list of address strings"
            report.add("supported-signers-invalid", path, problem, malformed=True)
        if isinstance(addresses, list):
            signers[pattern] = tuple(a for a in addresses if isinstance(a, str))
    return signers


def _patterns(kind: SupportedKind) -> set[str]:
    """Return every `signers` pattern that covers the kind: `*`, its exact names, `prefix:*`."""
    patterns = {"*"}
    for name in {kind.network, kind.caip2 or kind.network}:
        patterns.add(name)
        patterns.update(name[: index + 1] + "*" for index, char in enumerate(name) if char == ":")
    return patterns


def signers_for(signers: Mapping[str, tuple[str, ...]], kind: SupportedKind) -> set[str]:
    """Return the addresses `signers` lists for the kind (looked up, never scanned: a document
    may hold thousands of kinds and patterns)."""
    return {address for pattern in _patterns(kind) for address in signers.get(pattern, ())}
