"""Hostile HTTP servers cost one check each, never a round (issue 11, "Tests that must exist").

Each case is a raw loopback server that misbehaves at the byte level (tests/hostile_servers.py),
probed in one real round (`monitor.service.probe_round`, a SQLite store in tmp_path) beside a
healthy seller. Every case asserts the stored outcome and the words of its error, that the
round ended within 10x `probe.timeout`, that the healthy seller still passed, that the store
holds only clean text, and that nothing was logged as a defect of the monitor.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from hostile_round import ROUND_BOUND_S, Case, Lab, assert_costs_one_check, assert_round, play
from hostile_servers import (
    LoopbackNames,
    answer_then_later,
    challenge_answer,
    every_request,
    healthy,
    redirect,
    routes,
    streaming,
    trickling,
)
from scripted_server import Received, Script, Step, answer

HEAD_402 = b"HTTP/1.1 402 Payment Required\r\nContent-Type: application/json\r\n"
CHUNKED_402 = HEAD_402 + b"Transfer-Encoding: chunked\r\n\r\n"
WEBSOCKET = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
INTERIM = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
)


def once(*steps: Step) -> Script:
    """Return the steps as one script (an answer, then perhaps "close")."""
    return list(steps)


def chunk(data: bytes) -> bytes:
    """Return `data` as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


ENTRIES = chunk(b'{"scheme": "exact", "network": "base-sepolia"},' * 300)
"""About 15 KB of challenge entries, one chunk: an endless body that looks like a challenge."""


def flood(count: int, line: bytes) -> bytes:
    """Return `count` header lines, each `line` with its number appended."""
    return b"".join(b"%s%d\r\n" % (line, number) for number in range(count))


def to_self(received: Received) -> Script:
    """Redirect to the very same URL (a loop)."""
    return [redirect(received.target)]


def scheme_relative(received: Received) -> Script:
    """Redirect `/` to `//host/paid` (same host, scheme kept); answer /paid with a challenge."""
    if received.target == "/paid":
        return [challenge_answer()]
    return [redirect(f"//{received.header('Host')}/paid")]


TIMEOUT = "timeout after 2s"
INVALID = "invalid HTTP response"
TOO_LARGE = "response head larger than 100 KiB"
TOO_MANY = "more than 3 redirects"
PASS = "pass"
SOFT = "soft_fail"
HARD = "hard_fail"

CASES = [
    # Slow, cut or endless answers.
    Case("slowloris-head", lambda: trickling(HEAD_402 + b"X-Slow: "), HARD, (TIMEOUT,)),
    Case(
        "slowloris-body",
        lambda: trickling(HEAD_402 + b"Content-Length: 100000\r\n\r\n", b" "),
        HARD,
        (TIMEOUT,),
    ),
    Case(
        "truncated-body",
        lambda: every_request(once(HEAD_402 + b"Content-Length: 5000\r\n\r\n{", "close")),
        HARD,
        ("protocol error", "before the end of the body"),
    ),
    Case(
        "invalid-chunked",
        lambda: every_request(once(CHUNKED_402 + b"zz\r\nnot a chunk\r\n\r\n")),
        HARD,
        (INVALID,),
    ),
    Case(
        "endless-chunked-trickle",
        lambda: streaming(CHUNKED_402, b"1\r\n \r\n", every=0.1),
        HARD,
        (TIMEOUT,),
    ),
    Case(
        "endless-chunked-flood",
        lambda: streaming(CHUNKED_402 + chunk(b'{"x402Version": 1, "accepts": ['), ENTRIES),
        SOFT,
        ("max_body_bytes",),
    ),
    Case(
        "endless-whitespace",
        lambda: streaming(CHUNKED_402, chunk(b" " * 0x4000)),
        SOFT,
        ("max_body_bytes",),
    ),
    # Heads: floods, oversize, bad status lines, interim and switching answers.
    Case(
        "header-flood",
        lambda: every_request(once(HEAD_402 + flood(10_000, b"X-Flood: value-") + b"\r\n")),
        HARD,
        (TOO_LARGE,),
    ),
    Case(
        "header-flood-within-bound",
        lambda: every_request([challenge_answer(*["A: b"] * 10_000)]),
        PASS,
    ),
    Case(
        "oversize-head",
        lambda: every_request(once(HEAD_402 + b"X-Big: " + b"b" * 200_000 + b"\r\n\r\n")),
        HARD,
        (TOO_LARGE,),
    ),
    Case(
        "status-99999",
        lambda: every_request(once(b"HTTP/1.1 99999 X\r\nContent-Length: 0\r\n\r\n")),
        HARD,
        (INVALID,),
    ),
    Case(
        "version-9-9",
        lambda: every_request(once(b"HTTP/9.9 402 Payment Required\r\nContent-Length: 0\r\n\r\n")),
        HARD,
        (INVALID,),
    ),
    Case(
        "empty-status-line",
        lambda: every_request(once(b"\r\n", "close")),
        HARD,
        ("server disconnected without sending a response",),
    ),
    Case(
        "binary-garbage",
        lambda: every_request(once(bytes(range(256)) * 4, "close")),
        HARD,
        (INVALID,),
    ),
    Case("interim-answers", lambda: every_request([INTERIM + challenge_answer()]), PASS),
    Case(
        "switching-protocols",
        lambda: every_request(once(WEBSOCKET + b"\x81\x05hello", "close")),
        SOFT,
        ("HTTP 101",),
    ),
    # Keep-alive desync: a second answer (or junk) right behind the first, on one origin.
    Case(
        "second-answer-behind",
        lambda: every_request([challenge_answer() + answer(b"free", status="200 OK")]),
        PASS,
        targets=("/a", "/b"),
    ),
    Case(
        "junk-behind",
        lambda: every_request([challenge_answer() + b"HTTP/1.1 junk\r\n\r\n"]),
        PASS,
        targets=("/a", "/b"),
    ),
    # Redirects.
    Case(
        "to-empty-label",
        lambda: every_request([redirect("http://a..b/x")]),
        HARD,
        ("invalid host name a..b",),
    ),
    Case(
        "to-long-label",
        lambda: every_request([redirect(f"http://{'x' * 64}.example/x")]),
        HARD,
        ("invalid host name",),
    ),
    Case("redirect-loop", lambda: every_request(to_self), SOFT, (TOO_MANY,)),
    Case(
        "redirect-chain",
        lambda: routes({f"/r{n}": [redirect(f"/r{n + 1}")] for n in range(10)}),
        SOFT,
        (TOO_MANY,),
        targets=("/r0",),
    ),
    Case(
        "to-javascript",
        lambda: every_request([redirect("javascript:alert(1)")]),
        HARD,
        ("unusable URL", "javascript"),
    ),
    Case(
        "to-ftp",
        lambda: every_request([redirect("ftp://files.seller.test/pub")]),
        HARD,
        ("unusable URL", "ftp"),
    ),
    Case(
        "relative-redirects",
        lambda: routes(
            {
                "/a/b/start": [redirect("../next")],
                "/a/next": [redirect("?page=2")],
                "/a/next?page=2": [redirect("/paid")],
                "/paid": [challenge_answer()],
            }
        ),
        PASS,
        targets=("/a/b/start",),
    ),
    Case("scheme-relative-redirect", lambda: every_request(scheme_relative), PASS),
    Case(
        "location-with-spaces",
        lambda: routes({"/": [redirect("/paid here")], "/paid%20here": [challenge_answer()]}),
        PASS,
    ),
    Case(
        "location-with-controls",
        lambda: every_request([redirect(b"/paid\x01\x7fhere")]),
        HARD,
        (INVALID,),
    ),
    Case(
        "to-private-address",
        lambda: every_request([redirect("http://internal.test/admin")]),
        "inconclusive",
        ("blocked: loopback address 127.0.0.2",),
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_a_hostile_server_costs_one_check(
    case: Case, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert_costs_one_check(case, tmp_path / "monitor.db", caplog)


def test_an_answer_arriving_on_an_idle_connection_is_never_the_next_endpoints(
    tmp_path: Path,
) -> None:
    """Issue 11.4: 50 ms after its answer, a server sends a second one on the idle connection.

    Two endpoints of one origin, probed in two rounds by one prober: unfixed, the second
    endpoint read the unsolicited "200 OK" as its answer ("served without payment").
    """
    sent = asyncio.Event()
    free = answer(b"free", status="200 OK")
    desync = Case(
        "desync",
        lambda: answer_then_later(challenge_answer(), free, 0.05, sent),
        PASS,
        targets=("/a", "/b"),
    )

    async def go() -> None:
        async with Lab([desync]) as lab:
            first, second = lab.urls["desync"]
            result = await play(
                tmp_path / "monitor.db",
                lab,
                batches=[[first, *lab.healthy_urls], [second, *lab.healthy_urls]],
                between=lambda: asyncio.wait_for(sent.wait(), ROUND_BOUND_S),
            )
            connections = len(lab.servers["desync"].peers)
        for url in (first, second):
            assert [(c.outcome, c.error) for c in result.checks[url]] == [("pass", None)]
        for url in lab.healthy_urls:
            assert [c.outcome for c in result.checks[url]] == ["pass", "pass"]
        assert connections == 2  # the connection that spoke out of turn was not reused
        assert result.elapsed_s <= 2 * ROUND_BOUND_S
        assert result.unclean == []
        assert result.loop_errors == []

    asyncio.run(asyncio.wait_for(go(), 3 * ROUND_BOUND_S))


def test_a_defect_of_the_monitor_costs_one_inconclusive_check_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11.1: an exception that is no network error (here from name resolution)."""
    names = LoopbackNames()

    async def breaking(host: str, port: int) -> list[str]:
        if host.startswith("broken."):
            raise RuntimeError("resolver bug")
        return await names(host, port)

    broken = Case("broken", healthy, "inconclusive", ("monitor error: RuntimeError: resolver bug",))

    async def go() -> None:
        async with Lab([broken]) as lab:
            result = await play(tmp_path / "monitor.db", lab, resolver=breaking)
        assert_round(result, lab, [broken])

    asyncio.run(asyncio.wait_for(go(), 3 * ROUND_BOUND_S))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "broken.seller.test" in errors[0].getMessage()


def test_an_unreachable_egress_proxy_fails_no_endpoint(tmp_path: Path) -> None:
    """The monitor's own proxy being down says nothing about endpoints: inconclusive."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]

    async def go() -> None:
        async with Lab([], healthy_schemes=("http", "https")) as lab:
            result = await play(tmp_path / "monitor.db", lab, proxy=f"http://127.0.0.1:{closed}")
        for url in lab.healthy_urls:
            ((check),) = result.checks[url]
            assert check.outcome == "inconclusive", check
            assert "egress proxy is unreachable" in (check.error or ""), check
        assert result.elapsed_s <= ROUND_BOUND_S
        assert result.unclean == []

    asyncio.run(asyncio.wait_for(go(), 3 * ROUND_BOUND_S))
