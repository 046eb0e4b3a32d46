"""`monitor.web.WebServer` against hostile clients: raw sockets on 127.0.0.1, real server.

Every hostile request gets an answer with a status line and a clear status (never a 500) and
leaves no traceback; idle and slow clients cost no thread and are cut in bounded total time;
/healthz answers while the connection cap is reached or every site worker is stuck.
Waits are generous multiples of the configured timeouts: they wait for events, not races.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from monitor.web import (
    DEFAULT_MAX_CONNECTIONS,
    MIN_MAX_CONNECTIONS,
    SITE_WORKERS,
    WebServer,
    parse_listen,
)

BIG_FILE_BYTES = 16 * 1024 * 1024
"""Larger than loopback's socket buffers together, so a client that does not read blocks a send."""
WAIT_S = 30.0
"""How long a test waits for an event that normally takes milliseconds."""

StartServer = Callable[..., WebServer]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("hostile") / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>directory</h1>", encoding="utf-8")
    (site / "big.bin").write_bytes(b"\0" * BIG_FILE_BYTES)
    return site


def _health() -> tuple[int, Mapping[str, object]]:
    return 200, {"status": "ok"}


def _metrics() -> tuple[bytes, str]:
    return b"x402_up 1.0\n", "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture
def start(site: Path) -> Iterator[StartServer]:
    """Return a function starting a server on a free port with options; all stop after the test."""
    started: list[WebServer] = []

    def start_server(**options: Any) -> WebServer:
        server = WebServer(
            "127.0.0.1:0", metrics=_metrics, health=_health, site_dir=site, **options
        )
        server.start()
        started.append(server)
        return server

    yield start_server
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[WebServer]:
    """One server with the default settings for the request-level tests."""
    running = WebServer("127.0.0.1:0", metrics=_metrics, health=_health, site_dir=site)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def no_tracebacks(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """Fail the test if the server logs a warning, an error or a traceback anywhere."""
    with caplog.at_level(logging.DEBUG, logger="monitor.web"):
        yield
    loud = [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert not loud, [r.getMessage()[:200] for r in loud]
    assert "Traceback" not in capfd.readouterr().err


def _connect(server: WebServer, *, receive_buffer: int | None = None) -> socket.socket:
    host, port = parse_listen(server.address)
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connecting, so the window stays small
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    connection.settimeout(WAIT_S)
    connection.connect((host, port))
    return connection


def _read_to_end(connection: socket.socket, limit_s: float = WAIT_S) -> bytes:
    """Read until the server closes; a reset after an answer counts as the end."""
    deadline = time.monotonic() + limit_s
    received = bytearray()
    while (remaining := deadline - time.monotonic()) > 0:
        connection.settimeout(remaining)
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    else:
        raise AssertionError(f"the server did not close the connection within {limit_s} s")
    return bytes(received)


def exchange(server: WebServer, data: bytes) -> bytes:
    """Send raw bytes, return everything the server answers before it closes."""
    with _connect(server) as connection:
        # The server may answer and close before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(data)
        return _read_to_end(connection)


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert match, f"no status line in {answer[:80]!r}"
    return int(match.group(1))


def get(server: WebServer, target: str) -> bytes:
    return exchange(server, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.05)


def _request(target: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(headers) + b"\r\n"


HOSTILE_REQUESTS = {
    # Names longer than the file system allows were a 500 with a traceback.
    "path-5000-chars": (_request(b"/" + b"a" * 5000), 404),
    "name-300-chars": (_request(b"/" + b"b" * 300), 404),
    "path-4500-chars-in-short-names": (_request(b"/a" * 2250), 404),
    "request-line-10000": (_request(b"/" + b"a" * 10_000), 414),
    "request-line-100000": (_request(b"/" + b"a" * 100_000), 414),
    "header-line-40k": (_request(b"/", b"X-Big: " + b"a" * 40_000 + b"\r\n"), 431),
    "head-over-the-cap": (
        _request(b"/", *[b"X-%d: %s\r\n" % (i, b"b" * 400) for i in range(99)]),
        431,
    ),
    "200-headers": (_request(b"/", *[b"X-%d: y\r\n" % i for i in range(200)]), 431),
    "header-without-colon": (_request(b"/", b"GARBAGE\r\n", b"Content-Length: 5\r\n"), 400),
    "header-name-with-space": (_request(b"/", b"Bad Name: x\r\n"), 400),
    "tls-to-http-port": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n", 400),
    "one-word": (b"GARBAGE\r\n\r\n", 400),
    "four-words": (b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    "bad-version": (b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400),
    "http-9": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    "http-0.9": (b"GET /\r\n\r\n", 200),
    "leading-empty-lines": (b"\r\n\r\n" + _request(b"/"), 200),
    "bare-line-feeds": (b"GET /healthz HTTP/1.1\nHost: x\n\n", 200),
    "percent-ff": (_request(b"/%ff%fe"), 404),
    "percent-nul": (_request(b"/%00"), 404),
    "raw-nul": (_request(b"/a\x00b"), 404),
    "invalid-utf8": (_request(b"/%c3%28.html"), 404),
    "raw-8-bit": (_request(b"/\xff\xfe\xc3"), 404),
    "lone-percent": (_request(b"/%"), 404),
    "bad-percent": (_request(b"/%zz%"), 404),
    "traversal": (_request(b"/%2e%2e/%2e%2e/etc/passwd"), 404),
    "encoded-slash-traversal": (_request(b"/..%2f..%2fetc%2fpasswd"), 404),
    "unknown-method": (_request(b"/", method=b"BREW"), 501),
    "binary-method": (_request(b"/", method=b"G\xffT"), 501),
    "post-with-body": (_request(b"/", b"Content-Length: 20\r\n", method=b"POST") + b"a" * 20, 405),
    "get-huge-content-length": (_request(b"/", b"Content-Length: 99999999999\r\n") + b"abc", 413),
    "get-chunked": (_request(b"/", b"Transfer-Encoding: chunked\r\n") + b"5\r\nhello\r\n", 413),
    "head-with-content": (_request(b"/", b"Content-Length: 3\r\n", method=b"HEAD") + b"abc", 413),
    "invalid-content-length": (_request(b"/", b"Content-Length: -1\r\n"), 400),
    "conflicting-content-lengths": (
        _request(b"/", b"Content-Length: 0\r\n", b"Content-Length: 7\r\n"),
        400,
    ),
}


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(("data", "expected"), HOSTILE_REQUESTS.values(), ids=HOSTILE_REQUESTS)
def test_hostile_requests_get_a_clear_status_and_no_traceback(
    server: WebServer, data: bytes, expected: int
) -> None:
    answer = exchange(server, data)
    assert status_of(answer) == expected
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"traceback" not in answer.lower()
    assert b"\r\nContent-Type: " in head
    if expected >= 400:
        # The answer names the problem (HEAD: in the status line) and never echoes the request.
        assert body.strip() or data.startswith(b"HEAD ")
        assert b"GARBAGE" not in body
        assert b"aaaa" not in answer


@pytest.mark.usefixtures("no_tracebacks")
def test_head_answers_headers_only(server: WebServer) -> None:
    answer = exchange(server, _request(b"/", method=b"HEAD"))
    assert status_of(answer) == 200
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Length: 18" in head
    assert body == b""


@pytest.mark.usefixtures("no_tracebacks")
def test_a_request_body_is_never_read_as_another_request(server: WebServer) -> None:
    smuggled = _request(b"/healthz")
    answer = exchange(
        server,
        _request(b"/", b"Content-Length: %d\r\n" % len(smuggled), method=b"POST") + smuggled,
    )
    assert status_of(answer) == 405
    assert answer.count(b"HTTP/1.") == 1


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("target", [b"/", b"/healthz", b"/metrics"])
def test_a_head_arriving_byte_by_byte_is_answered(server: WebServer, target: bytes) -> None:
    """The end of a head split across reads (a terminator in two pieces) is still found."""
    with _connect(server) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in _request(target, b"X-A: b\r\n"):
            connection.sendall(bytes([byte]))
            time.sleep(0.001)
        assert status_of(_read_to_end(connection)) == 200


def test_max_connections_has_a_floor(site: Path) -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_MAX_CONNECTIONS}"):
        WebServer(
            "127.0.0.1:0",
            metrics=_metrics,
            health=_health,
            site_dir=site,
            max_connections=MIN_MAX_CONNECTIONS - 1,
        )


@pytest.mark.usefixtures("no_tracebacks")
def test_slowloris_head_is_cut_in_bounded_total_time(start: StartServer) -> None:
    """One byte every 0.2 s never trips a per-read timeout of 1 s; the total bound cuts it."""
    server = start(request_timeout=1.0)
    with _connect(server) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
        started = time.monotonic()
        answer = b""
        while time.monotonic() - started < 30:
            try:
                connection.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            connection.settimeout(0.2)
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            answer += chunk
            if not chunk:
                break
        else:
            raise AssertionError("a slowloris head held its connection for 30 s")
    assert status_of(answer) == 408
    assert b"did not arrive within 1 s" in answer
    wait_for(lambda: server.load().open_connections == 0, "the slow connection to be closed")


@pytest.mark.usefixtures("no_tracebacks")
def test_an_idle_connection_is_closed_after_the_request_timeout(start: StartServer) -> None:
    server = start(request_timeout=1.0)
    with _connect(server) as connection:
        assert _read_to_end(connection) == b""  # closed silently, as an idle connection is
    wait_for(lambda: server.load().open_connections == 0, "the server to forget it")


@pytest.mark.usefixtures("no_tracebacks")
def test_a_slow_reader_is_cut_in_bounded_total_time(start: StartServer) -> None:
    """A client reading ~300 KB/s never stalls a send for long, but cannot hold a worker."""
    server = start(request_timeout=0.5)
    with _connect(server) as connection:
        connection.sendall(_request(b"/big.bin"))
        started = time.monotonic()
        received = 0
        while True:
            assert time.monotonic() - started < 30, "a slow reader held its worker for 30 s"
            connection.settimeout(WAIT_S)
            try:
                chunk = connection.recv(16384)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += len(chunk)
            time.sleep(0.05)
    assert received < BIG_FILE_BYTES
    wait_for(lambda: server.load().busy_workers == 0, "the worker to be free again")


def _raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard > soft):
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


@pytest.mark.usefixtures("no_tracebacks")
def test_idle_connections_cost_no_thread(start: StartServer) -> None:
    """2,000 idle connections used to start 2,000 threads."""
    server = start()
    # The server holds at most its cap of descriptors; the idle clients hold the rest.
    limit = _raise_open_files_limit(2000 + DEFAULT_MAX_CONNECTIONS + 200)
    count = min(2000, limit - DEFAULT_MAX_CONNECTIONS - 200)
    if count < 300:
        pytest.skip(f"only {limit} open files allowed")
    threads_before = threading.active_count()
    idle: list[socket.socket] = []
    try:
        for _ in range(count):
            idle.append(_connect(server))
        # Connections are accepted in order: once a later one is answered, all were accepted.
        assert status_of(get(server, "/healthz")) == 200
        assert threading.active_count() <= threads_before + 1
        assert server.load().open_connections <= DEFAULT_MAX_CONNECTIONS
    finally:
        for connection in idle:
            connection.close()


def test_healthz_answers_while_the_connection_cap_is_reached(
    start: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = start(max_connections=MIN_MAX_CONNECTIONS)
    held: list[socket.socket] = []
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.web"):
            for number in range(10 * MIN_MAX_CONNECTIONS):
                connection = _connect(server)
                if number % 2:  # half idle, half slowloris heads
                    connection.sendall(b"GET / HTTP/1.1\r\nX-Slow: a")
                held.append(connection)
            wait_for(
                lambda: server.load().open_connections >= MIN_MAX_CONNECTIONS,
                "the connection cap to be reached",
            )
            assert status_of(get(server, "/healthz")) == 200
            assert status_of(get(server, "/")) == 200
        assert server.load().open_connections <= MIN_MAX_CONNECTIONS
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "max_connections" in warnings[0]
    finally:
        for connection in held:
            connection.close()
    # The server's own count stays exact through evictions: it never admits beyond the cap.
    wait_for(lambda: server.load().open_connections == 0, "every connection to be closed")


@pytest.mark.usefixtures("no_tracebacks")
def test_healthz_and_metrics_answer_while_every_site_worker_is_stuck(
    start: StartServer,
) -> None:
    server = start()
    stuck: list[socket.socket] = []
    try:
        for _ in range(SITE_WORKERS + 4):
            connection = _connect(server, receive_buffer=4096)
            connection.sendall(_request(b"/big.bin"))
            stuck.append(connection)  # and never read
        wait_for(
            lambda: (
                server.load().busy_workers >= SITE_WORKERS and server.load().waiting_requests >= 4
            ),
            "every site worker to be stuck on a client that does not read",
        )
        assert status_of(get(server, "/healthz")) == 200
        assert status_of(get(server, "/metrics")) == 200
    finally:
        for connection in stuck:
            connection.close()
    # Clients that went away free their workers at once.
    assert status_of(get(server, "/")) == 200


def test_running_out_of_file_descriptors_pauses_accepting_and_recovers(
    start: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = start()
    host, port = parse_listen(server.address)
    clients = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.web"):
            # No descriptor left for accept(); the clients' sockets already exist. A new
            # descriptor takes the lowest free number, so the gaps that earlier tests left
            # below the highest open one are filled first: only then does the limit bite.
            top = max(int(name) for name in os.listdir("/proc/self/fd"))
            while (filler := os.open(os.devnull, os.O_RDONLY)) <= top:
                fillers.append(filler)
            os.close(filler)
            resource.setrlimit(resource.RLIMIT_NOFILE, (top + 1, hard))
            try:
                for client in clients:
                    client.settimeout(WAIT_S)
                    client.connect((host, port))  # completes in the kernel's listen queue
                    client.sendall(_request(b"/healthz"))
                wait_for(lambda: bool(caplog.records), "a warning about accepting")
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                for filler in fillers:
                    os.close(filler)
                fillers.clear()
            for client in clients:
                assert status_of(_read_to_end(client)) == 200
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 1  # not once per attempt
        assert "cannot accept connections" in messages[0]
        assert "ulimit -n" in messages[0]
    finally:
        for filler in fillers:
            os.close(filler)
        for client in clients:
            client.close()


def _listen_backlog(port: int) -> int:
    """Return the backlog the kernel reports for the listening socket on `port`."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("needs ss (iproute2) to read the listen backlog")
    shown = subprocess.run(
        [ss, "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    # State, Recv-Q, Send-Q (the backlog of a listening socket), local, peer.
    return int(shown[2])


def test_listen_backlog_absorbs_a_burst(start: StartServer) -> None:
    server = start(max_connections=1024)
    _, port = parse_listen(server.address)
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text(encoding="ascii"))
    assert _listen_backlog(port) >= min(1024, somaxconn)

    statuses = _burst(server, 500)
    assert statuses == [200] * 500


def _burst(server: WebServer, count: int) -> list[int]:
    """Open `count` connections at once, each asking for /healthz; return the statuses."""
    host, port = parse_listen(server.address)
    selector = selectors.DefaultSelector()
    answers: dict[socket.socket, bytearray] = {}
    answers_by_fd: dict[int, socket.socket] = {}
    for _ in range(count):
        connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        connection.setblocking(False)
        connection.connect_ex((host, port))
        answers[connection] = bytearray()
        answers_by_fd[connection.fileno()] = connection
        selector.register(connection, selectors.EVENT_WRITE)
    deadline = time.monotonic() + 3 * WAIT_S
    pending = count
    while pending:
        assert time.monotonic() < deadline, f"{pending} of {count} burst connections unanswered"
        for key, events in selector.select(timeout=0.5):
            connection = answers_by_fd[key.fd]
            if events & selectors.EVENT_WRITE:
                connection.send(_request(b"/healthz"))
                selector.modify(connection, selectors.EVENT_READ)
                continue
            chunk = connection.recv(65536)
            answers[connection] += chunk
            if not chunk:
                selector.unregister(connection)
                connection.close()
                pending -= 1
    selector.close()
    return [status_of(bytes(answer)) for answer in answers.values()]
