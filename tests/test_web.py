"""`monitor.web.WebServer`: a real server on 127.0.0.1 (free port), spoken to with http.client.

http.client sends the request target byte for byte, so traversal attempts reach the server
unnormalised.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.web import WebServer, parse_listen

METRICS_BODY = b"# HELP x402_up Test.\n# TYPE x402_up gauge\nx402_up 1.0\n" * 200
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Callables:
    """The server's callables, switchable to failure by the tests."""

    fail: bool = False
    health_status: int = 200
    metrics_calls: list[float] = field(default_factory=list)

    def metrics(self) -> tuple[bytes, str]:
        self.metrics_calls.append(time.monotonic())
        if self.fail:
            raise RuntimeError("snapshot exploded")
        return METRICS_BODY, METRICS_TYPE

    def health(self) -> tuple[int, Mapping[str, object]]:
        if self.fail:
            raise RuntimeError("scheduler exploded")
        return self.health_status, {"status": "ok", "last_dispatch_age_seconds": 0.5}


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("web")
    site = tmp_path / "site"
    (site / "endpoints").mkdir(parents=True)
    (site / "badges").mkdir()
    (site / "api").mkdir()
    (site / "index.html").write_text("<h1>directory</h1>", encoding="utf-8")
    (site / "endpoints" / "a.html").write_text("<h1>a</h1>", encoding="utf-8")
    (site / "badges" / "a.svg").write_text("<svg/>", encoding="utf-8")
    (site / "api" / "endpoints.json").write_text("[]", encoding="utf-8")
    (site / "feed.xml").write_text("<feed/>", encoding="utf-8")
    (site / "empty-dir").mkdir()
    (tmp_path / "secret.txt").write_text("outside the site", encoding="utf-8")
    (site / "escape").symlink_to(tmp_path / "secret.txt")
    return site


@pytest.fixture(scope="module")
def shared_callables() -> Callables:
    return Callables()


@pytest.fixture
def callables(shared_callables: Callables) -> Iterator[Callables]:
    """Return the module server's callables, reset after each test."""
    yield shared_callables
    shared_callables.fail = False
    shared_callables.health_status = 200
    shared_callables.metrics_calls.clear()


def _start(site_dir: Path, callables: Callables) -> WebServer:
    server = WebServer(
        "127.0.0.1:0", metrics=callables.metrics, health=callables.health, site_dir=site_dir
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def server(site: Path, shared_callables: Callables) -> Iterator[WebServer]:
    """Run one server for the module: starting and stopping costs up to a poll interval."""
    running = _start(site, shared_callables)
    yield running
    running.stop()


def request(
    server: WebServer, method: str, target: str, headers: Mapping[str, str] | None = None
) -> Response:
    host, port = parse_listen(server.address)
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request(method, target, headers=dict(headers or {}))
        answer = connection.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        connection.close()


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9402") == ("127.0.0.1", 9402)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen(":9402") == ("0.0.0.0", 9402)
    for bad in ("127.0.0.1", "host:port", "h:70000"):
        with pytest.raises(ValueError, match="host:port"):
            parse_listen(bad)


def test_address_is_the_bound_port(server: WebServer) -> None:
    host, port = parse_listen(server.address)
    assert host == "127.0.0.1"
    assert port > 0


def test_metrics(server: WebServer, callables: Callables) -> None:
    answer = request(server, "GET", "/metrics?ignored=1")
    assert answer.status == 200
    assert answer.body == METRICS_BODY
    assert answer.headers["Content-Type"] == METRICS_TYPE
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Length"] == str(len(METRICS_BODY))

    head = request(server, "HEAD", "/metrics")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == str(len(METRICS_BODY))
    assert len(callables.metrics_calls) == 2


def test_metrics_gzip_when_accepted(server: WebServer) -> None:
    answer = request(server, "GET", "/metrics", {"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(answer.body) == METRICS_BODY


def test_healthz(server: WebServer, callables: Callables) -> None:
    answer = request(server, "GET", "/healthz")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Cache-Control"] == "no-store"
    assert json.loads(answer.body) == {"status": "ok", "last_dispatch_age_seconds": 0.5}
    callables.health_status = 503
    assert request(server, "GET", "/healthz").status == 503


@pytest.mark.parametrize(
    ("target", "content_type", "body"),
    [
        ("/", "text/html; charset=utf-8", b"<h1>directory</h1>"),
        ("/index.html", "text/html; charset=utf-8", b"<h1>directory</h1>"),
        ("/endpoints/a.html", "text/html; charset=utf-8", b"<h1>a</h1>"),
        ("/badges/a.svg", "image/svg+xml", b"<svg/>"),
        ("/api/endpoints.json", "application/json", b"[]"),
        ("/feed.xml", "application/xml", b"<feed/>"),
        ("/endpoints/%61.html", "text/html; charset=utf-8", b"<h1>a</h1>"),
    ],
)
def test_static_files(server: WebServer, target: str, content_type: str, body: bytes) -> None:
    answer = request(server, "GET", target)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == content_type
    assert answer.headers["Cache-Control"] == "public, max-age=60"
    assert answer.headers["Last-Modified"]
    assert answer.body == body
    head = request(server, "HEAD", target)
    assert (head.status, head.body) == (200, b"")
    assert head.headers["Content-Length"] == str(len(body))


def test_directory_without_slash_redirects(server: WebServer) -> None:
    for target in ("/endpoints", "//endpoints"):
        answer = request(server, "GET", target)
        assert answer.status == 301
        # Never "//endpoints/": a browser would read that as a host name.
        assert answer.headers["Location"] == "/endpoints/"


@pytest.mark.parametrize(
    "target",
    [
        "/missing.html",
        "/endpoints/",  # a directory without index.html: no listing
        "/empty-dir/",
        "/../pyproject.toml",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/pyproject.toml",
        "/endpoints/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/escape",  # a symlink pointing outside the site
        "/%00",
        "//etc/passwd",
    ],
)
def test_missing_and_traversal_are_404(server: WebServer, target: str) -> None:
    answer = request(server, "GET", target)
    assert answer.status == 404
    assert b"outside the site" not in answer.body
    assert b"Not found" in answer.body
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"


def test_site_not_rendered_yet(tmp_path: Path, callables: Callables) -> None:
    for site_dir in (tmp_path / "never-created", tmp_path):
        server = _start(site_dir, callables)
        try:
            answer = request(server, "GET", "/")
            assert answer.status == 200
            assert b"not been rendered yet" in answer.body
            assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
            assert answer.headers["Cache-Control"] == "no-store"
            assert request(server, "GET", "/other.html").status == 404
        finally:
            server.stop()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(server: WebServer, method: str) -> None:
    for target in ("/", "/metrics", "/healthz"):
        answer = request(server, method, target)
        assert answer.status == 405
        assert answer.headers["Allow"] == "GET, HEAD"


def test_a_raising_callable_is_a_500_and_the_server_keeps_serving(
    server: WebServer, callables: Callables, caplog: pytest.LogCaptureFixture
) -> None:
    callables.fail = True
    with caplog.at_level(logging.ERROR, logger="monitor.web"):
        metrics = request(server, "GET", "/metrics")
        health = request(server, "GET", "/healthz")
    assert (metrics.status, health.status) == (500, 500)
    assert metrics.body == b"internal server error\n"
    assert b"exploded" not in metrics.body + health.body
    assert "snapshot exploded" in caplog.text
    callables.fail = False
    assert request(server, "GET", "/metrics").status == 200
    assert request(server, "GET", "/").status == 200


def test_requests_are_not_logged_at_info(
    server: WebServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="monitor.web"):
        request(server, "GET", "/")
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_stop_is_quick_and_closes_the_port(site: Path, callables: Callables) -> None:
    server = _start(site, callables)
    host, port = parse_listen(server.address)
    # An idle keep-open connection must not hold stop() up.
    idle = http.client.HTTPConnection(host, port, timeout=5)
    idle.connect()
    started = time.monotonic()
    server.stop()
    # Waiting for the idle client would take the request timeout (30 s); the bound is generous.
    assert time.monotonic() - started < 10.0
    idle.close()
    server.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection(host, port, timeout=1).request("GET", "/")
