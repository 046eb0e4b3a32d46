"""FacilitatorClient against a real loopback stub facilitator: outcomes, bounds, caching."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from scripted_server import until

from monitor.discovery import FacilitatorClient, SupportedResult, supported_url
from monitor.models import FacilitatorVerdict
from monitor.x402.decode import parse_challenge

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
SUPPORTED_06 = (FIXTURES / "06-supported-v2-spec.json").read_bytes()
USER_AGENT = "x402-monitor-test/1 (+https://example.invalid; facilitator check)"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T = TypeVar("T")
HOLD_S = 60.0
"""Longest a held answer waits for the test; reached only when the test is broken."""


class StubFacilitator(ThreadingHTTPServer):
    """Loopback facilitator: fixed answers per path prefix, counting requests per path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.last_headers: dict[str, str] = {}
        self.gates: dict[str, threading.Event] = {}
        self.meetings: dict[str, threading.Barrier] = {}

    def hold(self, name: str) -> threading.Event:
        """Hold answers under /hold-<name>/ until the returned event is set (a fresh one)."""
        with self.lock:
            gate = self.gates[name] = threading.Event()
        return gate

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def meeting(self, name: str, parties: int) -> threading.Barrier:
        with self.lock:
            return self.meetings.setdefault(name, threading.Barrier(parties, timeout=HOLD_S))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StubFacilitator

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.counts[self.path] += 1
            self.server.last_headers = {k.lower(): v for k, v in self.headers.items()}
        prefix = self.path.split("/")[1]
        if prefix.startswith("hold-"):  # /hold-<name>/...: answer once the test releases <name>
            self.server.gate(prefix.removeprefix("hold-")).wait(HOLD_S)
            prefix = "facilitator"
        elif prefix.startswith("meet-"):  # /meet-<n>-<name>/...: answer once n requests are in
            parties = int(prefix.split("-")[1])
            try:
                self.server.meeting(prefix, parties).wait()
            except threading.BrokenBarrierError:
                self._send(503, b"the other requests never came", "text/plain")
                return
            prefix = "facilitator"
        if self.path == "/facilitator/supported" or prefix == "facilitator":
            self._send(200, SUPPORTED_06)
        elif prefix == "e500":
            self._send(500, b"Internal Server Error", "text/plain")
        elif prefix == "e429":
            self._send(429, b"slow down", "text/plain")
        elif prefix == "e401":
            self._send(401, b'{"error":"unauthorized"}')
        elif prefix == "nonjson":
            self._send(200, b"<html><body>facilitator</body></html>", "text/html")
        elif prefix == "grouped":
            body = {
                "kinds": {"2": [{"x402Version": 2, "scheme": "exact", "network": "eip155:8453"}]}
            }
            self._send(200, json.dumps(body).encode())
        elif prefix == "big":
            self._send(200, b"[" + b" " * (5 * 1024 * 1024) + b"]")
        elif prefix == "redirect":
            self.send_response(302)
            self.send_header("Location", "/facilitator/supported")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the client may stop reading at its cap


@pytest.fixture(scope="module")
def stub() -> Iterator[StubFacilitator]:
    server = StubFacilitator()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def run(
    action: Callable[[FacilitatorClient], Awaitable[T]],
    clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> T:
    """Run `action` with a fresh client inside asyncio.run (pytest-asyncio is not used)."""

    async def go() -> T:
        client = FacilitatorClient(user_agent=USER_AGENT, clock=clock or FakeClock(), **options)
        async with client:
            return await action(client)

    return asyncio.run(go())


def fetch(base_url: str, **options: Any) -> SupportedResult:
    return run(lambda client: client.supported(base_url), **options)


def count(stub: StubFacilitator, path: str) -> int:
    with stub.lock:
        return stub.counts[path]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def test_supported_url_appends_the_path() -> None:
    assert (
        supported_url("https://x402.org/facilitator/") == "https://x402.org/facilitator/supported"
    )
    assert supported_url(" https://a.example ") == "https://a.example/supported"


def test_fixture_06_is_fetched_and_parsed(stub: StubFacilitator) -> None:
    result = fetch(f"{stub.base_url}/facilitator/")
    assert result.url == f"{stub.base_url}/facilitator/supported"
    assert (result.reachable, result.error, result.http_status) == (True, None, 200)
    assert result.fetched_at == T0
    assert result.supported is not None
    assert result.supported.valid
    assert len(result.supported.kinds) == 4
    header = (FIXTURES / "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64").read_text().strip()
    challenge = parse_challenge({"payment-required": header}, b"{}")
    assert result.verdict(challenge) == (FacilitatorVerdict.SUPPORTED, [])


def test_request_is_json_with_an_honest_user_agent(stub: StubFacilitator) -> None:
    fetch(f"{stub.base_url}/facilitator")
    with stub.lock:
        headers = dict(stub.last_headers)
    assert headers["accept"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert "payment-signature" not in headers
    assert "x-payment" not in headers


@pytest.mark.parametrize(
    ("path", "reachable", "status", "error", "codes", "verdict"),
    [
        ("/e500", False, 500, "HTTP 500", None, FacilitatorVerdict.UNREACHABLE),
        ("/e429", False, 429, "HTTP 429", None, FacilitatorVerdict.UNREACHABLE),
        ("/e401", True, 401, "HTTP 401", ["supported-auth"], FacilitatorVerdict.INVALID),
        (
            "/wrong-base",
            True,
            404,
            "HTTP 404",
            ["supported-http-status"],
            FacilitatorVerdict.INVALID,
        ),
        (
            "/nonjson",
            True,
            200,
            "malformed /supported",
            ["supported-not-json"],
            FacilitatorVerdict.INVALID,
        ),
        ("/big", True, 200, "body too large", ["supported-too-large"], FacilitatorVerdict.INVALID),
        (
            "/grouped",
            True,
            200,
            "malformed /supported",
            [
                "supported-kinds-grouped",
                "supported-signers-missing",
                "supported-extensions-missing",
            ],
            FacilitatorVerdict.INVALID,  # a shape the official SDK refuses (issue 11)
        ),
        ("/redirect", True, 200, None, [], FacilitatorVerdict.UNKNOWN),
    ],
)
def test_answers_become_verdict_inputs(
    stub: StubFacilitator,
    path: str,
    reachable: bool,
    status: int,
    error: str,
    codes: list[str] | None,
    verdict: FacilitatorVerdict,
) -> None:
    result = fetch(stub.base_url + path)
    assert (result.reachable, result.http_status, result.error) == (reachable, status, error)
    if codes is None:
        assert result.supported is None
    else:
        assert result.supported is not None
        assert [f.code for f in result.supported.findings] == codes
    assert result.verdict(None)[0] is verdict


def test_auth_and_wrong_base_findings_say_what_to_check(stub: StubFacilitator) -> None:
    auth = fetch(f"{stub.base_url}/e401").supported
    wrong = fetch(f"{stub.base_url}/wrong-base").supported
    assert auth is not None
    assert wrong is not None
    assert "credentials" in auth.findings[0].message
    assert "base URL" in wrong.findings[0].message


def test_slow_answer_times_out_as_unreachable(stub: StubFacilitator) -> None:
    # The answer is held until the fetch has returned: only the timeout can end the fetch.
    gate = stub.hold("timeout")
    timeout = timedelta(seconds=0.1)
    started = time.perf_counter()
    try:
        result = fetch(f"{stub.base_url}/hold-timeout", timeout=timeout)
    finally:
        gate.set()
    took = time.perf_counter() - started
    assert (result.reachable, result.supported) == (False, None)
    assert result.error == "timeout after 0.1 s"
    # Generous for a busy machine, yet below the 10 s default timeout the client must not use.
    assert took < 50 * timeout.total_seconds()


def test_connection_refused_is_unreachable() -> None:
    result = fetch(f"http://127.0.0.1:{free_port()}/facilitator")
    assert (result.reachable, result.supported, result.http_status) == (False, None, None)
    assert result.error is not None
    assert result.error.startswith("connection failed")
    assert result.verdict(None)[0] is FacilitatorVerdict.UNREACHABLE


def test_unusable_url_is_unreachable() -> None:
    result = fetch("ftp://facilitator.example")
    assert result.reachable is False
    assert result.error is not None
    assert "unusable facilitator URL" in result.error


def test_results_are_cached_for_the_ttl(stub: StubFacilitator) -> None:
    clock = FakeClock()
    base = f"{stub.base_url}/facilitator/cache-ttl"
    path = "/facilitator/cache-ttl/supported"

    async def calls(client: FacilitatorClient) -> list[SupportedResult]:
        first = await client.supported(base)
        clock.advance(minutes=9, seconds=59)
        second = await client.supported(base + "/")  # same /supported URL
        hits = count(stub, path)
        clock.advance(seconds=1)  # exactly ttl after the first fetch: stale
        third = await client.supported(base)
        assert hits == 1
        return [first, second, third]

    first, second, third = run(calls, clock, ttl=timedelta(minutes=10))
    assert second is first
    assert third is not first
    assert third.fetched_at == T0 + timedelta(minutes=10)
    assert count(stub, path) == 2


@pytest.mark.parametrize(
    ("prefix", "after_60s"),
    [
        ("/e500", 2),  # an outage is retried after the negative TTL, not hammered
        ("/e401", 2),
        ("/nonjson", 2),
        ("/big", 2),
        ("/grouped", 2),  # malformed (the SDK refuses it): unusable, so the negative TTL
        ("/facilitator", 1),
    ],
)
def test_failures_are_cached_for_the_shorter_negative_ttl(
    stub: StubFacilitator, prefix: str, after_60s: int
) -> None:
    clock = FakeClock()
    base = f"{stub.base_url}{prefix}/negative"
    path = f"{prefix}/negative/supported"

    async def calls(client: FacilitatorClient) -> None:
        await client.supported(base)
        clock.advance(seconds=59)
        await client.supported(base)
        assert count(stub, path) == 1
        clock.advance(seconds=1)  # 60 s: the default negative TTL, far below the 10 min ttl
        await client.supported(base)

    run(calls, clock, ttl=timedelta(minutes=10))
    assert count(stub, path) == after_60s


def test_negative_ttl_never_exceeds_the_ttl(stub: StubFacilitator) -> None:
    clock = FakeClock()
    base = f"{stub.base_url}/e500/short-ttl"

    async def calls(client: FacilitatorClient) -> None:
        await client.supported(base)
        clock.advance(seconds=10)
        await client.supported(base)

    run(calls, clock, ttl=timedelta(seconds=10))
    assert count(stub, "/e500/short-ttl/supported") == 2


def test_concurrent_calls_for_one_url_make_one_request(stub: StubFacilitator) -> None:
    gate = stub.hold("coalesce")
    base = f"{stub.base_url}/hold-coalesce/x"
    path = "/hold-coalesce/x/supported"

    async def calls(client: FacilitatorClient) -> list[SupportedResult]:
        # Every call starts while the first request is held at the stub, so each of them
        # could make its own request; none may.
        waiting = asyncio.gather(*(client.supported(base) for _ in range(5)))
        await until(lambda: count(stub, path) >= 1, "request at the stub", HOLD_S)
        gate.set()
        return list(await waiting)

    try:
        results = run(calls, timeout=timedelta(seconds=HOLD_S))
    finally:
        gate.set()
    assert count(stub, path) == 1
    assert all(result is results[0] for result in results)
    assert results[0].supported is not None
    assert results[0].supported.valid


def test_different_urls_are_fetched_concurrently(stub: StubFacilitator) -> None:
    # The stub answers only when all three requests are in at once: fetched one after
    # another, the first is never answered and times out.
    bases = [f"{stub.base_url}/meet-3-parallel/{i}" for i in range(3)]

    async def calls(client: FacilitatorClient) -> list[SupportedResult]:
        return list(await asyncio.gather(*(client.supported(base) for base in bases)))

    results = run(calls, timeout=timedelta(seconds=HOLD_S / 2))
    assert [(result.reachable, result.error) for result in results] == [(True, None)] * 3
    assert [count(stub, f"/meet-3-parallel/{i}/supported") for i in range(3)] == [1, 1, 1]
