"""Tests of monitor.probe against the loopback demo seller (plus MockTransport unit tests)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.server import DemoServer, start_demo_server
from monitor.addresses import refusal_reason
from monitor.config import ProbeConfig
from monitor.models import EndpointSpec, ProbeErrorKind, ProbeFacts

try:
    import monitor.x402.sampling  # noqa: F401
except ImportError:  # pragma: no cover - stand-in until monitor/x402/sampling.py lands

    @dataclass(frozen=True)
    class _SampleRequest:
        method: str | None = None
        query: Mapping[str, str] = field(default_factory=dict)
        body: Any = None

    def _sample_request(input_schema: Mapping[str, Any] | None) -> _SampleRequest:
        schema = dict(input_schema or {})
        fields = schema.get("bodyFields") or {}
        body = {name: "example" for name, spec in fields.items() if spec.get("required")}
        return _SampleRequest(method=schema.get("method"), body=body)

    _stand_in = types.ModuleType("monitor.x402.sampling")
    _stand_in.SampleRequest = _SampleRequest  # type: ignore[attr-defined]
    _stand_in.sample_request = _sample_request  # type: ignore[attr-defined]
    sys.modules["monitor.x402.sampling"] = _stand_in

from scripted_server import Peer, Server, answer, asyncio_test, until

from monitor.probe import AddressRefusedError, Http1Transport, Prober, build_transport
from monitor.probe import prober as probe_module

FIXTURES = Path(__file__).parent / "fixtures" / "x402"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CAP = 1024 * 1024


def clock() -> datetime:
    return NOW


def config(**overrides: Any) -> ProbeConfig:
    """Return a test config: loopback allowed, generous timeouts, overrides applied."""
    settings: dict[str, Any] = {
        "allow_private_addresses": True,
        "timeout": timedelta(seconds=30),
        "connect_timeout": timedelta(seconds=30),
    }
    settings.update(overrides)
    return ProbeConfig(**settings)


def run_probe(
    spec: EndpointSpec | str,
    cfg: ProbeConfig | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ProbeFacts:
    """Probe one endpoint (a spec or a bare URL) with a fresh Prober."""
    target = EndpointSpec(url=spec) if isinstance(spec, str) else spec

    async def go() -> ProbeFacts:
        async with Prober(cfg or config(), clock=clock, transport=transport) as prober:
            return await prober.probe(target)

    return asyncio.run(go())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def server(demo_server: DemoServer) -> DemoServer:
    """Return the session demo server with its counters zeroed."""
    demo_server.reset_stats()
    return demo_server


# Demo behaviours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "body_file"),
    [
        ("/v1/valid", 402, "01-v1-evm-spec-base-sepolia.json"),
        ("/v1/solana", 402, "13-v1-evm-svm-real-skill-registry-dual-rail.json"),
        ("/v1/post-bodyfields", 402, "11-v1-evm-real-truecast-post-bodyfields.json"),
        ("/invalid/empty-payto", 402, "08-v1-evm-real-aeon-empty-payto-INVALID.json"),
    ],
)
def test_v1_body_challenges_are_returned_verbatim(
    demo_url: str, path: str, status: int, body_file: str
) -> None:
    facts = run_probe(demo_url + path)
    assert facts.http_status == status
    assert facts.body == fixture_bytes(body_file)
    assert facts.headers["content-type"] == "application/json"
    assert "payment-required" not in facts.headers
    assert facts.error_kind is None
    assert facts.error is None
    assert facts.body_truncated is False
    assert facts.latency_ms is not None
    assert facts.latency_ms > 0
    assert facts.started_at == NOW
    assert facts.url == demo_url + path
    assert facts.final_url == demo_url + path
    assert facts.redirects == 0
    assert (facts.method, facts.method_guessed) == ("GET", True)


@pytest.mark.parametrize(
    ("path", "header_file", "cache_control"),
    [
        ("/v2/valid", "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64", None),
        ("/v2/sdk", "G1-v2-python-sdk-2.25-fastapi-PAYMENT-REQUIRED.b64", "no-store"),
    ],
)
def test_v2_header_challenges(
    demo_url: str, path: str, header_file: str, cache_control: str | None
) -> None:
    facts = run_probe(demo_url + path)
    assert facts.http_status == 402
    assert facts.headers["payment-required"] == fixture_bytes(header_file).decode().strip()
    assert facts.headers.get("cache-control") == cache_control
    assert facts.body == b"{}"


@pytest.mark.parametrize(
    ("path", "status", "header", "value"),
    [
        ("/invalid/no-challenge", 402, "content-length", "0"),
        ("/not-found", 404, "content-type", "application/json"),
        ("/no/such/path", 404, "content-type", "application/json"),
        ("/error", 500, "content-type", "application/json"),
        ("/free", 200, "content-type", "application/json"),
        ("/rate-limited", 429, "retry-after", "30"),
    ],
)
def test_other_demo_answers(demo_url: str, path: str, status: int, header: str, value: str) -> None:
    facts = run_probe(demo_url + path)
    assert facts.http_status == status
    assert facts.headers[header] == value
    assert facts.error_kind is None
    if path == "/invalid/no-challenge":
        assert facts.body == b""
    if path == "/free":
        assert json.loads(facts.body)["ok"] is True


def test_request_is_unpaid_json_with_honest_user_agent(server: DemoServer, demo_url: str) -> None:
    cfg = config(user_agent="x402-monitor-test/1")
    run_probe(demo_url + "/v1/valid", cfg)
    sent = server.last_headers
    assert sent["accept"] == "application/json"
    assert sent["user-agent"] == "x402-monitor-test/1"
    assert not {"x-payment", "payment-signature"} & set(sent)


def test_slow_answer_latency_is_measured(demo_url: str) -> None:
    facts = run_probe(demo_url + "/slow?delay=0.1")
    assert facts.http_status == 402
    assert facts.latency_ms is not None
    assert facts.latency_ms >= 100


# Redirects, caps, timeouts ------------------------------------------------------------


def test_redirect_is_followed_and_recorded(demo_url: str) -> None:
    facts = run_probe(demo_url + "/redirect")
    assert facts.http_status == 402
    assert facts.redirects == 1
    assert facts.url == demo_url + "/redirect"
    assert facts.final_url == demo_url + "/v1/valid"
    assert facts.body == fixture_bytes("01-v1-evm-spec-base-sepolia.json")


def test_redirect_loop_is_too_many_redirects(demo_url: str) -> None:
    facts = run_probe(demo_url + "/redirect-loop")
    assert facts.error_kind is ProbeErrorKind.TOO_MANY_REDIRECTS
    assert facts.error == "more than 3 redirects"
    assert facts.http_status is None
    assert facts.redirects == 3


def test_max_redirects_is_configurable(demo_url: str) -> None:
    facts = run_probe(demo_url + "/redirect", config(max_redirects=0))
    assert facts.error_kind is ProbeErrorKind.TOO_MANY_REDIRECTS
    assert facts.error == "more than 0 redirects"


def test_body_is_capped(demo_url: str) -> None:
    facts = run_probe(demo_url + "/big", config(max_body_bytes=CAP))
    assert facts.http_status == 402
    assert facts.body_truncated is True
    assert len(facts.body) == CAP
    assert facts.headers["content-length"] == str(5 * 1024 * 1024)


def test_total_timeout(demo_url: str) -> None:
    facts = run_probe(demo_url + "/slow?delay=2", config(timeout=timedelta(seconds=0.2)))
    assert facts.error_kind is ProbeErrorKind.TIMEOUT
    assert facts.error == "timeout after 200ms"
    assert facts.timeout_s == pytest.approx(0.2)
    assert facts.http_status is None


def test_default_slow_delay_is_configurable(demo_url: str) -> None:
    facts = run_probe(demo_url + "/slow", config(timeout=timedelta(seconds=0.2)))
    assert facts.error_kind is ProbeErrorKind.TIMEOUT  # the test server's default is 2 s


# Address policy -----------------------------------------------------------------------


def test_private_target_is_blocked_before_any_connection(server: DemoServer, demo_url: str) -> None:
    facts = run_probe(demo_url + "/v1/valid", config(allow_private_addresses=False))
    assert facts.error_kind is ProbeErrorKind.BLOCKED
    assert facts.error == "blocked: loopback address 127.0.0.1"
    assert facts.http_status is None
    assert (server.connections, server.requests) == (0, 0)


def test_host_name_resolving_to_loopback_is_blocked(server: DemoServer) -> None:
    port = server.server_address[1]
    facts = run_probe(f"http://localhost:{port}/v1/valid", config(allow_private_addresses=False))
    assert facts.error_kind is ProbeErrorKind.BLOCKED
    assert facts.error is not None
    assert facts.error.startswith("blocked: loopback address ")
    assert (server.connections, server.requests) == (0, 0)


def test_redirect_hop_to_refused_address_is_blocked(server: DemoServer, demo_url: str) -> None:
    # The policy lets 127.0.0.1 pass (standing in for a public seller) and refuses the rest;
    # the seller redirects to a second server on 127.0.0.2, which must never be contacted.
    try:
        other, other_url = start_demo_server("127.0.0.2", 0)
    except OSError:  # pragma: no cover - platforms without the whole 127/8 on loopback
        pytest.skip("cannot bind 127.0.0.2")
    try:
        cfg = config(allow_private_addresses=False)

        def policy(ip: str) -> str | None:
            return None if ip == "127.0.0.1" else refusal_reason(ip)

        target = f"{other_url}/v1/valid"
        facts = run_probe(
            f"{demo_url}/redirect?to={target}", cfg, build_transport(cfg, policy=policy)
        )
        assert facts.error_kind is ProbeErrorKind.BLOCKED
        assert facts.error == "blocked: loopback address 127.0.0.2"
        assert facts.redirects == 1
        assert facts.final_url == target
        assert server.requests == 1  # the first hop was allowed and answered
        assert (other.connections, other.requests) == (0, 0)
    finally:
        other.stop()


class _RecordingOpener:
    """Stands in for `loop.create_connection`: records each connect, refuses or forwards it.

    Addresses in `forward` are connected to `forward_to` (a loopback server) instead, so a
    test can follow a guarded connection to a real answer.
    """

    def __init__(
        self, forward: Iterable[str] = (), forward_to: tuple[str, int] = ("127.0.0.1", 0)
    ) -> None:
        self.log: list[tuple[str, int, str | None]] = []
        self.forward = set(forward)
        self.forward_to = forward_to

    async def __call__(
        self,
        factory: Callable[[], asyncio.Protocol],
        host: str,
        port: int,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        # TLS runs inside the protocol: the name it checks is the protocol's server_hostname.
        server_hostname = getattr(factory(), "server_hostname", None)
        self.log.append((host, port, server_hostname))
        if host in self.forward:
            loop = asyncio.get_running_loop()
            return await loop.create_connection(factory, *self.forward_to)
        raise ConnectionRefusedError(111, "Connection refused")


def _guarded(opener: _RecordingOpener, table: Mapping[str, list[str]]) -> Http1Transport:
    return Http1Transport(
        ssl_context=ssl.create_default_context(),
        policy=refusal_reason,
        resolver=_resolver(table),
        opener=opener,
    )


def _send(transport: Http1Transport, url: str, connect_timeout: float = 30.0) -> httpx.Response:
    async def go() -> httpx.Response:
        request = httpx.Request(
            "GET", url, extensions={"timeout": {"connect": connect_timeout, "read": 30.0}}
        )
        response = await transport.handle_async_request(request)
        await response.aread()
        await transport.aclose()
        return response

    return asyncio.run(go())


def _resolver(table: Mapping[str, list[str]]) -> Callable[[str, int], Any]:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def test_guard_connects_to_the_checked_address_and_keeps_host_name_for_tls() -> None:
    # The real Prober and transport with a recording socket layer: the TCP connect goes to
    # the IP the guard checked, while TLS receives the URL's host name (SNI, cert check).
    opener = _RecordingOpener()
    cfg = config(allow_private_addresses=False)
    transport = _guarded(opener, {"seller.example": ["93.184.216.34"]})
    facts = run_probe("https://seller.example/api", cfg, transport)
    assert opener.log == [("93.184.216.34", 443, "seller.example")]
    assert facts.error_kind is ProbeErrorKind.CONNECT
    assert facts.error == "connection refused"


def test_build_transport_guards_unless_private_addresses_are_allowed(
    server: DemoServer, demo_url: str
) -> None:
    guarded = build_transport(config(allow_private_addresses=False))
    with pytest.raises(AddressRefusedError):
        _send(guarded, demo_url + "/v1/valid")
    assert (server.connections, server.requests) == (0, 0)
    assert _send(build_transport(config()), demo_url + "/v1/valid").status_code == 402


def test_guard_refuses_when_any_resolved_address_is_refused() -> None:
    opener = _RecordingOpener()
    transport = _guarded(opener, {"mixed.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(AddressRefusedError) as caught:
        _send(transport, "http://mixed.example/")
    assert caught.value.reason == "private address 10.0.0.7"
    assert opener.log == []


def test_guard_tries_the_next_checked_address_on_connect_failure(server: DemoServer) -> None:
    opener = _RecordingOpener(
        forward={"1.1.1.1"}, forward_to=("127.0.0.1", server.server_address[1])
    )
    table = {"dual.example": ["2606:4700::1", "1.1.1.1", "8.8.8.8"]}
    response = _send(_guarded(opener, table), "http://dual.example/v1/valid")
    assert response.status_code == 402
    assert opener.log == [("2606:4700::1", 80, None), ("1.1.1.1", 80, None)]  # stops at 1.1.1.1
    assert server.last_headers["host"] == "dual.example"


def test_guard_maps_resolution_failures() -> None:
    opener = _RecordingOpener()
    with pytest.raises(httpx.ConnectError) as caught:
        _send(_guarded(opener, {}), "http://nowhere.example/")
    assert isinstance(caught.value.__cause__, socket.gaierror)

    async def hang(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return []

    slow = Http1Transport(ssl_context=ssl.create_default_context(), policy=None, resolver=hang)
    with pytest.raises(httpx.ConnectTimeout):
        _send(slow, "http://slow.example/", connect_timeout=0.05)
    assert opener.log == []


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """Create a self-signed certificate valid for DNS name `localhost` only (no IP SAN)."""
    if shutil.which("openssl") is None:  # pragma: no cover
        pytest.skip("openssl not available")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_through_the_guard_verifies_the_host_name(tls_files: tuple[Path, Path]) -> None:
    # The certificate names `localhost` only: the handshake succeeds through the guard (which
    # connects to 127.0.0.1) only if SNI and verification use the host name, and fails when
    # the URL itself is the IP (control).
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    https, _ = start_demo_server("127.0.0.1", 0)
    https.socket = server_ctx.wrap_socket(https.socket, server_side=True)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    cfg = config(allow_private_addresses=False)
    resolved: list[str] = []

    def policy(ip: str) -> str | None:
        resolved.append(ip)
        return None if ip in ("127.0.0.1", "::1") else refusal_reason(ip)

    port = https.server_address[1]
    try:
        facts = run_probe(
            f"https://localhost:{port}/v2/valid",
            cfg,
            build_transport(cfg, policy=policy, verify=client_ctx),
        )
        assert facts.http_status == 402, facts.error
        assert "127.0.0.1" in resolved
        control = run_probe(
            f"https://127.0.0.1:{port}/v2/valid",
            cfg,
            build_transport(cfg, policy=policy, verify=client_ctx),
        )
        assert control.error_kind is ProbeErrorKind.TLS
        assert control.error is not None
        assert "mismatch, certificate is not valid for '127.0.0.1'" in control.error
    finally:
        https.stop()


# Request method and body --------------------------------------------------------------

BODY_SCHEMA: Mapping[str, Any] = {
    "type": "http",
    "method": "POST",
    "bodyType": "json",
    "bodyFields": {
        "prompt": {"type": "string", "required": True, "description": "what to check"},
        "castHash": {"type": "string"},
    },
}


def test_declared_post_sends_the_sampled_body(server: DemoServer, demo_url: str) -> None:
    from monitor.x402.sampling import sample_request

    spec = EndpointSpec(url=demo_url + "/post-only", method="POST", input_schema=BODY_SCHEMA)
    facts = run_probe(spec)
    assert facts.http_status == 402
    assert (facts.method, facts.method_guessed) == ("POST", False)
    assert server.last_post_body is not None
    sent = json.loads(server.last_post_body)
    assert sent == sample_request(BODY_SCHEMA).body
    assert "prompt" in sent
    assert server.last_headers["content-type"] == "application/json"
    assert server.hits["/post-only"] == 1


def test_method_from_the_input_schema_counts_as_declared(server: DemoServer, demo_url: str) -> None:
    facts = run_probe(EndpointSpec(url=demo_url + "/post-only", input_schema=BODY_SCHEMA))
    assert (facts.http_status, facts.method, facts.method_guessed) == (402, "POST", False)
    assert server.hits["/post-only"] == 1


@pytest.mark.parametrize(("body", "expected"), [({"q": 1}, b'{"q":1}'), (None, b"null")])
def test_configured_body_is_sent_as_is(
    server: DemoServer, demo_url: str, body: Any, expected: bytes
) -> None:
    spec = EndpointSpec(url=demo_url + "/post-only", method="POST", body=body, has_body=True)
    facts = run_probe(spec)
    assert facts.http_status == 402
    assert server.last_post_body is not None
    assert json.loads(server.last_post_body) == json.loads(expected)


def test_sampled_query_is_added_to_get_requests(
    server: DemoServer, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    @dataclass(frozen=True)
    class Sample:
        method: str | None
        query: Mapping[str, str]
        body: Any

    monkeypatch.setattr(
        probe_module,
        "sample_request",
        lambda schema: Sample("GET", {"city": "Paris", "units": "metric"}, {}),
    )
    facts = run_probe(EndpointSpec(url=demo_url + "/v1/valid?units=imperial"))
    assert facts.http_status == 402
    assert server.last_path == "/v1/valid?units=imperial&city=Paris"


def test_method_guessing_retries_405_as_post(server: DemoServer, demo_url: str) -> None:
    facts = run_probe(demo_url + "/post-only")
    assert facts.http_status == 402
    assert (facts.method, facts.method_guessed) == ("POST", True)
    assert "payment-required" in facts.headers
    assert server.hits["/post-only"] == 2
    assert server.last_post_body == b"{}"


def test_declared_method_is_never_guessed(server: DemoServer, demo_url: str) -> None:
    facts = run_probe(EndpointSpec(url=demo_url + "/post-only", method="GET"))
    assert facts.http_status == 405
    assert facts.headers["allow"] == "POST"
    assert (facts.method, facts.method_guessed) == ("GET", False)
    assert server.hits["/post-only"] == 1


def test_guessed_get_that_answers_is_not_retried(server: DemoServer, demo_url: str) -> None:
    facts = run_probe(demo_url + "/not-found")
    assert (facts.http_status, facts.method, facts.method_guessed) == (404, "GET", True)
    assert server.hits["/not-found"] == 1


# Network errors -----------------------------------------------------------------------


def test_closed_port_is_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    facts = run_probe(f"http://127.0.0.1:{port}/")
    assert facts.error_kind is ProbeErrorKind.CONNECT
    assert facts.error == "connection refused"
    assert facts.http_status is None


@pytest.mark.parametrize("allow_private", [True, False])
def test_unresolvable_name_is_dns_error(allow_private: bool) -> None:
    facts = run_probe(
        "http://no-such-host.invalid/x", config(allow_private_addresses=allow_private)
    )
    assert facts.error_kind is ProbeErrorKind.DNS
    assert facts.error == "DNS lookup failed for no-such-host.invalid"


# Concurrency --------------------------------------------------------------------------


class HeldAnswers:
    """A loopback seller that holds every answer until the test releases it.

    Requests overlap for as long as the test says, however slow the machine, so how many
    are in flight at once depends on the prober's limits alone.
    """

    def __init__(self) -> None:
        self.held: list[asyncio.Event] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, peer: Peer) -> None:
        while await peer.request() is not None:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            release = asyncio.Event()
            self.held.append(release)
            await release.wait()
            self.in_flight -= 1  # before the answer: the client may send its next request at once
            await peer.send(answer(b"{}", status="402 Payment Required"))

    async def release(self, expected: int) -> None:
        """Wait for `expected` held requests, check no more arrive, and answer them."""
        await until(lambda: len(self.held) >= expected)
        await asyncio.sleep(0.1)  # room for a request over the limit to arrive
        assert len(self.held) == expected
        for event in self.held:
            event.set()
        self.held.clear()


@asyncio_test
async def test_per_host_limit_is_honoured() -> None:
    seller = HeldAnswers()
    seen: list[ProbeFacts] = []
    async with Server(seller) as server:
        specs = [EndpointSpec(url=server.url(f"/paid?n={n}")) for n in range(6)]
        async with Prober(config(per_host=2, concurrency=10), clock=clock) as prober:
            probing = asyncio.create_task(prober.probe_many(specs, on_result=seen.append))
            for _ in range(3):
                await seller.release(2)
            results = await probing
    assert [facts.url for facts in results] == [spec.url for spec in specs]
    assert all(facts.http_status == 402 for facts in results)
    assert sorted(facts.url for facts in seen) == sorted(spec.url for spec in specs)
    assert seller.max_in_flight == 2


@asyncio_test
async def test_global_limit_spans_hosts() -> None:
    seller = HeldAnswers()
    async with Server(seller) as server:
        specs = [
            EndpointSpec(url=f"http://{host}:{server.port}/paid")
            for host in ("127.0.0.1", "localhost", "127.0.0.1", "localhost")
        ]
        async with Prober(config(per_host=4, concurrency=1), clock=clock) as prober:
            probing = asyncio.create_task(prober.probe_many(specs))
            for _ in specs:
                await seller.release(1)
            results = await probing
    assert [facts.http_status for facts in results] == [402] * 4
    assert seller.max_in_flight == 1


# Error mapping with MockTransport -----------------------------------------------------


def _raising(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


def _caused(exc: Exception, cause: BaseException) -> Exception:
    exc.__cause__ = cause
    return exc


def _cert_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_message = message
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (
            httpx.RemoteProtocolError("illegal status line"),
            ProbeErrorKind.PROTOCOL,
            "protocol error: illegal status line",
        ),
        (
            httpx.DecodingError("bad gzip"),
            ProbeErrorKind.PROTOCOL,
            "protocol error: bad gzip",
        ),
        (
            _caused(httpx.ReadError("reset"), ConnectionResetError()),
            ProbeErrorKind.CONNECT,
            "connection reset",
        ),
        (
            _caused(httpx.ConnectError("x"), ConnectionRefusedError()),
            ProbeErrorKind.CONNECT,
            "connection refused",
        ),
        (
            _caused(httpx.ConnectError("x"), _cert_error("certificate has expired")),
            ProbeErrorKind.TLS,
            "TLS error: certificate has expired",
        ),
        (
            _caused(httpx.ConnectError("x"), ssl.SSLError(1, "[SSL] wrong version number")),
            ProbeErrorKind.TLS,
            "TLS error: [SSL] wrong version number",
        ),
        (
            _caused(httpx.ConnectError("x"), socket.gaierror(-2, "Name or service not known")),
            ProbeErrorKind.DNS,
            "DNS lookup failed for seller.test",
        ),
        (httpx.ConnectTimeout("slow"), ProbeErrorKind.TIMEOUT, "connect timeout after 30s"),
        (httpx.ReadTimeout("slow"), ProbeErrorKind.TIMEOUT, "timeout after 30s"),
        (
            httpx.UnsupportedProtocol("ftp"),
            ProbeErrorKind.PROTOCOL,
            "unusable URL: ftp",
        ),
    ],
)
def test_transport_errors_are_mapped(exc: Exception, kind: ProbeErrorKind, message: str) -> None:
    facts = run_probe("https://seller.test/api", transport=_raising(exc))
    assert facts.error_kind is kind
    assert facts.error == message
    assert facts.http_status is None
    assert facts.final_url == "https://seller.test/api"


def test_a_programming_error_is_one_monitor_check_with_its_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Not swallowed and not a lost round: the check says the monitor failed, the log has why.
    facts = run_probe("https://seller.test/api", transport=_raising(ZeroDivisionError("boom")))
    assert facts.error_kind is ProbeErrorKind.MONITOR
    assert facts.error == "monitor error: ZeroDivisionError: boom"
    assert facts.http_status is None
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[0] is ZeroDivisionError


@pytest.mark.parametrize("url", ["http://[zz]/", "ftp://seller.test/", "nourl"])
def test_unusable_url_is_a_protocol_error(url: str) -> None:
    facts = run_probe(url)
    assert facts.error_kind is ProbeErrorKind.PROTOCOL
    assert facts.error is not None
    assert facts.error.startswith("unusable URL: ")


def test_repeated_headers_are_joined_and_names_lower_cased() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = [("X-Thing", "a"), ("x-thing", "b"), ("PAYMENT-REQUIRED", "e30=")]
        return httpx.Response(402, headers=headers, content=b"{}")

    facts = run_probe("https://seller.test/api", transport=httpx.MockTransport(handler))
    assert facts.headers["x-thing"] == "a, b"
    assert facts.headers["payment-required"] == "e30="


def test_body_of_exactly_the_cap_is_not_truncated() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(402, content=b"x" * 2048)

    exact = run_probe(
        "https://seller.test/api", config(max_body_bytes=2048), httpx.MockTransport(handler)
    )
    assert (len(exact.body), exact.body_truncated) == (2048, False)
    over = run_probe(
        "https://seller.test/api", config(max_body_bytes=2047 + 1024), httpx.MockTransport(handler)
    )
    assert (len(over.body), over.body_truncated) == (2048, False)
    under = run_probe(
        "https://seller.test/api", config(max_body_bytes=1024), httpx.MockTransport(handler)
    )
    assert (len(under.body), under.body_truncated) == (1024, True)
