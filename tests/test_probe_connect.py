"""Connecting a probe: Happy Eyeballs, one connect budget, invalid names, the egress proxy.

Real loopback servers answer; an opener stands in for the network only where loopback cannot
play a part (a blackholed address is an attempt that never completes). The egress proxy is a
real CONNECT proxy on 127.0.0.1 that records what it was asked for.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import httpx
import pytest
from scripted_server import Peer, Server, answer, answering, asyncio_test, request, until

from monitor.addresses import refusal_reason
from monitor.config import ProbeConfig
from monitor.models import EndpointSpec, ProbeErrorKind
from monitor.probe import Http1Transport, Prober
from monitor.probe.connect import (
    AddressRefusedError,
    ProxyChoice,
    ProxyRoute,
    interleave,
    race,
)
from monitor.probe.dns import resolve
from monitor.probe.errors import classify

CHALLENGE = answer(b"{}", "PAYMENT-REQUIRED: e30=", status="402 Payment Required")


def transport(
    table: Mapping[str, list[str]],
    opener: Callable[..., object] | None = None,
    proxy: ProxyRoute | None = None,
) -> Http1Transport:
    async def resolver(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    return Http1Transport(
        ssl_context=ssl.create_default_context(),
        policy=None,
        resolver=resolver,
        opener=opener,  # type: ignore[arg-type]
        proxies=ProxyChoice({"http": proxy, "https": proxy}) if proxy else None,
    )


class Blackhole:
    """An opener: addresses in `dead` never answer; the others connect to 127.0.0.1:port."""

    def __init__(self, dead: set[str], port: int) -> None:
        self.dead = dead
        self.port = port
        self.attempts: list[tuple[str, float]] = []
        self.cancelled: list[str] = []

    async def __call__(
        self, factory: Callable[[], asyncio.Protocol], address: str, port: int
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        self.attempts.append((address, time.monotonic()))
        if address in self.dead:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled.append(address)
                raise
        loop = asyncio.get_running_loop()
        return await loop.create_connection(factory, "127.0.0.1", self.port)


# Happy Eyeballs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolved", "order"),
    [
        ([], []),
        (["1.1.1.1"], ["1.1.1.1"]),
        (["2001:db8::1", "2001:db8::2", "1.1.1.1"], ["2001:db8::1", "1.1.1.1", "2001:db8::2"]),
        (["1.1.1.1", "1.1.1.2", "2001:db8::1"], ["1.1.1.1", "2001:db8::1", "1.1.1.2"]),
        (
            ["1.1.1.1", "1.1.1.2", "2001:db8::1", "2001:db8::2"],
            ["1.1.1.1", "2001:db8::1", "1.1.1.2", "2001:db8::2"],
        ),
        (["2001:db8::1", "2001:db8::2"], ["2001:db8::1", "2001:db8::2"]),
    ],
)
def test_addresses_alternate_families_starting_with_the_first_answer(
    resolved: list[str], order: list[str]
) -> None:
    assert interleave(resolved) == order


@asyncio_test
async def test_a_blackholed_first_address_costs_one_attempt_delay_not_the_connect_timeout() -> None:
    async with Server(answering([CHALLENGE])) as server:
        opener = Blackhole({"2001:db8::dead"}, server.port)
        pool = transport({"seller.test": ["2001:db8::dead", "192.0.2.1"]}, opener)
        started = time.monotonic()
        response = await pool.handle_async_request(request("http://seller.test/", connect=20.0))
        elapsed = time.monotonic() - started
        assert response.status_code == 402
        await response.aclose()
        assert [address for address, _ in opener.attempts] == ["2001:db8::dead", "192.0.2.1"]
        assert opener.cancelled == ["2001:db8::dead"]  # the loser is given up, not left running
        # The old sequential connect waited the whole 20 s budget on the dead address.
        assert elapsed < 10.0
        await pool.aclose()


@asyncio_test
async def test_two_dead_addresses_before_a_live_one_still_connect() -> None:
    async with Server(answering([CHALLENGE])) as server:
        dead = {"192.0.2.1", "2001:db8::1"}
        opener = Blackhole(dead, server.port)
        table = {"seller.test": ["192.0.2.1", "2001:db8::1", "192.0.2.2"]}
        pool = transport(table, opener)
        response = await pool.handle_async_request(request("http://seller.test/", connect=20.0))
        assert response.status_code == 402
        await response.aclose()
        assert [address for address, _ in opener.attempts] == [
            "192.0.2.1",
            "2001:db8::1",
            "192.0.2.2",
        ]
        assert sorted(opener.cancelled) == sorted(dead)
        await pool.aclose()


@asyncio_test
async def test_a_refused_attempt_starts_the_next_one_at_once() -> None:
    async with Server(answering([CHALLENGE])) as server:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
        closed.close()  # nothing listens there: connecting is refused at once

        async def opener(
            factory: Callable[[], asyncio.Protocol], address: str, port: int
        ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
            target = refused_port if address == "192.0.2.1" else server.port
            return await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", target)

        winner = await race(["192.0.2.1", "192.0.2.2"], 80, asyncio.Protocol, opener, delay=3600)
        winner[0].close()  # with a one-hour delay, only the failure can have started attempt 2


@asyncio_test
async def test_every_address_refused_is_a_connect_error_caused_by_the_first() -> None:
    async def opener(*_: object) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(httpx.ConnectError) as info:
        await race(["192.0.2.1", "192.0.2.2"], 80, asyncio.Protocol, opener)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


@asyncio_test
async def test_all_addresses_blackholed_time_out_within_one_budget() -> None:
    addresses = [f"192.0.2.{n}" for n in range(1, 31)]
    opener = Blackhole(set(addresses), 9)
    pool = transport({"seller.test": addresses}, opener)
    started = time.monotonic()
    with pytest.raises(httpx.ConnectTimeout, match=r"connect to seller\.test:80 timed out"):
        await pool.handle_async_request(request("http://seller.test/", connect=1.0))
    # One budget for the whole race (10x it here); the 30 addresses one after another, each
    # with its own budget, would take 30 s.
    assert time.monotonic() - started < 10.0
    await until(lambda: len(opener.cancelled) == len(opener.attempts))
    await pool.aclose()


# Names that are not host names --------------------------------------------------------------


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example", ".leading.example"])
@asyncio_test
async def test_an_invalid_host_name_is_a_dns_error_not_an_exception(host: str) -> None:
    with pytest.raises(socket.gaierror, match="invalid host name"):
        await resolve(host, 80)


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example"])
def test_a_redirect_to_an_invalid_host_name_is_one_failed_check(host: str) -> None:
    async def go() -> None:
        location = f"Location: http://{host}/x"
        async with Server(answering([answer(b"", location, status="302 Found")])) as server:
            config = ProbeConfig(allow_private_addresses=True)
            async with Prober(config, clock=_now) as prober:
                facts = await prober.probe(EndpointSpec(url=server.url("/"), method="GET"))
        assert facts.error_kind is ProbeErrorKind.DNS
        assert facts.error is not None
        assert facts.error.startswith(f"invalid host name {host[:20]}")
        assert facts.redirects == 1

    asyncio.run(asyncio.wait_for(go(), 30))


def test_an_exception_of_no_known_kind_is_a_monitor_error() -> None:
    kind, message, _ = classify(ZeroDivisionError("x\n" * 500), ProbeConfig(), None)
    assert kind is ProbeErrorKind.MONITOR
    assert message.startswith("monitor error: ZeroDivisionError: x x x")
    assert "\n" not in message
    assert len(message) <= 300


def test_a_resolver_that_breaks_is_one_monitor_check_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise RuntimeError("resolver bug")

    async def go() -> None:
        pool = Http1Transport(
            ssl_context=ssl.create_default_context(), policy=None, resolver=broken
        )
        async with Prober(ProbeConfig(), clock=_now, transport=pool) as prober:
            facts = await prober.probe(EndpointSpec(url="http://seller.test/", method="GET"))
        assert facts.error_kind is ProbeErrorKind.MONITOR
        assert facts.error == "monitor error: RuntimeError: resolver bug"

    asyncio.run(go())
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "seller.test" in errors[0].getMessage()


def _now() -> datetime:
    return datetime(2026, 1, 2, tzinfo=UTC)


# The egress proxy -----------------------------------------------------------------------------


class ConnectProxy(Server):
    """A loopback HTTP CONNECT proxy that relays to 127.0.0.1:`port` whatever address is asked.

    It records each CONNECT target and Proxy-Authorization, and can answer a fixed status
    instead of tunnelling, or never answer for the addresses in `stalled`.
    """

    def __init__(
        self,
        relay_port: int,
        status: str = "200 Connection established",
        stalled: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(self._relay)
        self.relay_port = relay_port
        self.status = status
        self.stalled = stalled
        self.targets: list[str] = []
        self.authorizations: list[str | None] = []

    async def _relay(self, peer: Peer) -> None:
        reader, writer = peer.reader, peer.writer
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ")
        assert method == "CONNECT"
        headers = dict(line.split(": ", 1) for line in head[1:] if line)
        self.targets.append(target)
        self.authorizations.append(headers.get("Proxy-Authorization"))
        if target.rsplit(":", 1)[0] in self.stalled:
            await asyncio.sleep(3600)  # a target the proxy cannot reach, and says nothing
        writer.write(f"HTTP/1.1 {self.status}\r\n\r\n".encode())
        if not self.status.startswith("200"):
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.relay_port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


def _proxied(table: Mapping[str, list[str]], proxy_port: int) -> Http1Transport:
    route = ProxyRoute.from_url(f"http://probe:s%3Acret@127.0.0.1:{proxy_port}")
    return transport(table, proxy=route)


@asyncio_test
async def test_the_proxy_is_asked_for_the_checked_address_with_its_credentials() -> None:
    async with Server(answering([CHALLENGE])) as server, ConnectProxy(server.port) as proxy:
        pool = _proxied({"seller.test": ["93.184.216.34"]}, proxy.port)
        response = await pool.handle_async_request(request("http://seller.test/pay"))
        assert response.status_code == 402
        await response.aclose()
        assert proxy.targets == ["93.184.216.34:80"]  # an address, never a name to re-resolve
        token = base64.b64encode(b"probe:s:cret").decode()
        assert proxy.authorizations == [f"Basic {token}"]
        assert server.requests[0].header("host") == "seller.test"
        await pool.aclose()


@asyncio_test
async def test_the_address_policy_still_applies_through_the_proxy() -> None:
    async with Server(answering([CHALLENGE])) as server, ConnectProxy(server.port) as proxy:
        route = ProxyRoute.from_url(f"http://127.0.0.1:{proxy.port}")
        pool = transport({"inward.test": ["93.184.216.34", "10.0.0.7"]}, proxy=route)
        pool._policy = refusal_reason  # the shipped policy, for the target only
        with pytest.raises(AddressRefusedError):
            await pool.handle_async_request(request("http://inward.test/"))
        assert proxy.targets == []  # refused before the proxy heard of it
        await pool.aclose()


@pytest.mark.parametrize(
    ("status", "kind"),
    [("502 Bad Gateway", ProbeErrorKind.CONNECT), ("403 Forbidden", ProbeErrorKind.PROXY)],
)
@asyncio_test
async def test_a_proxy_refusal_names_whose_fault_it_is(status: str, kind: ProbeErrorKind) -> None:
    async with ConnectProxy(9, status=status) as proxy:
        pool = _proxied({"seller.test": ["93.184.216.34"]}, proxy.port)
        with pytest.raises(httpx.TransportError) as info:
            await pool.handle_async_request(request("http://seller.test/"))
        found, message, _ = classify(info.value, ProbeConfig(), None)
        assert found is kind
        assert status.split()[0] in message
        assert "s%3Acret" not in message
        await pool.aclose()


@asyncio_test
async def test_an_unreachable_proxy_is_the_monitors_problem_not_the_endpoints() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    pool = _proxied({"seller.test": ["93.184.216.34"]}, port)
    with pytest.raises(httpx.ProxyError) as info:
        await pool.handle_async_request(request("http://seller.test/"))
    kind, message, _ = classify(info.value, ProbeConfig(), None)
    assert kind is ProbeErrorKind.PROXY
    assert "unreachable" in message
    await pool.aclose()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://proxy.test:3128", "must start with http://"),
        ("socks5://proxy.test", "must start with http://"),
        ("http://", "no host|not a valid URL"),
        ("http://user:pw@[::1", "not a valid URL"),
    ],
)
def test_an_unusable_proxy_url_is_refused_without_repeating_it(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        ProxyRoute.from_url(url)
    assert url not in str(info.value)


@pytest.mark.parametrize(
    ("settings", "environ", "expected"),
    [
        ((None, False), {"HTTPS_PROXY": "http://p:1"}, {}),  # trust_env off: ignored
        (("http://cfg:2", True), {"HTTPS_PROXY": "http://p:1"}, {"http": 2, "https": 2}),
        ((None, True), {"HTTPS_PROXY": "http://p:1"}, {"https": 1}),
        ((None, True), {"https_proxy": "http://p:3", "HTTPS_PROXY": "http://p:1"}, {"https": 3}),
        ((None, True), {"ALL_PROXY": "http://p:4"}, {"http": 4, "https": 4}),
        ((None, True), {"HTTP_PROXY": "http://p:5", "REQUEST_METHOD": "GET"}, {}),  # httpoxy
        ((None, True), {"http_proxy": "http://p:5", "REQUEST_METHOD": "GET"}, {"http": 5}),
    ],
)
def test_the_proxy_comes_from_the_config_or_with_trust_env_from_the_environment(
    settings: tuple[str | None, bool], environ: dict[str, str], expected: dict[str, int]
) -> None:
    choice = ProxyChoice.from_settings(*settings, environ)
    ports = {scheme: route.port for scheme, route in (choice.routes if choice else {}).items()}
    assert ports == expected


@pytest.mark.parametrize(
    ("no_proxy", "host", "direct"),
    [
        ("", "api.seller.test", False),
        ("seller.test", "api.seller.test", True),
        (".seller.test", "api.seller.test", True),
        ("seller.test", "seller.test", True),
        ("seller.test", "notseller.test", False),
        ("*", "anything.test", True),
        ("10.0.0.7, other.test", "10.0.0.7", True),
        ("::1", "[::1]", True),
    ],
)
def test_no_proxy_lets_matching_hosts_connect_directly(
    no_proxy: str, host: str, direct: bool
) -> None:
    choice = ProxyChoice.from_settings(
        None, True, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": no_proxy}
    )
    assert choice is not None
    assert (choice.route_for("https", host) is None) is direct


def test_an_unusable_proxy_variable_is_named_without_its_value() -> None:
    with pytest.raises(
        ValueError, match="HTTPS_PROXY: the proxy URL must start with http://"
    ) as info:
        ProxyChoice.from_settings(None, True, {"HTTPS_PROXY": "socks5://u:secret@p:1"})
    assert "secret" not in str(info.value)


@asyncio_test
async def test_a_target_the_proxy_cannot_reach_costs_one_attempt_delay() -> None:
    # Unfixed, the tunnels were tried one after another: the stalled first address took the
    # whole connect budget (20 s here) and the check failed although the second one works.
    async with (
        Server(answering([CHALLENGE])) as server,
        ConnectProxy(server.port, stalled=frozenset({"93.184.216.34"})) as proxy,
    ):
        route = ProxyRoute.from_url(f"http://127.0.0.1:{proxy.port}")
        pool = transport({"seller.test": ["93.184.216.34", "93.184.216.35"]}, proxy=route)
        started = time.monotonic()
        response = await pool.handle_async_request(request("http://seller.test/", connect=20.0))
        assert response.status_code == 402
        await response.aclose()
        assert time.monotonic() - started < 10.0
        assert proxy.targets == ["93.184.216.34:80", "93.184.216.35:80"]
        await pool.aclose()


@pytest.mark.parametrize("url", ["https://xn--a.com/x", "http://xn--a.com:8080/?q=1"])
def test_a_host_idna_refuses_is_one_dns_check_not_a_monitor_error(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        async with Prober(ProbeConfig(allow_private_addresses=True), clock=_now) as prober:
            facts = await prober.probe(EndpointSpec(url=url, method="GET"))
        assert facts.error_kind is ProbeErrorKind.DNS
        assert facts.error is not None
        assert facts.error.startswith("invalid host name")

    asyncio.run(asyncio.wait_for(go(), 30))
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
