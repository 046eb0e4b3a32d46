"""Probing over TLS: the Prober's own TLS (memory BIOs, handshake steps in worker threads).

Servers are real TLS servers on loopback with certificates from a test authority (trustme);
the test resolver maps `*.seller.test` to 127.0.0.1, so SNI and the host name check see real
names. Covers the happy path, keep-alive over TLS, a large body of many records cut at the
cap, each certificate problem named, a stalled handshake inside the connect budget, and the
end of a TLS session (close_notify).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hostile_servers import (
    V1_CHALLENGE,
    LoopbackNames,
    Pki,
    TlsServer,
    challenge_answer,
    every_request,
    healthy,
    json_402,
    loopback_policy,
    pki,
    silent,
    tls_answer_then_close_notify,
)
from scripted_server import Handler, Server, asyncio_test, request

from monitor.assess import assess
from monitor.config import ProbeConfig
from monitor.models import EndpointSpec, Outcome, ProbeErrorKind, ProbeFacts
from monitor.probe import Http1Transport, Prober, build_transport

NOW = datetime(2026, 1, 2, tzinfo=UTC)
CONFIG = ProbeConfig(
    timeout=timedelta(seconds=30), connect_timeout=timedelta(seconds=30), concurrency=50
)
"""Generous timeouts: a busy machine must not turn handshakes into timeouts."""
STALL_CONFIG = ProbeConfig(
    timeout=timedelta(seconds=2), connect_timeout=timedelta(seconds=1), concurrency=50
)
"""Short timeouts, for the stalled handshakes that can only end by one."""
CAP = CONFIG.max_body_bytes
BOUND_S = 10 * STALL_CONFIG.timeout.total_seconds()
"""Generous: a probe that keeps to its timeouts ends well within this."""


def tls_server(handler: Handler, certificate: str = "good") -> TlsServer:
    return TlsServer(handler, Pki.server_context(getattr(pki(), certificate)))


def transport(config: ProbeConfig = CONFIG) -> Http1Transport:
    return build_transport(
        config, policy=loopback_policy, verify=pki().client_context(), resolver=LoopbackNames()
    )


async def probe(urls: Sequence[str], config: ProbeConfig = CONFIG) -> list[ProbeFacts]:
    """Probe `urls` with GET through one prober (one transport, one connection pool)."""
    async with Prober(config, clock=lambda: NOW, transport=transport(config)) as prober:
        return [await prober.probe(EndpointSpec(url=url, method="GET")) for url in urls]


def url(server: Server, name: str = "seller.test", target: str = "/") -> str:
    return f"https://{name}:{server.port}{target}"


@asyncio_test
async def test_a_valid_challenge_over_tls_passes() -> None:
    async with tls_server(healthy()) as server:
        (facts,) = await probe([url(server)])
    assert facts.error is None
    assert assess(facts).outcome is Outcome.PASS


@asyncio_test
async def test_many_handshakes_at_once_all_complete() -> None:
    async with tls_server(healthy()) as server:
        names = [f"h{n}.seller.test" for n in range(30)]
        async with Prober(CONFIG, clock=lambda: NOW, transport=transport()) as prober:
            specs = [EndpointSpec(url=url(server, name), method="GET") for name in names]
            results = await prober.probe_many(specs)
    assert [assess(facts).outcome for facts in results] == [Outcome.PASS] * len(names)
    assert len(server.peers) == len(names)


@asyncio_test
async def test_a_tls_connection_is_kept_alive_for_the_next_probe_of_its_origin() -> None:
    async with tls_server(healthy()) as server:
        results = await probe([url(server, target="/a"), url(server, target="/b")])
    assert [assess(facts).outcome for facts in results] == [Outcome.PASS, Outcome.PASS]
    assert len(server.peers) == 1
    assert [r.target for r in server.peers[0].requests] == ["/a", "/b"]


@asyncio_test
async def test_a_large_body_of_many_records_is_cut_at_the_cap_and_not_reused() -> None:
    body = b'{"x402Version": 1, "accepts": [' + b'{"scheme": "exact"},' * 200_000  # 4 MB
    async with tls_server(every_request([json_402(body)])) as server:
        first, second = await probe([url(server, target="/a"), url(server, target="/b")])
    assert first.http_status == 402
    assert len(first.body) == CAP
    assert first.body_truncated
    assert first.body == body[:CAP]
    assert second.body == first.body
    assert len(server.peers) == 2  # a body left unread is never the next answer


@pytest.mark.parametrize(
    ("certificate", "problem"),
    [
        ("expired", "certificate has expired"),
        ("wrong_name", "Hostname mismatch, certificate is not valid for 'seller.test'"),
        ("unknown_ca", "unable to get local issuer certificate"),
    ],
)
@asyncio_test
async def test_a_certificate_problem_is_a_tls_error_that_names_it(
    certificate: str, problem: str
) -> None:
    async with tls_server(healthy(), certificate) as server:
        (facts,) = await probe([url(server)])
    assert facts.error_kind is ProbeErrorKind.TLS
    assert facts.error is not None
    assert facts.error.startswith(f"TLS error: {problem}")
    assert assess(facts).outcome is Outcome.HARD_FAIL
    assert server.requests == []  # nothing was sent to a server that failed the checks


@asyncio_test
async def test_a_stalled_handshake_ends_within_the_connect_budget() -> None:
    async with Server(silent()) as server:
        pool = transport(STALL_CONFIG)
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ConnectTimeout) as info:
            await pool.handle_async_request(request(url(server, "stalled.seller.test"), connect=1))
        elapsed = asyncio.get_running_loop().time() - started
        await pool.aclose()
        (facts,) = await probe([url(server, "stalled.seller.test")], STALL_CONFIG)
    assert str(info.value) == f"TLS handshake with stalled.seller.test:{server.port} timed out"
    assert elapsed < BOUND_S
    assert facts.error_kind is ProbeErrorKind.TIMEOUT
    assert facts.error == "TLS handshake timeout after 1s"
    assert facts.timeout_s == 1.0


@asyncio_test
async def test_a_stalled_handshake_says_so_in_the_check() -> None:
    async with Server(silent()) as server:
        (facts,) = await probe([url(server, "stalled.seller.test")], STALL_CONFIG)
    assert facts.error is not None
    assert "TLS handshake" in facts.error


UNTIL_CLOSE = b"HTTP/1.1 402 Payment Required\r\nConnection: close\r\n\r\n" + V1_CHALLENGE
"""An answer whose body ends where the TLS session does."""


@pytest.mark.parametrize(
    "serve",
    [
        lambda: Server(tls_answer_then_close_notify(pki().server_context(pki().good), UNTIL_CLOSE)),
        lambda: tls_server(every_request([UNTIL_CLOSE, "close"])),
    ],
    ids=["close-notify-and-a-close", "close-notify-alone"],
)
@asyncio_test
async def test_a_body_ended_by_close_notify_is_read_whole(serve: Callable[[], Server]) -> None:
    async with serve() as server:
        (facts,) = await probe([url(server)])
    assert facts.error is None
    assert facts.body == V1_CHALLENGE
    assert assess(facts).outcome is Outcome.PASS


@asyncio_test
async def test_a_challenge_in_a_header_over_tls_keeps_its_answer_intact() -> None:
    async with tls_server(every_request([challenge_answer("X-Extra: " + "e" * 50_000)])) as server:
        (facts,) = await probe([url(server)])
    assert facts.headers["x-extra"] == "e" * 50_000
    assert assess(facts).outcome is Outcome.PASS
