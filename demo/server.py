"""An offline demo x402 seller: real 402 payloads from tests/fixtures/x402 on loopback.

Stdlib only (`http.server`). Used by the tests (a session-wide instance on port 0) and by the
offline demo (`python -m demo.server --host 127.0.0.1 --port 8402`). Each path behaves like a
kind of real endpoint, healthy or broken; see `ROUTES` below. It is deliberately instrumented
(request counts, concurrency high-water mark, last POST body) so tests can assert what the
monitor actually sent.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "x402"
BIG_BODY_BYTES = 5 * 1024 * 1024
_MAX_POST_BYTES = 1024 * 1024
_MAX_DELAY_S = 30.0


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _header_value(name: str) -> str:
    # A header value cannot carry the file's trailing newline.
    return _fixture(name).decode("ascii").strip()


V1_VALID = "01-v1-evm-spec-base-sepolia.json"
V1_SOLANA = "13-v1-evm-svm-real-skill-registry-dual-rail.json"
V1_POST_BODYFIELDS = "11-v1-evm-real-truecast-post-bodyfields.json"
V1_EMPTY_PAYTO = "08-v1-evm-real-aeon-empty-payto-INVALID.json"
V2_HEADER = "02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64"
V2_SDK_HEADER = "G1-v2-python-sdk-2.25-fastapi-PAYMENT-REQUIRED.b64"
SUPPORTED = "06-supported-v2-spec.json"


class DemoServer(ThreadingHTTPServer):
    """The HTTP server plus the counters tests read; thread-safe under `lock`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, slow_delay: float = 2.0) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, DemoHandler)
        self.slow_delay = slow_delay
        """Default delay of `/slow` in seconds (`?delay=` overrides it)."""
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.hits: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_post_body: bytes | None = None
        self.last_path: str | None = None
        self.last_headers: dict[str, str] = {}
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Return `http://host:port` of the bound socket (IPv6 hosts in brackets)."""
        host, port = self.server_address[0], self.server_address[1]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def verify_request(self, request: object, client_address: object) -> bool:
        """Count every accepted TCP connection (even ones that never send a request)."""
        with self.lock:
            self.connections += 1
        return True

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore clients that hang up (body caps, timeouts); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def reset_stats(self, settle_s: float = 5.0) -> None:
        """Zero the counters (the tests share one server per session).

        Waits (at most `settle_s`) for requests still being served, e.g. a `/slow` one whose
        client gave up, so they cannot count towards the next test's concurrency figures.
        """
        deadline = time.monotonic() + settle_s
        while self.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        with self.lock:
            self.connections = self.requests = self.max_in_flight = 0
            self.hits.clear()
            self.last_post_body = None
            self.last_path = None
            self.last_headers = {}

    def start(self) -> None:
        """Serve in a daemon thread."""
        # A short poll interval makes stop() quick (tests start and stop extra servers).
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="demo-x402", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class DemoHandler(BaseHTTPRequestHandler):
    """Dispatch each request path to one of the demo behaviours."""

    server: DemoServer
    protocol_version = "HTTP/1.1"
    server_version = "x402-demo/0.1"

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: tests and the demo print their own output."""

    def do_GET(self) -> None:
        """Handle GET."""
        self._handle()

    # http.server dispatches on these stdlib names.
    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET  # noqa: N815

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        body = self._read_body()
        server = self.server
        with server.lock:
            server.requests += 1
            server.hits[parts.path] += 1
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            server.last_path = self.path
            server.last_headers = {name.lower(): value for name, value in self.headers.items()}
            if self.command == "POST":
                server.last_post_body = body
        try:
            route = ROUTES.get(parts.path, DemoHandler._not_found)
            route(self, query)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (body cap, timeout): expected
        finally:
            with server.lock:
                server.in_flight -= 1

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, _MAX_POST_BYTES)) if length > 0 else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        if body or status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value).encode(), headers)

    # Behaviours -----------------------------------------------------------------------

    def _v1(self, name: str) -> None:
        self._send(402, _fixture(name))

    def _v2(self, header_file: str, extra: dict[str, str] | None = None) -> None:
        headers = {"PAYMENT-REQUIRED": _header_value(header_file), **(extra or {})}
        self._send(402, b"{}", headers)

    def _v1_valid(self, query: dict[str, str]) -> None:
        self._v1(V1_VALID)

    def _v1_solana(self, query: dict[str, str]) -> None:
        self._v1(V1_SOLANA)

    def _v1_post_bodyfields(self, query: dict[str, str]) -> None:
        self._v1(V1_POST_BODYFIELDS)

    def _v2_valid(self, query: dict[str, str]) -> None:
        self._v2(V2_HEADER)

    def _v2_sdk(self, query: dict[str, str]) -> None:
        self._v2(V2_SDK_HEADER, {"Cache-Control": "no-store"})

    def _empty_payto(self, query: dict[str, str]) -> None:
        self._v1(V1_EMPTY_PAYTO)

    def _no_challenge(self, query: dict[str, str]) -> None:
        self._send(402)

    def _not_found(self, query: dict[str, str]) -> None:
        self._json(404, {"error": "not found"})

    def _error(self, query: dict[str, str]) -> None:
        self._json(500, {"error": "internal server error"})

    def _free(self, query: dict[str, str]) -> None:
        self._json(200, {"ok": True, "data": "served without payment"})

    def _slow(self, query: dict[str, str]) -> None:
        try:
            delay = float(query.get("delay", self.server.slow_delay))
        except ValueError:
            delay = self.server.slow_delay
        time.sleep(min(max(delay, 0.0), _MAX_DELAY_S))
        self._v1(V1_VALID)

    def _post_only(self, query: dict[str, str]) -> None:
        if self.command != "POST":
            self._json(405, {"error": "method not allowed"}, {"Allow": "POST"})
        else:
            self._v2(V2_HEADER)

    def _rate_limited(self, query: dict[str, str]) -> None:
        self._json(429, {"error": "too many requests"}, {"Retry-After": "30"})

    def _redirect(self, query: dict[str, str]) -> None:
        # `?to=` lets tests build a cross-host redirect; the demo itself never uses it.
        self._send(302, headers={"Location": query.get("to", "/v1/valid")})

    def _redirect_loop(self, query: dict[str, str]) -> None:
        self._send(302, headers={"Location": "/redirect-loop"})

    def _facilitator_supported(self, query: dict[str, str]) -> None:
        # A facilitator's capability list (spec example): lets the demo and tests run the
        # facilitator check offline.
        self._send(200, _fixture(SUPPORTED))

    def _big(self, query: dict[str, str]) -> None:
        self.send_response(402)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(BIG_BODY_BYTES))
        self.end_headers()
        if self.command == "HEAD":
            return
        prefix = b'{"x402Version":1,"error":"padding","padding":"'
        suffix = b'"}'
        self.wfile.write(prefix)
        remaining = BIG_BODY_BYTES - len(prefix) - len(suffix)
        chunk = b"x" * 65536
        while remaining > 0:
            piece = chunk[: min(remaining, len(chunk))]
            self.wfile.write(piece)
            remaining -= len(piece)
        self.wfile.write(suffix)


ROUTES: dict[str, Callable[[DemoHandler, dict[str, str]], None]] = {
    "/v1/valid": DemoHandler._v1_valid,
    "/v1/solana": DemoHandler._v1_solana,
    "/v1/post-bodyfields": DemoHandler._v1_post_bodyfields,
    "/v2/valid": DemoHandler._v2_valid,
    "/v2/sdk": DemoHandler._v2_sdk,
    "/invalid/empty-payto": DemoHandler._empty_payto,
    "/invalid/no-challenge": DemoHandler._no_challenge,
    "/not-found": DemoHandler._not_found,
    "/error": DemoHandler._error,
    "/free": DemoHandler._free,
    "/slow": DemoHandler._slow,
    "/post-only": DemoHandler._post_only,
    "/rate-limited": DemoHandler._rate_limited,
    "/redirect": DemoHandler._redirect,
    "/redirect-loop": DemoHandler._redirect_loop,
    "/big": DemoHandler._big,
    "/facilitator/supported": DemoHandler._facilitator_supported,
}
"""Path -> behaviour. Anything else answers 404."""


def start_demo_server(
    host: str = "127.0.0.1", port: int = 0, *, slow_delay: float = 2.0
) -> tuple[DemoServer, str]:
    """Start the demo seller in a daemon thread; return the server and its base URL.

    `port=0` picks a free port. Call `server.stop()` when done.
    """
    server = DemoServer((host, port), slow_delay=slow_delay)
    server.start()
    return server, server.base_url


def main(argv: list[str] | None = None) -> int:
    """Run the demo seller in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m demo.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8402)
    parser.add_argument("--slow-delay", type=float, default=2.0, help="default /slow delay (s)")
    args = parser.parse_args(argv)
    server, base_url = start_demo_server(args.host, args.port, slow_delay=args.slow_delay)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(base_url, flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
