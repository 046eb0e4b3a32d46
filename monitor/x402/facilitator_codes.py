"""Register the finding codes of the facilitator checks (its /supported and each offer)."""

from __future__ import annotations

from monitor.models import Finding, Severity
from monitor.x402.codes import Rule

_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
_FIX = "fix the facilitator's /supported (or ask its operator to)"

FACILITATOR_CODES: dict[str, Rule] = {
    # The /supported document (paths are inside it: `kinds[3].network`, `signers`)
    "supported-http-status": Rule(_E, "/supported did not answer 200", "check the base URL"),
    "supported-auth": Rule(_E, "/supported requires authentication", "use a public facilitator"),
    "supported-too-large": Rule(_E, "/supported body exceeds the size limit", _FIX),
    "supported-not-json": Rule(_E, "/supported body is not JSON", _FIX),
    "supported-not-object": Rule(_E, "/supported JSON is not an object", _FIX),
    "supported-kinds-missing": Rule(_E, "/supported has no `kinds`", _FIX),
    "supported-kinds-invalid": Rule(_E, "/supported `kinds` is not a list", _FIX),
    "supported-kinds-grouped": Rule(
        _E, "kinds grouped by version (non-conformant)", 'publish one flat list: "kinds": [...]'
    ),
    "supported-kinds-empty": Rule(_W, "/supported lists no kind", _FIX),
    "supported-kind-not-object": Rule(_E, "a kind is not an object", _FIX),
    "supported-kind-version-invalid": Rule(_E, "x402Version is not the number 1 or 2", _FIX),
    "supported-kind-field-invalid": Rule(_E, "scheme, network or extra missing/mistyped", _FIX),
    "supported-network-not-caip2": Rule(_E, "a v2 kind's network is not CAIP-2", _FIX),
    "supported-network-noncanonical": Rule(_E, "v2 Solana kind without a genesis-hash id", _FIX),
    "supported-extensions-missing": Rule(_E, "v2 kinds but no `extensions` list", _FIX),
    "supported-extensions-invalid": Rule(_E, "`extensions` is not a list of strings", _FIX),
    "supported-signers-missing": Rule(_E, "v2 kinds but no `signers` object", _FIX),
    "supported-signers-invalid": Rule(_E, "`signers` is not an object of address lists", _FIX),
    "supported-feepayer-missing": Rule(_E, "Solana exact kind without extra.feePayer", _FIX),
    "supported-feepayer-invalid": Rule(_E, "Solana feePayer is not a 32-byte base58 key", _FIX),
    "supported-feepayer-not-signer": Rule(_W, "Solana feePayer not listed in `signers`", _FIX),
    "supported-findings-truncated": Rule(_I, "more findings than the monitor reports", _FIX),
    "supported-unreadable": Rule(_E, "reading /supported failed (a monitor bug)", "report it"),
    # Cross-check of one offer (paths are inside the challenge: `accepts[0].network`)
    "facilitator-unknown": Rule(_I, "no facilitator known for the endpoint", "configure one"),
    "facilitator-unreachable": Rule(_W, "/supported could not be fetched", "check the facilitator"),
    "facilitator-invalid": Rule(_W, "the facilitator's /supported is unusable", _FIX),
    "facilitator-kind-invalid": Rule(
        _W, "every kind the facilitator lists for this offer has an error (e.g. no feePayer)", _FIX
    ),
    "facilitator-unsupported": Rule(
        _E,
        "the facilitator cannot settle this scheme/network/version",
        "offer what the facilitator supports, or use one that supports this offer",
    ),
    "facilitator-network-alias": Rule(
        _W, "network matched only as an alias", "spell the network as the facilitator does"
    ),
    "facilitator-feepayer-mismatch": Rule(
        _W, "offer feePayer is not the facilitator's", "copy feePayer from its /supported"
    ),
}


def facilitator_finding(code: str, path: str, problem: str, fix: str | None = None) -> Finding:
    """Build a Finding of a registered facilitator code; the message is `problem; fix`."""
    rule = FACILITATOR_CODES[code]
    return Finding(code, rule.severity, f"{problem}; {fix or rule.fix}", path)
