"""`monitor validate` end to end: real subprocess, loopback seller and facilitator, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECK_KEYS = {
    "url", "method", "outcome", "status", "http_status", "latency_ms", "x402_version",
    "payment_requirements_valid", "consecutive_failures", "uptime_30d", "p50_ms", "score",
    "error", "findings",
}  # fmt: skip


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "validate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    value: dict[str, Any] = json.loads(lines[0])
    return value


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "extra", "code", "asset", "facilitator", "price", "network"),
    [
        ("/v2/valid", [], 0, "verified", "supported", "$0.01", "eip155:84532"),
        ("/v2/sdk", [], 0, "verified", "supported", "$0.01", "eip155:84532"),
        # v1 names map to CAIP-2; the facilitator lists only v2 kinds: it cannot settle v1.
        ("/v1/valid", [], 0, "verified", "unsupported", "$0.01", "eip155:84532"),
        ("/v1/solana", [], 0, "verified", "unsupported", "$0.001", "eip155:84532"),
        ("/invalid/empty-payto", [], 1, "verified", "unsupported", "$0.01", "eip155:8453"),
        ("/free", [], 1, "unknown", "unknown", None, None),
        (
            "/post-only",
            ["--method", "POST", "--body", '{"q": "x"}'],
            0,
            "verified",
            "supported",
            "$0.01",
            "eip155:84532",
        ),
    ],
)
def test_validate_json_verdicts(
    demo_url: str,
    path: str,
    extra: list[str],
    code: int,
    asset: str,
    facilitator: str,
    price: str | None,
    network: str | None,
) -> None:
    result = _validate(
        demo_url + path,
        "--allow-private",
        "--json",
        "--facilitator",
        demo_url + "/facilitator",
        *extra,
    )
    assert result.returncode == code, result.stderr
    row = _json(result)
    assert set(row) >= CHECK_KEYS
    assert (row["asset"], row["facilitator"], row["price"], row["network"]) == (
        asset,
        facilitator,
        price,
        network,
    )


@pytest.mark.integration
def test_validate_without_facilitator_says_unknown(demo_url: str) -> None:
    result = _validate(demo_url + "/v2/valid", "--allow-private", "--json")
    assert result.returncode == 0
    assert _json(result)["facilitator"] == "unknown"


@pytest.mark.integration
def test_validate_report_puts_the_verdict_first(demo_url: str) -> None:
    result = _validate(demo_url + "/invalid/empty-payto", "--allow-private")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("NOT PAYABLE: invalid challenge: ")
    assert any(line.startswith("Errors (1)") for line in lines)
    assert "accepts[0].payTo" in result.stdout
    valid = _validate(demo_url + "/v2/valid", "--allow-private")
    assert valid.stdout.splitlines()[0].startswith("VALID")


@pytest.mark.integration
def test_validate_no_answer_and_refused_exit_2(demo_url: str) -> None:
    refused = _validate(demo_url + "/v2/valid", "--json")  # loopback without --allow-private
    assert refused.returncode == 2
    assert _json(refused)["error"].startswith("blocked: ")
    timeout = _validate(demo_url + "/slow?delay=5", "--allow-private", "--timeout", "300ms")
    assert timeout.returncode == 2
    assert timeout.stdout.startswith("NO ANSWER: timeout after 300ms")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://x.example/"], "error: ftp://x.example/: not an http(s) URL"),
        (["https://x.example/", "--body", "{nope"], "error: --body: not JSON"),
        (
            ["https://x.example/", "--facilitator", "nope"],
            "error: --facilitator nope: not an http(s) URL",
        ),
        (["https://x.example/", "--timeout", "5"], "error: --timeout: '5' is not a duration"),
    ],
)
def test_validate_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = _validate(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
