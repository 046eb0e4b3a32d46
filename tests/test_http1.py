"""Tests of monitor.probe.http1.Http1Transport against scripted loopback servers.

Every test runs a real `asyncio.start_server` on 127.0.0.1 (port 0) whose answers are scripted
byte for byte (tests/scripted_server.py), so malformed, split, stalled or over-long answers can
be sent at will. The last section drives the real `Prober` (redirects) through the same
servers. No internet, no long sleeps.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
from scripted_server import (
    FakeClock,
    Handler,
    Pause,
    Peer,
    Recorder,
    Script,
    Server,
    Wait,
    answer,
    answering,
    asyncio_test,
    fetch,
    new_transport,
    request,
    seen,
    until,
)

from monitor.config import ProbeConfig
from monitor.models import EndpointSpec, ProbeErrorKind, ProbeFacts
from monitor.probe import Prober
from monitor.probe.connection import MAX_HEAD_BYTES, PAUSE_ABOVE

READ_SIZE = 256 * 1024
"""The most bytes one `data_received` call delivers (asyncio's selector transports)."""
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# 1. Keep-alive ---------------------------------------------------------------------------


@asyncio_test
async def test_sequential_requests_reuse_one_connection() -> None:
    scripts = [[answer(b"first")], [answer(b"second")], [answer(b"third")]]
    async with Server(answering(*scripts)) as server:
        pool = new_transport()
        bodies = [(await fetch(pool, server.url(f"/{n}")))[1] for n in range(3)]
        assert bodies == [b"first", b"second", b"third"]
        assert len(server.peers) == 1
        assert [r.target for r in server.peers[0].requests] == ["/0", "/1", "/2"]
        await pool.aclose()


@pytest.mark.parametrize(
    ("reply", "connections"),
    [
        pytest.param(answer(b"ok"), 1, id="http11-content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            1,
            id="http11-chunked",
        ),
        pytest.param(
            answer(b"ok", "Connection: keep-alive", version="HTTP/1.0"), 1, id="http10-ka"
        ),
        pytest.param(answer(b"ok", "Connection: close"), 2, id="connection-close"),
        pytest.param(answer(b"ok", "Connection: CLOSE"), 2, id="connection-close-upper"),
        pytest.param(answer(b"ok", version="HTTP/1.0"), 2, id="http10-no-keep-alive"),
    ],
)
@asyncio_test
async def test_reuse_follows_the_answers_keep_alive(reply: bytes, connections: int) -> None:
    # The server never closes: whether a second connection is opened is the client's choice.
    async with Server(answering([reply], [answer(b"next")])) as server:
        pool = new_transport()
        assert (await fetch(pool, server.url()))[1] == b"ok"
        assert (await fetch(pool, server.url()))[1] == b"next"
        assert len(server.peers) == connections
        if connections == 2:
            assert [len(peer.requests) for peer in server.peers] == [1, 1]
            await seen(server.peers[0].eof)  # the client closed the one it would not reuse
        await pool.aclose()


@pytest.mark.parametrize(
    ("script", "read_chunks"),
    [
        pytest.param([answer(b"x" * 1000)], 0, id="body-arrived-but-unread"),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nfirs"],  # the rest never comes
            1,
            id="first-part-read",
        ),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"],
            1,
            id="chunked-terminal-chunk-not-read",
        ),
    ],
)
@asyncio_test
async def test_response_closed_before_its_end_is_not_reused(
    script: Script, read_chunks: int
) -> None:
    async with Server(answering(script, [answer(b"next")])) as server:
        pool = new_transport()
        response = await pool.handle_async_request(request(server.url()))
        chunks = response.aiter_raw()
        for _ in range(read_chunks):
            assert await anext(chunks)
        await response.aclose()
        assert (await fetch(pool, server.url()))[1] == b"next"
        assert len(server.peers) == 2
        assert len(server.peers[0].requests) == 1
        await seen(server.peers[0].eof)
        await pool.aclose()


@asyncio_test
async def test_idle_connection_older_than_keepalive_expiry_is_not_reused() -> None:
    scripts = [[answer(b"1")], [answer(b"2")], [answer(b"3")]]
    async with Server(answering(*scripts)) as server:
        clock = FakeClock()
        pool = new_transport(keepalive_expiry=5.0, clock=clock)
        await fetch(pool, server.url())
        clock.advance(4.9)
        await fetch(pool, server.url())  # idle for less than the expiry: reused
        assert len(server.peers) == 1
        clock.advance(5.1)
        _, body = await fetch(pool, server.url())
        assert body == b"3"
        assert len(server.peers) == 2
        assert [len(peer.requests) for peer in server.peers] == [2, 1]
        await seen(server.peers[0].eof)  # the expired one was closed, not leaked
        await pool.aclose()


@asyncio_test
async def test_max_idle_closes_the_least_recently_used_connection() -> None:
    scripts = [[answer(b"a")], [answer(b"b")], [answer(b"c")]]
    async with Server(answering(*scripts)) as server:
        pool = new_transport(max_idle=1)
        first = await pool.handle_async_request(request(server.url("/a")))
        second = await pool.handle_async_request(request(server.url("/b")))  # first is busy
        assert len(server.peers) == 2
        assert await first.aread() == b"a"
        assert await second.aread() == b"b"
        await first.aclose()  # idle: [first]
        await second.aclose()  # idle: [first, second] > 1, so first (the LRU) is closed
        await seen(server.peers[0].eof)
        assert not server.peers[1].eof.is_set()
        _, body = await fetch(pool, server.url("/c"))
        assert body == b"c"
        assert [r.target for r in server.peers[1].requests] == ["/b", "/c"]
        assert len(server.peers) == 2
        await pool.aclose()


# 2. Stale keep-alive connections -----------------------------------------------------------


@asyncio_test
async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    released = asyncio.Event()
    async with Server(answering([answer(b"1"), Wait(released), "close"], [answer(b"2")])) as server:
        recorder = Recorder()
        pool = new_transport(opener=recorder)
        await fetch(pool, server.url())
        released.set()
        await seen(server.peers[0].hung_up)
        await until(lambda: recorder.connections[0].closed)  # the client saw the FIN
        _, body = await fetch(pool, server.url())
        assert body == b"2"
        assert len(server.peers) == 2
        assert [len(peer.requests) for peer in server.peers] == [1, 1]
        await pool.aclose()


@pytest.mark.parametrize("ending", ["close", "reset"])
@asyncio_test
async def test_reused_connection_closed_before_any_answer_is_retried_on_a_new_one(
    ending: Literal["close", "reset"],
) -> None:
    # The server takes the second request on the kept-alive connection and hangs up without
    # a byte of answer (the race of a keep-alive timeout): the transport sends it again.
    async with Server(answering([answer(b"1")], [ending], [answer(b"2")])) as server:
        pool = new_transport()
        await fetch(pool, server.url("/one"))
        response, body = await fetch(pool, server.url("/two"))
        assert (response.status_code, body) == (200, b"2")
        assert len(server.peers) == 2
        assert [r.target for r in server.peers[0].requests] == ["/one", "/two"]
        assert [r.target for r in server.peers[1].requests] == ["/two"]
        await pool.aclose()


@asyncio_test
async def test_retry_after_a_stale_connection_happens_only_once() -> None:
    async with Server(answering([answer(b"1")], ["close"], ["close"], [answer(b"3")])) as server:
        pool = new_transport()
        await fetch(pool, server.url())
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await fetch(pool, server.url())
        assert len(server.peers) == 2  # the reused one and a single new one, no third
        await pool.aclose()


@asyncio_test
async def test_reused_connection_that_answered_in_part_is_not_retried() -> None:
    async with Server(answering([answer(b"1")], [b"HTTP/1.1 200 OK\r\n", "close"])) as server:
        pool = new_transport()
        await fetch(pool, server.url())
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(pool, server.url())
        assert len(server.peers) == 1
        await pool.aclose()


@pytest.mark.parametrize(
    ("ending", "error", "message", "cause"),
    [
        ("close", httpx.RemoteProtocolError, "without sending a response", type(None)),
        ("reset", httpx.ReadError, "connection lost", ConnectionResetError),
    ],
)
@asyncio_test
async def test_fresh_connection_closed_without_an_answer_is_an_error(
    ending: Literal["close", "reset"],
    error: type[httpx.TransportError],
    message: str,
    cause: type[BaseException],
) -> None:
    async with Server(answering([ending], [answer()])) as server:
        pool = new_transport()
        with pytest.raises(error, match=message) as info:
            await pool.handle_async_request(request(server.url()))
        assert isinstance(info.value.__cause__, cause)
        assert len(server.peers) == 1  # a fresh connection is never retried
        assert len(server.requests) == 1
        await pool.aclose()


# 3. Framing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "status", "body"),
    [
        pytest.param([answer(b"hello")], 200, b"hello", id="content-length"),
        pytest.param([answer(b"")], 200, b"", id="content-length-zero"),
        pytest.param(
            [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                Pause(0.01),
                b"lo\r\n6\r\n wor",
                Pause(0.01),
                b"ld\r\n1",
                Pause(0.01),
                b"\r\n!\r\n0\r\n",
                Pause(0.01),
                b"\r\n",
            ],
            200,
            b"hello world!",
            id="chunked-split-across-writes",
        ),
        pytest.param(
            [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
            ],
            200,
            b"ok",
            id="chunked-with-trailer",
        ),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\n\r\nfirst ", Pause(0.01), b"second", Pause(0.01), "close"],
            200,
            b"first second",
            id="delimited-by-close",
        ),
        pytest.param(
            [b"HTTP/1.0 402 Payment Required\r\n\r\n{}", "close"],
            402,
            b"{}",
            id="http10-delimited-by-close",
        ),
        pytest.param(
            [
                b"HTTP/1.1 2",
                Pause(0.01),
                b"01 Created\r\nContent-Le",
                Pause(0.01),
                b"ngth: 3\r\n",
                Pause(0.01),
                b"\r\nabc",
            ],
            201,
            b"abc",
            id="head-split-across-writes",
        ),
        pytest.param([b"HTTP/1.1 404\r\nContent-Length: 2\r\n\r\nno"], 404, b"no", id="no-reason"),
    ],
)
@asyncio_test
async def test_body_is_framed_as_the_answer_says(script: Script, status: int, body: bytes) -> None:
    async with Server(answering(script)) as server:
        pool = new_transport()
        response, got = await fetch(pool, server.url())
        assert (response.status_code, got) == (status, body)
        await pool.aclose()


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", id="204"),
        pytest.param(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", id="304-with-cl"),
        pytest.param(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", id="204-with-cl"),
    ],
)
@asyncio_test
async def test_bodiless_status_has_no_body_and_leaves_the_connection_reusable(head: bytes) -> None:
    async with Server(answering([head], [answer(b"next")])) as server:
        pool = new_transport()
        started = time.perf_counter()
        response, body = await fetch(pool, server.url(), read=60)
        assert (response.status_code, body) == (int(head[9:12]), b"")
        assert time.perf_counter() - started < 10  # not waiting for a body or the read timeout
        _, body = await fetch(pool, server.url())
        assert body == b"next"  # not mistaken for the body of the previous answer
        assert len(server.peers) == 1
        await pool.aclose()


@asyncio_test
async def test_head_answer_declaring_a_length_returns_at_once_with_an_empty_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/json\r\n\r\n"
    async with Server(answering([head], [answer(b"next")])) as server:
        pool = new_transport()
        started = time.perf_counter()
        response, body = await fetch(pool, server.url(), "HEAD", read=60)
        assert time.perf_counter() - started < 10  # not waiting for 1000 bytes or the timeout
        assert (response.status_code, body) == (200, b"")
        assert response.headers["content-length"] == "1000"
        assert server.requests[0].method == "HEAD"
        _, body = await fetch(pool, server.url())
        assert body == b"next"
        await pool.aclose()


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"final")], id="100-one-write"),
        pytest.param(
            [
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
                Pause(0.01),
                answer(b"final"),
            ],
            id="103-then-final",
        ),
        pytest.param(
            [
                b"HTTP/1.1 100 Continue\r\n\r\n",
                Pause(0.01),
                b"HTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\nHTTP/1.1 20",
                Pause(0.01),
                b"0 OK\r\nContent-Length: 5\r\n\r\nfinal",
            ],
            id="100-and-103-split",
        ),
    ],
)
@asyncio_test
async def test_interim_answers_are_skipped(script: Script) -> None:
    async with Server(answering(script, [answer(b"next")])) as server:
        pool = new_transport()
        response, body = await fetch(pool, server.url())
        assert (response.status_code, body) == (200, b"final")
        assert "link" not in response.headers  # the interim answers' headers are not merged
        assert response.headers["content-length"] == "5"
        assert (await fetch(pool, server.url()))[1] == b"next"
        assert len(server.peers) == 1
        await pool.aclose()


@pytest.mark.parametrize(
    ("script", "before_error", "message"),
    [
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", Pause(0.02), "close"],
            b"0123",
            "before the end of the body",
            id="content-length-cut-short",
        ),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", Pause(0.02), "reset"],
            b"0123",
            "connection lost",  # a ReadError caused by the reset, as httpcore reports it
            id="content-length-then-reset",
        ),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n", "close"],
            b"abcd",
            "before the end of the body",
            id="chunked-without-last-chunk",
        ),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc", "close"],
            b"abc",
            "before the end of the body",
            id="chunk-cut-mid-data",
        ),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
            b"",
            "invalid HTTP response: Invalid character in chunk size",  # what made us close
            id="invalid-chunk-size",
        ),
    ],
)
@asyncio_test
async def test_body_ending_early_is_remote_protocol_error_while_reading(
    script: Script, before_error: bytes, message: str
) -> None:
    async with Server(answering(script)) as server:
        pool = new_transport()
        response = await pool.handle_async_request(request(server.url()))
        assert response.status_code == 200
        got: list[bytes] = []

        async def read_all() -> None:
            async for chunk in response.aiter_raw():
                got.append(chunk)

        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError), match=message) as info:
            await read_all()
        if "reset" in message or message == "connection lost":
            assert isinstance(info.value.__cause__, ConnectionResetError)
        assert b"".join(got) == before_error
        await response.aclose()
        await pool.aclose()


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(b"garbage\r\n\r\n", id="not-http"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="ssh-banner"),
        pytest.param(b"\x15\x03\x03\x00\x02\x02\x46", id="tls-alert"),
        pytest.param(b"HTTP/1.1 2OO OK\r\n\r\n", id="bad-status-code"),
        pytest.param(b"HTTP/2 200\r\n\r\n", id="http2-status-line"),
        pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", id="bare-lf"),
        pytest.param(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", id="header-without-colon"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", id="bad-content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
            id="two-content-lengths",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
            id="length-and-chunked",
        ),
    ],
)
@asyncio_test
async def test_malformed_answer_is_remote_protocol_error(reply: bytes) -> None:
    async with Server(answering([reply])) as server:
        pool = new_transport()
        with pytest.raises(httpx.RemoteProtocolError, match=r"^invalid HTTP response: "):
            await pool.handle_async_request(request(server.url()))
        await seen(server.peers[0].eof)  # and the connection is closed
        await pool.aclose()


async def endless_header_lines(peer: Peer) -> None:
    await peer.request()
    await peer.send(b"HTTP/1.1 200 OK\r\n")
    while True:
        await peer.send(b"X-Filler: " + b"a" * 1000 + b"\r\n")


async def endless_interim_answers(peer: Peer) -> None:
    await peer.request()
    while True:
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)


@pytest.mark.parametrize("handler", [endless_header_lines, endless_interim_answers])
@asyncio_test
async def test_endless_response_head_is_refused_with_bounded_memory(handler: Handler) -> None:
    async with Server(handler) as server:
        recorder = Recorder()
        pool = new_transport(opener=recorder)
        with pytest.raises(httpx.RemoteProtocolError, match="response head larger than 100 KiB"):
            await pool.handle_async_request(request(server.url()))
        connection = recorder.connections[0]
        assert connection.closed
        assert MAX_HEAD_BYTES < connection.received <= MAX_HEAD_BYTES + READ_SIZE
        await seen(server.peers[0].done)  # the server's writes failed: it was cut off
        await pool.aclose()


class _OneReadTransport(asyncio.Transport):
    """Stands in for a socket whose answer arrives in a single read (one `data_received`)."""

    def __init__(self, protocol: asyncio.Protocol, reply: bytes) -> None:
        super().__init__()
        self._protocol = protocol
        self._reply = reply
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        asyncio.get_running_loop().call_soon(self._protocol.data_received, self._reply)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@asyncio_test
async def test_head_larger_than_100_kib_is_refused_even_when_it_arrives_in_one_read() -> None:
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"a" * 1000) for n in range(150))
    reply = b"HTTP/1.1 200 OK\r\n" + filler + b"Content-Length: 2\r\n\r\nok"
    assert MAX_HEAD_BYTES < len(reply) < READ_SIZE

    async def opener(
        factory: Callable[[], asyncio.Protocol], host: str, port: int, **_: Any
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        protocol = factory()
        transport = _OneReadTransport(protocol, reply)
        protocol.connection_made(transport)
        return transport, protocol

    pool = new_transport(opener=opener)
    with pytest.raises(httpx.RemoteProtocolError, match="larger than 100 KiB"):
        await pool.handle_async_request(request("http://127.0.0.1/"))


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([answer(b"ok") + answer(b"WRONG")], id="second-answer-in-the-same-write"),
        pytest.param([answer(b"ok") + b"JUNK"], id="junk-in-the-same-write"),
        pytest.param(
            [answer(b"ok"), Pause(0.02), answer(b"WRONG")], id="second-answer-before-release"
        ),
    ],
)
@asyncio_test
async def test_bytes_after_a_complete_answer_are_never_the_next_answer(script: Script) -> None:
    # If the connection were reused, the next request would get "WRONG" (or junk) back.
    async with Server(answering(script, [answer(b"right")])) as server:
        pool = new_transport()
        response = await pool.handle_async_request(request(server.url("/first")))
        assert await response.aread() == b"ok"
        # Let the extra bytes arrive while the response is open: all sent, then a loop turn.
        sent = sum(len(step) for step in script if isinstance(step, bytes))
        await until(lambda: server.peers[0].sent == sent)
        await asyncio.sleep(0.05)
        await response.aclose()
        _, body = await fetch(pool, server.url("/second"))
        assert body == b"right"
        assert len(server.peers) == 2
        assert [r.target for r in server.peers[0].requests] == ["/first"]
        await pool.aclose()


@asyncio_test
async def test_bytes_arriving_on_an_idle_connection_close_it() -> None:
    released = asyncio.Event()
    script: Script = [answer(b"ok"), Wait(released), answer(b"WRONG")]
    async with Server(answering(script, [answer(b"right")])) as server:
        recorder = Recorder()
        pool = new_transport(opener=recorder)
        assert (await fetch(pool, server.url("/first")))[1] == b"ok"
        released.set()
        await until(lambda: recorder.connections[0].closed)
        _, body = await fetch(pool, server.url("/second"))
        assert body == b"right"
        assert len(server.peers) == 2
        assert [r.target for r in server.peers[0].requests] == ["/first"]
        await pool.aclose()


@asyncio_test
async def test_body_delimited_by_close_that_ends_in_a_reset_is_an_error() -> None:
    script: Script = [b"HTTP/1.1 200 OK\r\n\r\npartial", Pause(0.05), "reset"]
    async with Server(answering(script)) as server:
        pool = new_transport()
        response = await pool.handle_async_request(request(server.url()))
        with pytest.raises(httpx.TransportError) as info:
            await response.aread()
        chain: list[BaseException] = []
        cause: BaseException | None = info.value
        while cause is not None:
            chain.append(cause)
            cause = cause.__cause__
        assert any(isinstance(error, ConnectionResetError) for error in chain)
        await pool.aclose()


@asyncio_test
async def test_switching_protocols_answer_raises_nothing_inside_the_protocol() -> None:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    reply = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    async with Server(answering([reply])) as server:
        pool = new_transport()
        response = await pool.handle_async_request(request(server.url()))
        assert response.status_code == 101
        await response.aclose()
        await asyncio.sleep(0.02)
        assert [context.get("message") for context in errors] == []
        await pool.aclose()


# 4. Request bytes on the wire ------------------------------------------------------------


async def _streamed_body() -> AsyncIterator[bytes]:
    yield b'{"a":'
    yield b"1}"


@pytest.mark.parametrize(
    ("method", "target", "options", "expected"),
    [
        pytest.param(
            "GET",
            "/a/b%20c?x=1&y=%2F&z",
            {"headers": [("X-One", "1"), ("x-two", "Two  Words"), ("X-One", "again")]},
            b"GET /a/b%20c?x=1&y=%2F&z HTTP/1.1\r\nHost: {host}\r\nX-One: 1\r\n"
            b"x-two: Two  Words\r\nX-One: again\r\n\r\n",
            id="get-path-query-headers",
        ),
        pytest.param("GET", "", {}, b"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n", id="empty-path"),
        pytest.param(
            "POST",
            "/pay?x=1",
            {"content": b'{"a":1}', "headers": {"Content-Type": "application/json"}},
            b"POST /pay?x=1 HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            b'Content-Length: 7\r\n\r\n{"a":1}',
            id="post-content-length",
        ),
        pytest.param(
            "PUT",
            "/s",
            {"content": _streamed_body},
            b'PUT /s HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"a":1}'
            b"\r\n0\r\n\r\n",
            id="streamed-body-chunked",
        ),
    ],
)
@asyncio_test
async def test_request_bytes_on_the_wire(
    method: str, target: str, options: dict[str, Any], expected: bytes
) -> None:
    if callable(options.get("content")):
        options = {**options, "content": options["content"]()}
    async with Server(answering([answer()])) as server:
        pool = new_transport()
        await fetch(pool, server.url(target), method, **options)
        host = f"127.0.0.1:{server.port}".encode()
        assert [r.raw for r in server.requests] == [expected.replace(b"{host}", host)]
        await pool.aclose()


@pytest.mark.parametrize("value", ["a\r\nInjected: yes", "a\nb", "a\rb", "\r\n"])
@asyncio_test
async def test_line_break_in_a_header_value_is_refused_before_anything_is_sent(
    value: str,
) -> None:
    async with Server(answering([answer()])) as server:
        pool = new_transport()
        with pytest.raises(httpx.LocalProtocolError, match="line break"):
            await pool.handle_async_request(request(server.url(), headers={"X-Note": value}))
        await asyncio.sleep(0.02)
        assert server.peers == []  # not even a connection
        await pool.aclose()


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("GET", {"X-A\r\nInjected: yes\r\nX-B": "v"}, id="header-name"),
        pytest.param("GET /other HTTP/1.1\r\nInjected: yes\r\nX:", {}, id="method"),
    ],
)
@asyncio_test
async def test_line_break_in_a_header_name_or_method_is_refused(
    method: str, headers: dict[str, str]
) -> None:
    async with Server(answering([answer()])) as server:
        pool = new_transport()
        try:
            with pytest.raises(httpx.LocalProtocolError):
                await fetch(pool, server.url(), method, headers=headers)
        finally:
            await pool.aclose()
        assert server.requests == []


# 5. Timeouts and connection failures -------------------------------------------------------


@asyncio_test
async def test_server_that_never_answers_is_read_timeout() -> None:
    async with Server(answering(())) as server:
        pool = new_transport()
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout, match="waiting for the response"):
            await pool.handle_async_request(request(server.url(), read=0.1))
        assert 0.1 <= time.perf_counter() - started < 5.0
        await seen(server.peers[0].eof)  # the abandoned connection is closed
        await pool.aclose()


@asyncio_test
async def test_body_that_stalls_is_read_timeout_while_reading() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart"
    async with Server(answering([head])) as server:
        pool = new_transport()
        response = await pool.handle_async_request(request(server.url(), read=0.1))
        chunks = response.aiter_raw()
        assert await anext(chunks) == b"start"
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout, match="reading the response body"):
            await anext(chunks)
        assert 0.1 <= time.perf_counter() - started < 5.0
        await response.aclose()
        await seen(server.peers[0].eof)
        await pool.aclose()


@asyncio_test
async def test_hanging_resolver_is_connect_timeout() -> None:
    async def hang(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return ["127.0.0.1"]

    pool = new_transport(resolver=hang)
    started = time.perf_counter()
    with pytest.raises(httpx.ConnectTimeout, match=r"DNS lookup for seller\.test timed out"):
        await pool.handle_async_request(request("http://seller.test/", connect=0.1))
    assert 0.1 <= time.perf_counter() - started < 5.0


@asyncio_test
async def test_tls_handshake_that_never_completes_is_connect_timeout() -> None:
    async with Server(answering()) as server:  # accepts, then reads and says nothing
        pool = new_transport()
        started = time.perf_counter()
        with pytest.raises(httpx.ConnectTimeout, match=f"127.0.0.1:{server.port} timed out"):
            await pool.handle_async_request(
                request(f"https://127.0.0.1:{server.port}/", connect=0.1)
            )
        assert 0.1 <= time.perf_counter() - started < 5.0


@asyncio_test
async def test_tls_to_a_plain_http_server_is_connect_error_caused_by_ssl_error() -> None:
    async def plain(peer: Peer) -> None:
        await peer.reader.read(1)
        await peer.send(answer(b"not tls", status="400 Bad Request"))

    async with Server(plain) as server:
        pool = new_transport()
        with pytest.raises(httpx.ConnectError) as info:
            await pool.handle_async_request(request(f"https://127.0.0.1:{server.port}/"))
        assert isinstance(info.value.__cause__, ssl.SSLError)


@asyncio_test
async def test_closed_port_is_connect_error_caused_by_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = new_transport()
    with pytest.raises(httpx.ConnectError) as info:
        await pool.handle_async_request(request(f"http://127.0.0.1:{port}/"))
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


@asyncio_test
async def test_name_without_addresses_is_connect_error_caused_by_gaierror() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        return []

    pool = new_transport(resolver=nothing)
    with pytest.raises(httpx.ConnectError, match=r"no addresses for empty\.test") as info:
        await pool.handle_async_request(request("http://empty.test/"))
    assert isinstance(info.value.__cause__, socket.gaierror)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/file", "unsupported scheme 'ftp'"),
        ("ws://127.0.0.1/socket", "unsupported scheme 'ws'"),
        ("file:///etc/passwd", "unsupported scheme 'file'"),
        ("http:///no-host", "the URL has no host"),
    ],
)
@asyncio_test
async def test_unusable_url_is_unsupported_protocol(url: str, message: str) -> None:
    resolved: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    pool = new_transport(resolver=resolver)
    with pytest.raises(httpx.UnsupportedProtocol) as info:
        await pool.handle_async_request(request(url))
    assert str(info.value) == message
    assert resolved == []  # refused before any lookup


# 6. Back-pressure --------------------------------------------------------------------------

BIG = 8 * 1024 * 1024
PATTERN = bytes(range(256)) * (BIG // 256)


async def big_body(peer: Peer) -> None:
    await peer.request()
    await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
    for start in range(0, BIG, 65536):
        await peer.send(PATTERN[start : start + 65536])
    await peer.read_to_eof()


@asyncio_test
async def test_fast_large_body_is_not_buffered_past_the_pause_threshold() -> None:
    async with Server(big_body) as server:
        recorder = Recorder()
        pool = new_transport(opener=recorder)
        response = await pool.handle_async_request(request(server.url()))
        connection = recorder.connections[0]
        chunks = response.aiter_raw()
        got = 0
        while got < 64 * 1024:
            got += len(await anext(chunks))
        await until(lambda: connection.paused)  # the reader stopped: the socket is not read
        await asyncio.sleep(0.05)
        assert PAUSE_ABOVE < connection.buffered <= PAUSE_ABOVE + READ_SIZE
        assert server.peers[0].sent < BIG  # the server is held back, not drained into memory
        await response.aclose()
        await pool.aclose()
        assert connection.closed
        await seen(server.peers[0].done)  # the server's side ended too...
        assert server.peers[0].sent < BIG  # ...without the rest of the body read to close it


@asyncio_test
async def test_paused_body_resumes_and_arrives_whole() -> None:
    async with Server(big_body) as server:
        recorder = Recorder()
        pool = new_transport(opener=recorder)
        response = await pool.handle_async_request(request(server.url()))
        connection = recorder.connections[0]
        await until(lambda: connection.paused)
        parts: list[bytes] = []
        most = 0
        async for chunk in response.aiter_raw():
            parts.append(chunk)
            most = max(most, connection.buffered)
        assert most <= PAUSE_ABOVE + READ_SIZE
        assert b"".join(parts) == PATTERN
        assert not connection.paused
        await response.aclose()
        await pool.aclose()


# 7. Closing the transport ------------------------------------------------------------------


@asyncio_test
async def test_transport_aclose_closes_idle_connections() -> None:
    async with Server(answering([answer(b"a")], [answer(b"b")])) as server:
        pool = new_transport()
        first = await pool.handle_async_request(request(server.url()))
        second = await pool.handle_async_request(request(server.url()))
        assert (await first.aread(), await second.aread()) == (b"a", b"b")
        await first.aclose()
        await second.aclose()
        await asyncio.sleep(0.02)
        assert not any(peer.eof.is_set() for peer in server.peers)  # idle, kept open
        await pool.aclose()
        await seen(server.peers[0].eof)
        await seen(server.peers[1].eof)


@asyncio_test
async def test_expired_idle_connection_is_closed_without_another_request_to_its_origin() -> None:
    async with (
        Server(answering([answer(b"a")])) as first,
        Server(answering([answer(b"b")], [answer(b"c")])) as second,
    ):
        clock = FakeClock()
        pool = new_transport(keepalive_expiry=5.0, clock=clock)
        await fetch(pool, first.url())
        clock.advance(5.1)
        await fetch(pool, second.url())  # the pool is used, but not for the first origin
        await seen(first.peers[0].eof)
        assert not second.peers[0].eof.is_set()  # the fresh idle one is kept...
        await fetch(pool, second.url())
        assert len(second.peers) == 1  # ...and reused
        await pool.aclose()


# 8. Through the Prober: redirects ------------------------------------------------------------


def probe_config(**overrides: Any) -> ProbeConfig:
    settings: dict[str, Any] = {
        "allow_private_addresses": True,
        "timeout": timedelta(seconds=30),
        "connect_timeout": timedelta(seconds=30),
    }
    settings.update(overrides)
    return ProbeConfig(**settings)


async def probe(
    spec: EndpointSpec, cfg: ProbeConfig | None = None, *, default_transport: bool = False
) -> ProbeFacts:
    transport = None if default_transport else new_transport()
    async with Prober(cfg or probe_config(), clock=lambda: NOW, transport=transport) as prober:
        return await prober.probe(spec)


@dataclass
class Routes:
    """Answers by request target; anything else is a 404."""

    answers: dict[str, bytes] = field(default_factory=dict)

    async def __call__(self, peer: Peer) -> None:
        while (received := await peer.request()) is not None:
            reply = self.answers.get(received.target)
            await peer.send(reply or answer(b"no route", status="404 Not Found"))


def moved(status: int, location: str) -> bytes:
    return answer(b"moved", f"Location: {location}", status=f"{status} Moved")


@pytest.mark.parametrize(
    ("status", "method", "body_kept"),
    [
        (301, "GET", False),
        (302, "GET", False),
        (303, "GET", False),
        (307, "POST", True),
        (308, "POST", True),
    ],
)
@asyncio_test
async def test_prober_redirect_rewrites_method_and_body_as_browsers_do(
    status: int, method: str, body_kept: bool
) -> None:
    routes = Routes()
    async with Server(routes) as server:
        routes.answers["/start"] = moved(status, "/next")
        routes.answers["/next"] = answer(b'{"done":true}', status="402 Payment Required")
        spec = EndpointSpec(url=server.url("/start"), method="POST", body={"q": 1}, has_body=True)
        facts = await probe(spec)
        assert facts.error_kind is None, facts.error
        assert (facts.http_status, facts.body) == (402, b'{"done":true}')
        assert (facts.final_url, facts.redirects) == (server.url("/next"), 1)
        assert facts.method == "POST"
        first, second = server.requests
        assert (first.method, first.body) == ("POST", b'{"q":1}')
        assert second.method == method
        assert second.header("host") == f"127.0.0.1:{server.port}"
        if body_kept:
            assert second.body == b'{"q":1}'
            assert second.header("content-length") == "7"
            assert second.header("content-type") == "application/json"
        else:
            assert second.body == b""
            assert second.header("content-length") is None
            assert second.header("content-type") is None
        assert second.header("user-agent") == first.header("user-agent")


@pytest.mark.parametrize(
    ("start", "location", "final"),
    [
        ("/a/b/start", "/elsewhere", "/elsewhere"),
        ("/a/b/start", "sibling", "/a/b/sibling"),
        ("/a/b/start", "../up", "/a/up"),
        ("/a/b/start", "?page=2", "/a/b/start?page=2"),
        ("/a/b/start", "//127.0.0.1:{port}/net-path", "/net-path"),
        ("/a/b/start", "http://127.0.0.1:{port}/absolute", "/absolute"),
    ],
)
@asyncio_test
async def test_prober_resolves_relative_locations(start: str, location: str, final: str) -> None:
    routes = Routes()
    async with Server(routes) as server:
        routes.answers[start] = moved(302, location.replace("{port}", str(server.port)))
        routes.answers[final] = answer(b"here")
        facts = await probe(EndpointSpec(url=server.url(start), method="GET"))
        assert (facts.http_status, facts.body) == (200, b"here")
        assert (facts.url, facts.final_url, facts.redirects) == (
            server.url(start),
            server.url(final),
            1,
        )
        assert [r.target for r in server.requests] == [start, final]


@asyncio_test
async def test_prober_cross_origin_redirect_sends_the_new_host() -> None:
    there = Routes()
    here = Routes()
    async with Server(here) as origin, Server(there) as target:
        here.answers["/go"] = moved(307, target.url("/land"))
        there.answers["/land"] = answer(b"landed")
        facts = await probe(EndpointSpec(url=origin.url("/go"), method="GET"))
        assert (facts.http_status, facts.final_url) == (200, target.url("/land"))
        assert [r.header("host") for r in target.requests] == [f"127.0.0.1:{target.port}"]


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("ftp://127.0.0.1/file", "unusable URL: redirect to a ftp URL"),
        ("mailto:seller@example.com", "unusable URL: redirect to a mailto URL"),
        ("http://[zz]/", "protocol error: invalid redirect location: Invalid IPv6 address: '[zz]'"),
    ],
)
@asyncio_test
async def test_prober_unusable_redirect_location_is_protocol_error(
    location: str, error: str
) -> None:
    routes = Routes()
    async with Server(routes) as server:
        routes.answers["/start"] = moved(301, location)
        facts = await probe(EndpointSpec(url=server.url("/start"), method="GET"))
        assert facts.error_kind is ProbeErrorKind.PROTOCOL
        assert facts.error == error
        assert facts.http_status is None
        assert (facts.final_url, facts.redirects) == (server.url("/start"), 0)
        assert len(server.requests) == 1


@pytest.mark.parametrize("default_transport", [False, True])
@pytest.mark.parametrize(("chain", "max_redirects"), [(2, 2), (3, 2), (1, 0), (0, 0)], ids=str)
@asyncio_test
async def test_prober_follows_at_most_max_redirects(
    chain: int, max_redirects: int, default_transport: bool
) -> None:
    routes = Routes()
    async with Server(routes) as server:
        for hop in range(chain):
            routes.answers[f"/r{hop}"] = moved(302, f"/r{hop + 1}")
        routes.answers[f"/r{chain}"] = answer(b"end")
        facts = await probe(
            EndpointSpec(url=server.url("/r0"), method="GET"),
            probe_config(max_redirects=max_redirects),
            default_transport=default_transport,
        )
        if chain <= max_redirects:
            assert facts.error_kind is None, facts.error
            assert (facts.http_status, facts.body) == (200, b"end")
            assert (facts.final_url, facts.redirects) == (server.url(f"/r{chain}"), chain)
            assert len(server.requests) == chain + 1
        else:
            assert facts.error_kind is ProbeErrorKind.TOO_MANY_REDIRECTS
            assert facts.error == f"more than {max_redirects} redirects"
            assert facts.http_status is None
            last = f"/r{max_redirects}"
            assert (facts.final_url, facts.redirects) == (server.url(last), max_redirects)
            assert len(server.requests) == max_redirects + 1  # the last redirect not followed


@pytest.mark.parametrize(
    ("script", "timeout", "kind", "error"),
    [
        pytest.param(
            [b"garbage\r\n\r\n"],
            30.0,
            ProbeErrorKind.PROTOCOL,
            "protocol error: invalid HTTP response: Expected HTTP/, RTSP/ or ICE/",
            id="garbage",
        ),
        pytest.param(
            ["close"],
            30.0,
            ProbeErrorKind.PROTOCOL,
            "protocol error: server disconnected without sending a response",
            id="closed-without-answer",
        ),
        pytest.param([], 0.15, ProbeErrorKind.TIMEOUT, "timeout after 150ms", id="silent"),
    ],
)
@asyncio_test
async def test_prober_maps_transport_failures(
    script: Script, timeout: float, kind: ProbeErrorKind, error: str
) -> None:
    async with Server(answering(script)) as server:
        cfg = probe_config(timeout=timedelta(seconds=timeout))
        facts = await probe(EndpointSpec(url=server.url("/x"), method="GET"), cfg)
        assert (facts.error_kind, facts.error) == (kind, error)
        assert facts.http_status is None
        assert facts.final_url == server.url("/x")
