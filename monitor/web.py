"""The monitor's one HTTP server: /metrics, /healthz and the static site (edge: owns http.server).

`WebServer` is a stdlib `ThreadingHTTPServer` in a daemon thread. It is built from plain
callables so it never imports another edge: the shell passes `metrics.render` bound to its
registry, a health function and the site directory. Every request is answered in its own
thread; an exception in a callable becomes a 500 for that request only.
"""

from __future__ import annotations

import gzip
import json
import logging
import mimetypes
import os
import shutil
import socket
import threading
from collections.abc import Callable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

__all__ = ["HealthFunction", "MetricsFunction", "WebServer", "parse_listen"]

log = logging.getLogger(__name__)

MetricsFunction = Callable[[], tuple[bytes, str]]
"""Return the exposition body and its content type."""
HealthFunction = Callable[[], tuple[int, Mapping[str, object]]]
"""Return an HTTP status code and a small JSON-serialisable body."""

STATIC_CACHE_CONTROL = "public, max-age=60"
"""The site is re-rendered every few minutes: a short max-age keeps browsers roughly current."""
DYNAMIC_CACHE_CONTROL = "no-store"
REQUEST_TIMEOUT_SECONDS = 30.0
"""Socket timeout per connection, so a silent client cannot hold a thread forever."""
GZIP_MIN_BYTES = 4096

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".xml": "application/xml",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".woff2": "font/woff2",
}
"""Explicit types for what the site writes: `mimetypes` depends on the host's /etc/mime.types."""

NOT_RENDERED_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>x402 monitor</title></head>
<body><h1>x402 monitor</h1>
<p>The site has not been rendered yet. It appears here after the first render;
<a href="/metrics">/metrics</a> and <a href="/healthz">/healthz</a> already answer.</p>
</body></html>
"""
NOT_FOUND_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1>Not found</h1><p><a href="/">Back to the directory</a></p></body></html>
"""


def parse_listen(listen: str) -> tuple[str, int]:
    """Split `host:port` (`[::1]:9402` for IPv6; port 0 = any free port) into its parts.

    Raises ValueError naming the expected form when `listen` is malformed.
    """
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"listen address {listen!r} is not host:port (e.g. 127.0.0.1:9402)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port_text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() must not wait for slow clients still holding request threads.
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        metrics: MetricsFunction,
        health: HealthFunction,
        site_dir: Path,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.metrics = metrics
        self.health = health
        self.site_dir = site_dir
        super().__init__(address, _Handler)


class WebServer:
    """Serve /metrics, /healthz and the static site on `listen` from a daemon thread.

    Contract: `start()` binds and returns once the socket listens (errors such as "address in
    use" raise there); `address` is then the bound `host:port`; `stop()` returns within about a
    second and is idempotent. Requests in progress are not waited for.
    """

    def __init__(
        self,
        listen: str,
        *,
        metrics: MetricsFunction,
        health: HealthFunction,
        site_dir: Path,
    ) -> None:
        self._listen = parse_listen(listen)
        self._metrics = metrics
        self._health = health
        self._site_dir = site_dir
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """Return the bound `host:port` (IPv6 hosts in brackets); only valid after start()."""
        if self._server is None:
            raise RuntimeError("WebServer.address is only known after start()")
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        """Bind the socket and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("WebServer already started")
        self._server = _Server(self._listen, self._metrics, self._health, self._site_dir)
        self._thread = threading.Thread(
            # A short poll interval is what lets stop() return quickly.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"web {self.address}",
            daemon=True,
        )
        self._thread.start()
        log.info("serving /metrics, /healthz and the site on http://%s/", self.address)

    def stop(self) -> None:
        """Stop accepting requests and close the socket; a no-op when not running."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=1.0)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "x402-monitor"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _method_not_allowed(self) -> None:
        """Answer 405 to a standard method other than GET/HEAD.

        Unrecognised method names keep the stdlib's 501, which is what RFC 9110 asks for.
        """
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            b"method not allowed\n",
            "text/plain; charset=utf-8",
            cache_control=DYNAMIC_CACHE_CONTROL,
            send_body=True,
            extra={"Allow": "GET, HEAD"},
        )

    do_POST = do_PUT = do_DELETE = _method_not_allowed  # noqa: N815 (stdlib naming)
    do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _method_not_allowed  # noqa: N815

    def _dispatch(self, *, send_body: bool) -> None:
        # Not urlsplit: it would read "//name/x" as a host name.
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        try:
            if path == "/metrics":
                self._serve_metrics(send_body)
            elif path == "/healthz":
                self._serve_health(send_body)
            else:
                self._serve_static(path, send_body)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client %s went away", self.address_string())
        except Exception:
            log.exception("error answering %s %s", self.command, path)
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                b"internal server error\n",
                "text/plain; charset=utf-8",
                cache_control=DYNAMIC_CACHE_CONTROL,
                send_body=send_body,
            )

    def _serve_metrics(self, send_body: bool) -> None:
        body, content_type = self.server.metrics()
        extra = {"Vary": "Accept-Encoding"}
        # Prometheus always offers gzip; at 20,000 endpoints it shrinks ~29 MB to ~1 MB.
        if len(body) >= GZIP_MIN_BYTES and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            extra["Content-Encoding"] = "gzip"
        self._send(
            HTTPStatus.OK,
            body,
            content_type,
            cache_control=DYNAMIC_CACHE_CONTROL,
            send_body=send_body,
            extra=extra,
        )

    def _serve_health(self, send_body: bool) -> None:
        status, payload = self.server.health()
        body = json.dumps(payload, default=str, sort_keys=True).encode() + b"\n"
        self._send(
            HTTPStatus(status),
            body,
            "application/json",
            cache_control=DYNAMIC_CACHE_CONTROL,
            send_body=send_body,
        )

    def _serve_static(self, path: str, send_body: bool) -> None:
        root = self.server.site_dir.resolve()
        relative = unquote(path).lstrip("/")
        # Resolving follows "..", "%2e%2e" (decoded above) and symlinks; containment is then
        # checked on the real path, so nothing outside the site directory is ever served.
        target = (root / relative).resolve() if "\x00" not in relative else None
        if target is None or not target.is_relative_to(root):
            self._not_found(send_body)
            return
        if target.is_dir():
            if not path.endswith("/"):
                # Relative links in an index page need the trailing slash.
                self._send(
                    HTTPStatus.MOVED_PERMANENTLY,
                    b"",
                    "text/plain; charset=utf-8",
                    cache_control=STATIC_CACHE_CONTROL,
                    send_body=send_body,
                    # One leading slash: "//host/" would be a protocol-relative redirect.
                    extra={"Location": "/" + path.lstrip("/") + "/"},
                )
                return
            index = target / "index.html"
            if not index.is_file():
                if target == root:
                    self._not_rendered(send_body)
                else:
                    self._not_found(send_body)
                return
            target = index
        try:
            handle = target.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if path == "/":  # the site directory does not exist yet
                self._not_rendered(send_body)
            else:
                self._not_found(send_body)
            return
        with handle:
            # fstat on the open file: the site is replaced atomically while we serve it.
            stat = os.fstat(handle.fileno())
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", _content_type(target))
            self.send_header("Content-Length", str(stat.st_size))
            self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
            self.send_header("Cache-Control", STATIC_CACHE_CONTROL)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if send_body:
                shutil.copyfileobj(handle, self.wfile)

    def _not_rendered(self, send_body: bool) -> None:
        self._send(
            HTTPStatus.OK,
            NOT_RENDERED_PAGE,
            "text/html; charset=utf-8",
            cache_control=DYNAMIC_CACHE_CONTROL,
            send_body=send_body,
        )

    def _not_found(self, send_body: bool) -> None:
        self._send(
            HTTPStatus.NOT_FOUND,
            NOT_FOUND_PAGE,
            "text/html; charset=utf-8",
            cache_control=DYNAMIC_CACHE_CONTROL,
            send_body=send_body,
        )

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        *,
        cache_control: str,
        send_body: bool,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache_control)
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
