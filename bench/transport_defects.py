"""Print how monitor.probe's transport and httpx-aiohttp's meet issue 11's defects (never asserts).

Usage: `.venv/bin/python bench/transport_defects.py` (needs `.venv/bin/pip install
httpx-aiohttp`; about 35 s). Rows go through the real `Prober` or (`direct`) the transport's
`handle_async_request`, each on a new transport: `own` is `build_transport`; `aiohttp` is
`httpx_aiohttp.AiohttpTransport` over a `ClientSession` as bench/probe_clients.py builds it
(`auto_decompress=False`, the policy in the connector's `socket_factory`, names through its
resolver). Both get one name table and one policy: 127.0.0.0/8 allowed except 127.0.0.4, which
stands for an internal (private) address.

1. Redirects to `http://a..b/x` and to a 64-character label; `direct`: what the transport raises.
3. 1 GiB of zeros gzipped (about 1 MB), and that gzipped again (`gzip, gzip`); `direct` counts
   the raw bytes handed over (the encoded size: the transport decoded nothing).
4. 50 ms after answer 1 the server sends an unsolicited answer (or garbage) on the idle
   connection; request 2 follows 200 ms later. Right: `/desync/2 on connection 2`. Also
   aiohttp with `force_close=True` (no keep-alive).
9. The first one or two addresses blackholed (a loopback listener with a full accept queue:
   Linux drops further SYNs; TEST-NET-1 may be routed, or local and refuse at once), the live
   one last, connect timeout 5 s. aiohttp as a careful user sets it (`happy_eyeballs_delay=0.25`,
   `interleave=1`, RFC 8305's values; its connect timeout bounds the whole race), and `HE off`.
5. A loopback egress proxy (CONNECT and absolute-form) resolving with the same table. `pinned`
   wraps aiohttp: it checks the name with the monitor's `checked_addresses` and sends to the
   checked address (Host and SNI keep the name). `mixed.test` has an allowed and a refused address.
x. How each transport names two plain failures: a refused connection, a hang-up.

Per row: outcome, seconds, peak tracemalloc'd MB above the row's start, and the longest loop
stall seen by a task sleeping 10 ms at a time (transports are built before both). Rows are
bounded to 30 s; every server and socket is closed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

import httpx
from probe_clients import optional

from monitor.addresses import refusal_reason
from monitor.config import ProbeConfig
from monitor.models import EndpointSpec, ProbeFacts
from monitor.probe import AddressRefusedError, Prober, build_transport, resolve
from monitor.probe.connect import checked_addresses

ROW_BOUND_S, TICK_S, LATE_S, GAP_S = 30.0, 0.01, 0.05, 0.2
LIVE, INTERNAL, DEAD = "127.0.0.1", "127.0.0.4", ("127.0.0.2", "127.0.0.3")
LONG_LABEL = "a" * 64
BOMB_BYTES = 1 << 30
RAW_COUNT_CAP = 64 << 20
TABLE = {
    "public.test": [LIVE],
    "internal.test": [INTERNAL],
    "mixed.test": [LIVE, INTERNAL],
    "one-dead.test": [DEAD[0], LIVE],
    "two-dead.test": [DEAD[0], DEAD[1], LIVE],
}
"""The names both transports and the proxy resolve; any other name goes to the system."""

Build = Callable[[], httpx.AsyncBaseTransport]
Work = Callable[[httpx.AsyncBaseTransport], Awaitable[str]]


def policy(address: str) -> str | None:
    """The bench's address policy: loopback allowed except INTERNAL, the rest as shipped."""
    if address == INTERNAL:
        return f"private address {address} (stands for an internal service)"
    return None if address.startswith("127.") else refusal_reason(address)


async def own_resolve(host: str, port: int) -> list[str]:
    return list(TABLE[host]) if host in TABLE else await resolve(host, port)


class TableResolver:
    """An aiohttp resolver (AbstractResolver's interface): TABLE, else aiohttp's default."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        if host not in TABLE:
            return list(await self._fallback.resolve(host, port, family))
        common = {"hostname": host, "port": port, "family": socket.AF_INET, "proto": 0}
        return [{**common, "host": a, "flags": socket.AI_NUMERICHOST} for a in TABLE[host]]

    async def close(self) -> None:
        await self._fallback.close()


def guarded_socket(address_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp `socket_factory`: refuse the address about to be connected, else a socket."""
    family, kind, protocol, _, sockaddr = address_info
    reason = policy(str(sockaddr[0]))
    if reason is not None:
        raise AddressRefusedError(str(sockaddr[0]), reason)
    sock = socket.socket(family, kind, protocol)
    sock.setblocking(False)
    return sock


def own(config: ProbeConfig) -> httpx.AsyncBaseTransport:
    return build_transport(config, policy=policy, resolver=own_resolve)


def via_aiohttp(
    config: ProbeConfig, delay: float | None = 0.25, proxy: str | None = None, close: bool = False
) -> httpx.AsyncBaseTransport:
    """httpx-aiohttp's transport as bench/probe_clients.py builds it, with TABLE and `policy`."""
    aiohttp = optional("aiohttp", "httpx-aiohttp")
    httpx_aiohttp = optional("httpx_aiohttp", "httpx-aiohttp")

    def session() -> Any:
        connector = aiohttp.TCPConnector(
            limit=config.concurrency,
            limit_per_host=config.per_host,
            keepalive_timeout=None if close else 5.0,
            force_close=close,
            socket_factory=guarded_socket,
            resolver=TableResolver(aiohttp.DefaultResolver()),
            use_dns_cache=False,
            happy_eyeballs_delay=delay,
            interleave=1,
        )
        return aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False)

    chosen = httpx.Proxy(proxy) if proxy is not None else None
    transport: httpx.AsyncBaseTransport = httpx_aiohttp.AiohttpTransport(
        client=session, trust_env=False, proxy=chosen
    )
    return transport


class Pinned(httpx.AsyncBaseTransport):
    """Check the target's name with the monitor's guard, then send to the checked address.

    aiohttp's proxy support sends the name (CONNECT name:port, or an absolute-form URL) for the
    proxy to resolve: the policy holds only if the URL names a checked address instead.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await checked_addresses(url.host, port, own_resolve, policy)
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=addresses[0]),  # the first only: no race through the proxy
            headers=request.headers,  # Host keeps the name
            content=request.content,
            extensions={**request.extensions, "sni_hostname": url.host},
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


# Loopback servers ------------------------------------------------------------------------


def answer(status: int, body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def gzipped(data: bytes = b"", *, zeros: int = 0) -> bytes:
    """gzip `data`, or `zeros` zero bytes fed 1 MiB at a time (never held decoded)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(zeros >> 20)]
    return b"".join([*parts, compressor.compress(data), compressor.flush()])


class Servers:
    """The origin (127.0.0.1, and 127.0.0.4 as the internal service), proxy and blackholes."""

    def __init__(self) -> None:
        self.bomb = gzipped(zeros=BOMB_BYTES)
        self.double = gzipped(self.bomb)
        self.port = self.proxy_port = self.connections = 0
        self.proxy_saw: list[str] = []
        self._servers: list[asyncio.Server] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._sockets: list[socket.socket] = []

    def route(self, path: str) -> tuple[bytes, bytes]:
        """Return (the answer, bytes sent LATE_S later on the then idle connection)."""
        if path in ("/to-empty-label", "/to-long-label"):
            host = "a..b" if path == "/to-empty-label" else f"{LONG_LABEL}.example"
            return answer(302, b"", f"Location: http://{host}/x\r\n"), b""
        if path in ("/bomb", "/bomb2"):
            body, coding = (self.bomb, "gzip") if path == "/bomb" else (self.double, "gzip, gzip")
            return answer(200, body, f"Content-Encoding: {coding}\r\n"), b""
        if path == "/hangup":
            return b"", b""  # close without an answer
        body = f"answer to {path} on connection {self.connections}".encode()
        late = {"/desync/1": answer(200, b"UNSOLICITED late answer"), "/garbage/1": b"XYZZY\r\n"}
        return answer(402, body), late.get(path, b"")

    async def _origin(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        internal = writer.get_extra_info("sockname")[0] == INTERNAL
        self.connections += 0 if internal else 1
        self._writers.append(writer)

        def late(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while (first := await reader.readexactly(1)) != b"\x16":  # a TLS hello: hang up
                head = first + await reader.readuntil(b"\r\n\r\n")
                path = urlsplit(head.split(b" ", 2)[1].decode("latin-1")).path
                response, extra = self.route(path)
                if not response and not internal:
                    break
                writer.write(answer(200, b"internal service: secret") if internal else response)
                await writer.drain()
                if extra and not internal:
                    asyncio.get_running_loop().call_later(LATE_S, late, extra)
        writer.close()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            self.proxy_saw.append(line.rsplit(" ", 1)[0])
            method, target, _ = line.split(" ", 2)
            parts = urlsplit(target if method != "CONNECT" else f"//{target}")
            host = (parts.hostname or "").strip("[]")
            address = TABLE.get(host, [host])[0]
            upstream_reader, upstream = await asyncio.open_connection(address, parts.port or 80)
            self._writers.append(upstream)
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.write(head)
            await asyncio.gather(_pipe(reader, upstream), _pipe(upstream_reader, writer))
        writer.close()

    async def start(self) -> None:
        origin = await asyncio.start_server(self._origin, LIVE, 0)
        self.port = origin.sockets[0].getsockname()[1]
        internal = await asyncio.start_server(self._origin, INTERNAL, self.port)
        proxy = await asyncio.start_server(self._proxy, LIVE, 0)
        self.proxy_port = proxy.sockets[0].getsockname()[1]
        self._servers += [origin, internal, proxy]
        for address in DEAD:  # listen, never accept, fill the accept queue: SYNs are dropped
            listener = socket.socket()
            listener.bind((address, self.port))
            listener.listen(0)
            self._sockets.append(listener)
            for _ in range(3):
                self._sockets.append(filler := socket.socket())
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect((address, self.port))

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in self._writers:
            writer.close()
        for sock in self._sockets:
            sock.close()
        for server in self._servers:
            await server.wait_closed()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


# Measuring -------------------------------------------------------------------------------


def describe(facts: ProbeFacts) -> str:
    if facts.error_kind is not None:
        return f"{facts.error_kind.value}: {facts.error}"
    text = f"HTTP {facts.http_status}, body {len(facts.body):,} B"
    if facts.body_truncated:
        text += " (cut at max_body_bytes)"
    if facts.body_error:
        return f"{text}, body_error: {facts.body_error}"
    return f"{text} {facts.body.decode('latin-1')!r}" if len(facts.body) < 100 else text


async def probe(
    config: ProbeConfig, urls: tuple[str, ...], transport: httpx.AsyncBaseTransport
) -> str:
    """Probe `urls` one after another, GAP_S apart; describe the last one's facts."""
    facts: ProbeFacts | None = None
    async with Prober(config, clock=lambda: datetime.now(UTC), transport=transport) as prober:
        for index, url in enumerate(urls):
            await asyncio.sleep(GAP_S if index else 0)
            facts = await prober.probe(EndpointSpec(url=url, method="GET"))
    assert facts is not None
    return describe(facts)


async def direct(url: str, transport: httpx.AsyncBaseTransport) -> str:
    """Send one GET on the transport itself; count the raw body bytes it hands over."""
    async with transport:
        timeout = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}
        request = httpx.Request("GET", url, extensions={"timeout": timeout})
        response = await transport.handle_async_request(request)
        raw = 0
        try:
            async for chunk in response.aiter_raw():
                raw += len(chunk)
                if raw > RAW_COUNT_CAP:
                    break
        finally:
            await response.aclose()
        coding = response.headers.get("content-encoding", "none")
        return f"HTTP {response.status_code}, {raw:,} raw bytes, Content-Encoding: {coding}"


async def measure(work: Work, build: Build) -> tuple[str, float, float, float]:
    """Run `work` on a new transport within ROW_BOUND_S: (outcome, s, peak MB, worst stall ms)."""
    loop = asyncio.get_running_loop()
    worst = 0.0

    async def tick() -> None:
        nonlocal worst
        last = loop.time()
        while True:
            await asyncio.sleep(TICK_S)
            worst, last = max(worst, loop.time() - last - TICK_S), loop.time()

    transport = build()
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    try:
        async with asyncio.timeout(ROW_BOUND_S):
            outcome = await work(transport)
    except TimeoutError:
        outcome = f"BENCH BOUND: no answer within {ROW_BOUND_S:.0f} s"
    except Exception as exc:  # what the transport raised, reported as it is
        outcome = f"raised {type(exc).__module__}.{type(exc).__qualname__}: {exc}"
    seconds = time.perf_counter() - started
    peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    return outcome.replace("\n", " ")[:230], seconds, peak, worst * 1000


def cases(servers: Servers) -> list[tuple[str, str, Build, Work]]:
    """Every row: (scenario, transport, how to build the transport, what to do with it)."""
    base, port = ProbeConfig(), servers.port
    origin, proxy = f"http://public.test:{port}", f"http://{LIVE}:{servers.proxy_port}"
    both: list[tuple[str, Build]] = [
        ("own", partial(own, base)),
        ("aiohttp", partial(via_aiohttp, base)),
    ]
    rows: list[tuple[str, str, Build, Work]] = []

    def add(scenario: str, builds: list[tuple[str, Build]], *urls: str) -> None:
        rows.extend((scenario, label, build, partial(probe, base, urls)) for label, build in builds)

    def add_direct(scenario: str, url: str) -> None:
        rows.extend((scenario, label, build, partial(direct, url)) for label, build in both)

    for name, path, url in [
        ("a..b", "/to-empty-label", "http://a..b/x"),
        ("64-char label", "/to-long-label", f"http://{LONG_LABEL}.example/x"),
    ]:
        add(f"1 redirect to {name}", both, origin + path)
        add_direct(f"1 direct {name}", url)
    for path, coding in [("/bomb", "gzip"), ("/bomb2", "gzip, gzip")]:
        add(f"3 bomb {coding}", both, origin + path)
        add_direct(f"3 direct {coding}", origin + path)
    closing: list[tuple[str, Build]] = [
        *both,
        ("aiohttp force_close", partial(via_aiohttp, base, 0.25, None, True)),
    ]
    for kind in ("desync", "garbage"):
        add(f"4 late {kind}: request 2", closing, f"{origin}/{kind}/1", f"{origin}/desync/2")
    eyeballs: list[tuple[str, Build]] = [
        *both,
        ("aiohttp HE off", partial(via_aiohttp, base, None)),
    ]
    for name in ("one-dead.test", "two-dead.test"):
        add(f"9 {name}", eyeballs, f"http://{name}:{port}/ok")
    through: list[tuple[str, Build]] = [
        ("own + proxy", partial(own, ProbeConfig(proxy=proxy))),
        ("aiohttp + proxy", partial(via_aiohttp, base, 0.25, proxy)),
        ("aiohttp pinned + proxy", lambda: Pinned(via_aiohttp(base, 0.25, proxy))),
    ]
    for target in ["http://public.test", "http://internal.test", "https://internal.test"]:
        add(f"5 {target}", through, f"{target}:{port}/ok")
    add("5 mixed.test, no proxy", both, f"http://mixed.test:{port}/ok")
    with socket.socket() as unused:  # a port nothing listens on: connection refused
        unused.bind((LIVE, 0))
        closed = unused.getsockname()[1]
    add("x connection refused", both, f"http://public.test:{closed}/ok")
    add("x closed without an answer", both, f"{origin}/hangup")
    return rows


class OneLine(logging.Formatter):
    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return f"  (traceback of {ei[0].__name__} omitted)"


async def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLine("log %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    tracemalloc.start()
    started = time.perf_counter()
    servers = Servers()
    print(
        f"aiohttp {version('aiohttp')}, httpx-aiohttp {version('httpx-aiohttp')}, httpx"
        f" {version('httpx')}; gzip bomb {BOMB_BYTES:,} B -> {len(servers.bomb):,} B, stacked"
        f" -> {len(servers.double):,} B (made in {time.perf_counter() - started:.1f} s)"
    )
    await servers.start()
    rows: list[tuple[str, str, str, float, float, float]] = []
    try:
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(asyncio.open_connection(DEAD[0], servers.port), 0.5)
            print("WARNING: the blackhole accepted a connection; item 9's rows are not valid")
        warm = (f"http://public.test:{servers.port}/ok",)  # imports, thread pools, first use
        for make in (own, via_aiohttp):
            await probe(ProbeConfig(), warm, make(ProbeConfig()))
        for scenario, label, build, work in cases(servers):
            servers.connections = 0
            servers.proxy_saw.clear()
            outcome, seconds, peak, stall = await measure(work, build)
            if "proxy" in label:
                outcome += f"; proxy saw {servers.proxy_saw or 'nothing'}"
            rows.append((scenario, label, outcome, seconds, peak, stall))
            print(f"{scenario} / {label}: {seconds:.2f} s", flush=True)
    finally:
        await servers.stop()
    print("\n| scenario | transport | outcome | s | peak MB | max stall ms |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for scenario, label, outcome, seconds, peak, stall in rows:
        shown = outcome.replace("|", "\\|")
        print(f"| {scenario} | {label} | {shown} | {seconds:.2f} | {peak:.1f} | {stall:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
