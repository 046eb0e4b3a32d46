"""Misbehaving servers on loopback for the hostile-internet suite (issue 11), plain and TLS.

Built on tests/scripted_server.py: every server is a real `asyncio.start_server` on 127.0.0.1
(port 0) scripted byte for byte. This module adds what hostile endpoints do that a script of
fixed steps cannot: answer every request alike, trickle bytes forever, stream an endless body,
stall or break a TLS handshake, plus the test PKI (trustme) and a resolver that maps test host
names to loopback so TLS sees real names.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from scripted_server import Handler, Peer, Received, Script, Server, answer

from monitor.addresses import refusal_reason
from monitor.probe import resolve

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "x402"
CHALLENGE_HEADER = (FIXTURES / "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64").read_text().strip()
"""A real v2 challenge (the spec's example) as a PAYMENT-REQUIRED header value."""
V1_CHALLENGE = (FIXTURES / "01-v1-evm-spec-base-sepolia.json").read_bytes()
"""A real v1 challenge: the JSON body of a 402."""
SERVER_ADDRESS = "127.0.0.1"
"""Where every test server listens; the test address policy allows only this loopback one."""
BLOCKED_ADDRESS = "127.0.0.2"
"""A loopback address the test policy refuses, as the default policy refuses all of them."""
DOMAIN = "seller.test"
"""Test host names end in this; the test resolver maps them to SERVER_ADDRESS."""
MIB = 1024 * 1024


def challenge_answer(*headers: str, body: bytes = b"{}") -> bytes:
    """Return a valid 402 answer: the fixture challenge in its PAYMENT-REQUIRED header."""
    return answer(
        body,
        f"PAYMENT-REQUIRED: {CHALLENGE_HEADER}",
        "Content-Type: application/json",
        *headers,
        status="402 Payment Required",
    )


def json_402(body: bytes, *headers: str) -> bytes:
    """Return a 402 answer whose JSON body is `body` (a v1 challenge, or what stands for one)."""
    return answer(body, "Content-Type: application/json", *headers, status="402 Payment Required")


def redirect(location: bytes | str, status: str = "302 Found") -> bytes:
    """Return a redirect answer; `location` as bytes is sent exactly (control bytes too)."""
    raw = location if isinstance(location, bytes) else location.encode()
    return b"HTTP/1.1 %s\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (status.encode(), raw)


# Handlers -----------------------------------------------------------------------------------


def every_request(script: Script | Callable[[Received], Script]) -> Handler:
    """Answer every request, on every connection, with `script` (or the script it picks).

    The connection is served until the client closes it or a script closes it.
    """

    async def handle(peer: Peer) -> None:
        while (received := await peer.request()) is not None:
            steps = script(received) if callable(script) else script
            if not await peer.play(steps):
                return

    return handle


def healthy() -> Handler:
    """A seller that answers every request with the valid fixture challenge (keep-alive)."""
    return every_request([challenge_answer()])


def routes(table: Mapping[str, Script]) -> Handler:
    """Answer each request with the script of its target (path and query); 404 for others."""
    missing: Script = [answer(b"no such route", status="404 Not Found")]
    return every_request(lambda received: table.get(received.target, missing))


def trickling(prefix: bytes, filler: bytes = b"a", every: float = 0.1) -> Handler:
    """Read a request, then send `prefix` and `filler` forever, one byte per `every` (slowloris)."""

    def forever() -> Iterator[int]:
        yield from prefix
        while True:
            yield from filler

    async def handle(peer: Peer) -> None:
        if await peer.request() is None:
            return
        for byte in forever():
            await peer.send(bytes([byte]))
            await asyncio.sleep(every)

    return handle


def streaming(head: bytes, chunk: bytes, every: float = 0.0) -> Handler:
    """Read a request, send `head`, then `chunk` again and again until the client hangs up.

    `every` = 0 sends as fast as the client reads (bounded by the socket's back-pressure).
    """

    async def handle(peer: Peer) -> None:
        if await peer.request() is None:
            return
        await peer.send(head)
        while True:
            await peer.send(chunk)
            await asyncio.sleep(every)

    return handle


def answer_then_later(first: bytes, later: bytes, delay: float, sent: asyncio.Event) -> Handler:
    """Answer each request with `first`, then `delay` seconds later send `later` unasked.

    `sent` is set once the unsolicited bytes are on the wire (keep-alive desync, issue 11.4).
    """

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(first)
            await asyncio.sleep(delay)
            await peer.send(later)
            sent.set()

    return handle


def silent() -> Handler:
    """Accept, read whatever comes (a ClientHello, a request) and never say a word."""
    return Peer.read_to_eof


def plain_http() -> Handler:
    """A plain HTTP server reached over TLS: it reads the ClientHello as a bad request."""

    async def handle(peer: Peer) -> None:
        await peer.reader.read(1)
        await peer.play([answer(b"Bad Request", status="400 Bad Request"), "close"])

    return handle


def hang_up_after_hello() -> Handler:
    """Read the first bytes the client sends (its ClientHello), then close the connection."""

    async def handle(peer: Peer) -> None:
        await peer.reader.read(1)
        await peer.hang_up()

    return handle


def server_hello_then_garbage(context: ssl.SSLContext, garbage: bytes) -> Handler:
    """Answer a ClientHello with a real ServerHello record, then with `garbage` (not TLS)."""

    async def handle(peer: Peer) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        session = context.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            data = await peer.reader.read(65536)
            if not data:
                return
            incoming.write(data)
            with contextlib.suppress(ssl.SSLWantReadError):
                session.do_handshake()
            flight = outgoing.read()
            if flight:
                break
        # A TLS record: type (1 byte), version (2), length (2), then the payload.
        first_record = flight[: 5 + int.from_bytes(flight[3:5], "big")]
        assert first_record[0] == 22, "the first record of the server's flight is a handshake"
        await peer.send(first_record + garbage)
        await peer.read_to_eof()

    return handle


# TLS ------------------------------------------------------------------------------------------


class MemoryTls:
    """Server-side TLS over a peer's raw socket, driven step by step (an SSLObject on BIOs).

    For servers whose TLS behaviour asyncio's own TLS layer does not allow to script: when
    the close_notify is sent, and whether the TCP connection closes with it.
    """

    def __init__(self, peer: Peer, context: ssl.SSLContext) -> None:
        self.peer = peer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.session = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            await self.peer.send(data)

    async def _fill(self) -> bool:
        data = await self.peer.reader.read(65536)
        self._incoming.write(data)
        return bool(data)

    async def handshake(self) -> bool:
        """Complete the handshake; False when the client gave up (closed, or an alert)."""
        while True:
            try:
                self.session.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    return False
            except ssl.SSLError:
                return False
            else:
                await self._flush()
                return True

    async def read_request(self) -> bytes:
        """Return the plaintext of one request head (the probe sends no body with GET)."""
        received = b""
        while b"\r\n\r\n" not in received:
            try:
                received += self.session.read(65536)
            except ssl.SSLWantReadError:
                if not await self._fill():
                    break
        return received

    async def send(self, data: bytes) -> None:
        self.session.write(data)
        await self._flush()

    async def close_notify(self) -> None:
        """Send close_notify without waiting for the client's."""
        with contextlib.suppress(ssl.SSLWantReadError):
            self.session.unwrap()
        await self._flush()


def tls_answer_then_close_notify(context: ssl.SSLContext, reply: bytes) -> Handler:
    """Over TLS: answer one request with `reply`, send close_notify, then close TCP at once."""

    async def handle(peer: Peer) -> None:
        tls = MemoryTls(peer, context)
        if await tls.handshake() and await tls.read_request():
            await tls.send(reply)
            await tls.close_notify()
        await peer.hang_up()

    return handle


class TlsServer(Server):
    """A scripted server behind TLS: asyncio's server-side TLS, then `handler` on plaintext."""

    def __init__(self, handler: Handler, context: ssl.SSLContext) -> None:
        super().__init__(handler)
        self.context = context

    async def __aenter__(self) -> TlsServer:
        self._server = await asyncio.start_server(
            self._accept, SERVER_ADDRESS, 0, ssl=self.context, ssl_handshake_timeout=30
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self


@dataclass(frozen=True)
class Pki:
    """A test certificate authority and the server certificates the TLS cases need."""

    authority: trustme.CA
    good: trustme.LeafCert
    """For `*.seller.test` and `seller.test`, signed by `authority`."""
    wrong_name: trustme.LeafCert
    """For `elsewhere.example` only, signed by `authority`."""
    expired: trustme.LeafCert
    """For `*.seller.test`, signed by `authority`, expired a day ago."""
    unknown_ca: trustme.LeafCert
    """For `*.seller.test`, signed by a CA the client does not trust."""

    def client_context(self) -> ssl.SSLContext:
        """Return a client context that trusts `authority` (and nothing else)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.load_verify_locations(cadata=self.authority.cert_pem.bytes().decode("ascii"))
        return context

    @staticmethod
    def server_context(certificate: trustme.LeafCert) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        return context


@functools.cache
def pki() -> Pki:
    """Return the suite's PKI (created once per process: key generation is slow)."""
    authority = trustme.CA()
    # OpenSSL checks validity against the real clock, so the expiry is set from it.
    now = datetime.now(UTC)
    return Pki(
        authority=authority,
        good=authority.issue_cert(f"*.{DOMAIN}", DOMAIN),
        wrong_name=authority.issue_cert("elsewhere.example"),
        expired=authority.issue_cert(
            f"*.{DOMAIN}",
            DOMAIN,
            not_before=now - timedelta(days=30),
            not_after=now - timedelta(days=1),
        ),
        unknown_ca=trustme.CA().issue_cert(f"*.{DOMAIN}", DOMAIN),
    )


# Names and addresses --------------------------------------------------------------------------


class LoopbackNames:
    """A resolver: `*.seller.test` -> 127.0.0.1, `overrides` as given, anything else to DNS.

    Only names that are not host names at all (an empty or 64-character label) are meant to
    reach the system resolver, which refuses them before any lookup.
    """

    def __init__(self, overrides: Mapping[str, list[str]] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host in self.overrides:
            return list(self.overrides[host])
        if host == DOMAIN or host.endswith("." + DOMAIN):
            return [SERVER_ADDRESS]
        return await resolve(host, port)


def loopback_policy(address: str) -> str | None:
    """The default address policy, except that SERVER_ADDRESS (the test servers) is allowed."""
    return None if address == SERVER_ADDRESS else refusal_reason(address)


# Payloads -------------------------------------------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    """Return gzip of `size` zero bytes, compressed a MiB at a time (never `size` in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MIB)
    parts = [compressor.compress(block) for _ in range(size // MIB)]
    return b"".join([*parts, compressor.flush()])


def compressed_402(body: bytes, encoding: str) -> bytes:
    """Return a 402 whose body is sent with `Content-Encoding: encoding` (already encoded)."""
    return json_402(body, f"Content-Encoding: {encoding}")
