"""Secrets never surface where the log filter cannot see them: printed channel descriptions,
reprs, stored findings, and the set of values the log filter masks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from monitor.cli.redaction import config_secrets
from monitor.config import parse_config
from monitor.discovery import FacilitatorClient
from monitor.probe.connect import ProxyRoute


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com?token=s3cr3t-t0ken-value",
        "https://hooks.example.com#s3cr3t-t0ken-value",
        "https://hooks.example.com/s3cr3t-t0ken-value",
        "https://hooks.example.com:8443?s3cr3t-t0ken-value",
    ],
)
def test_a_printed_channel_shows_its_host_and_nothing_after(url: str) -> None:
    config = parse_config(
        {"alerts": {"channels": [{"name": "ops", "type": "webhook", "url": url}]}}, {}
    )
    described = config.alerts.channels[0].describe()
    assert "s3cr3t" not in described
    assert "hooks.example.com" in described


def test_a_proxy_route_keeps_its_credentials_out_of_its_repr() -> None:
    route = ProxyRoute.from_url("http://probe:pr0xy-passw0rd@proxy.internal:3128")
    assert route.authorization is not None
    assert route.authorization not in repr(route)
    assert "pr0xy" not in repr(route)


def test_the_proxy_password_is_one_of_the_masked_secrets() -> None:
    config = parse_config(
        {"probe": {"proxy": "http://probe:pr0xy%2Dpassw0rd@proxy.internal:3128"}}, {}
    )
    secrets = config_secrets(config)
    assert "pr0xy%2Dpassw0rd" in secrets
    assert "pr0xy-passw0rd" in secrets
    assert "probe" not in secrets  # a user name is no secret, and masking words breaks logs


def test_an_unusable_proxy_url_is_refused_without_repeating_it() -> None:
    from monitor.models import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config({"probe": {"proxy": "socks5://probe:pr0xy-passw0rd@proxy.internal"}}, {})
    assert "pr0xy" not in str(info.value)
    assert "probe.proxy" in str(info.value)


@pytest.mark.parametrize("status", [401, 404, 200])
def test_facilitator_findings_never_quote_the_urls_credentials(status: int) -> None:
    # Findings are stored with every check and shown on the endpoint's public page.
    def answer(request: httpx.Request) -> httpx.Response:
        body = b"x" * 4096 if status == 200 else b""
        return httpx.Response(status, content=body)

    async def fetch() -> list[str]:
        client = FacilitatorClient(
            user_agent="test",
            clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
            max_bytes=1024,
            transport=httpx.MockTransport(answer),
        )
        async with client:
            result = await client.supported("https://u:pa55w0rd-x@fac.example/x?key=k3y-s3cr3t")
        assert result.supported is not None
        return [finding.message for finding in result.supported.findings]

    messages = asyncio.run(fetch())
    assert messages
    for message in messages:
        assert "pa55w0rd" not in message
        assert "k3y-s3cr3t" not in message
        assert "fac.example" in message
