"""The monitor against a real seller built with the official x402 Python SDK (offline, loopback).

The seller (`tests/sdk_seller.py`) is the SDK's FastAPI payment middleware over a stub
facilitator; these tests probe it with the monitor's real `Prober`, judge it with `assess`, and
run `python -m monitor check --json` against it as a subprocess. The monitor never pays, so the
stub facilitator's /verify and /settle must never be called.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from x402conf.harness import run_live, run_resource

pytest.importorskip("x402", reason="the official x402 SDK (x402[fastapi,evm]) is not installed")

from sdk_seller import (
    BASE_SEPOLIA_USDC,
    FACILITATOR_SIGNER,
    NETWORK,
    PAY_TO,
    PRICE_ATOMIC,
    SdkSeller,
    start_sdk_seller,
)

from monitor.assess import assess
from monitor.config import ProbeConfig
from monitor.models import AssetVerdict, EndpointSpec, Outcome, ProbeFacts
from monitor.probe import Prober
from monitor.x402 import parse_challenge

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def seller() -> Iterator[SdkSeller]:
    """One SDK seller (and stub facilitator) for the module."""
    with start_sdk_seller() as running:
        yield running


def _probe(spec: EndpointSpec) -> ProbeFacts:
    async def run() -> ProbeFacts:
        config = ProbeConfig(allow_private_addresses=True)
        async with Prober(config, clock=lambda: datetime.now(UTC)) as prober:
            return await prober.probe(spec)

    return asyncio.run(run())


def _assert_never_paid(seller: SdkSeller) -> None:
    calls = seller.facilitator_calls
    assert (calls["/verify"], calls["/settle"]) == (0, 0), calls
    assert calls["/supported"] >= 1, calls  # the SDK read it at start-up


def _no_proxy_open(request: urllib.request.Request, timeout: float) -> Any:
    """Open like urlopen, ignoring proxy settings from the environment (loopback only)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(request, timeout=timeout)


def test_sdk_402_passes_prober_and_assess(seller: SdkSeller) -> None:
    url = seller.base_url + "/weather"
    supported_reads = seller.facilitator_calls["/supported"]
    facts = _probe(EndpointSpec(url=url, method="GET"))
    # The SDK built this 402 from what it read at start-up: no facilitator call per request.
    assert seller.facilitator_calls["/supported"] == supported_reads
    assert facts.error_kind is None, facts.error
    assert facts.http_status == 402
    assert "payment-required" in facts.headers

    result = assess(facts)
    assert result.outcome is Outcome.PASS, (result.error, result.findings)
    assert result.error is None

    challenge = parse_challenge(facts.headers, facts.body)
    assert (challenge.version, challenge.source, challenge.valid) == (2, "header", True)
    assert challenge.document is not None
    assert challenge.document["resource"]["url"] == url
    assert len(challenge.offers) == 1
    offer = challenge.offers[0]
    assert offer.valid
    assert (offer.scheme, offer.network, offer.asset) == ("exact", NETWORK, BASE_SEPOLIA_USDC)
    assert (offer.amount, offer.pay_to) == (PRICE_ATOMIC, PAY_TO)
    assert dict(offer.extra or {}) == {"name": "USDC", "version": "2"}
    _assert_never_paid(seller)


def test_sdk_offer_asset_is_verified(seller: SdkSeller) -> None:
    # The SDK picks Base Sepolia USDC with its real EIP-712 domain (USDC, 2): the monitor's
    # asset table must recognise it.
    facts = _probe(EndpointSpec(url=seller.base_url + "/weather", method="GET"))
    challenge = parse_challenge(facts.headers, facts.body)
    offer = challenge.headline_offer
    assert offer is not None
    detail = (offer.network, offer.asset, offer.extra, offer.asset_verdict, challenge.findings)
    assert challenge.asset_verdict is AssetVerdict.VERIFIED, detail
    _assert_never_paid(seller)


@pytest.mark.parametrize(
    ("method", "guessed"),
    [
        pytest.param("POST", False, id="declared-post"),
        # Nothing declared: GET answers 405 (FastAPI), the prober retries as POST.
        pytest.param(None, True, id="guessed-post"),
    ],
)
def test_sdk_post_route(seller: SdkSeller, method: str | None, guessed: bool) -> None:
    url = seller.base_url + "/report"
    facts = _probe(EndpointSpec(url=url, method=method))
    assert (facts.method, facts.method_guessed, facts.http_status) == ("POST", guessed, 402)
    result = assess(facts)
    assert result.outcome is Outcome.PASS, (result.error, result.findings)
    assert result.challenge is not None
    assert result.challenge.document is not None
    assert result.challenge.document["resource"]["url"] == url
    _assert_never_paid(seller)


def test_sdk_free_route_is_not_a_paywall(seller: SdkSeller) -> None:
    # Control: the same app without the paywall is judged a soft failure, not a pass.
    facts = _probe(EndpointSpec(url=seller.base_url + "/free", method="GET"))
    assert facts.http_status == 200
    assert assess(facts).outcome is Outcome.SOFT_FAIL


def test_cli_check_json_against_sdk_seller(seller: SdkSeller, tmp_path: Path) -> None:
    url = seller.base_url + "/weather"
    config: dict[str, Any] = {
        "database": "data/monitor.db",
        "probe": {
            "timeout": "30s",
            "connect_timeout": "30s",
            "allow_private_addresses": True,
        },
        "endpoints": [{"url": url, "method": "GET", "facilitator": seller.facilitator_url}],
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    completed = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(config_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stdout
    row = lines[0]
    assert row["url"] == url
    assert (row["outcome"], row["status"], row["http_status"]) == ("pass", "healthy", 402)
    assert (row["x402_version"], row["payment_requirements_valid"]) == (2, True)
    assert row["network"] == NETWORK
    # The three headline verdicts: valid, asset verified, facilitator supports the offer.
    assert (row["asset"], row["facilitator"]) == ("verified", "supported")
    assert row["error"] is None
    assert not [f for f in row["findings"] if f["severity"] == "error"], row["findings"]
    _assert_never_paid(seller)


def test_x402_conformance_live_checks_pass_on_sdk_seller(seller: SdkSeller) -> None:
    # The independent checker, in its own live modes (one unpaid GET each), agrees with us.
    resource = run_resource(seller.base_url + "/weather", timeout=30, opener=_no_proxy_open)
    assert resource["http"] == 402, resource
    checks = {r["check"].split()[0]: r for r in resource["checks"]}
    assert {"P1", "P2", "P3", "P4", "P5", "P6", "P7"} <= set(checks), resource
    assert all(r["pass"] for r in checks.values()), resource

    before = seller.facilitator_calls["/supported"]
    live = run_live(seller.facilitator_url, timeout=30, opener=_no_proxy_open, env={})
    assert live["http"] == 200, live
    assert {r["check"].split()[0] for r in live["checks"]} == {"S1", "S2", "S3", "S4"}
    assert all(r["pass"] for r in live["checks"]), live["checks"]
    assert seller.facilitator_calls["/supported"] == before + 1
    assert FACILITATOR_SIGNER.encode() in live["raw"]
    _assert_never_paid(seller)
