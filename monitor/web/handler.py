"""Answer one GET or HEAD from a request head already read: /metrics, /healthz and the site.

`Handler` runs http.server's request parser on the head alone and never reads from the socket:
requests carry no content, and a malformed head, a body or a name the file system cannot hold
gets a clear 4xx in plain text that never echoes the request back.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import mimetypes
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

log = logging.getLogger(__name__)


MetricsFunction = Callable[[], tuple[bytes, str]]
"""Return the exposition body and its content type."""


HealthFunction = Callable[[], tuple[int, Mapping[str, object]]]
"""Return an HTTP status code and a small JSON-serialisable body."""


STATIC_CACHE_CONTROL = "public, max-age=60"
"""The site is re-rendered every few minutes: a short max-age keeps browsers roughly current."""


DYNAMIC_CACHE_CONTROL = "no-store"


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


@dataclass(frozen=True)
class Routes:
    metrics: MetricsFunction
    health: HealthFunction
    site_dir: Path


def error_body(status: HTTPStatus, explanation: str) -> bytes:
    return f"{status.value} {status.phrase}: {explanation}\n".encode()


CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")


class Handler(BaseHTTPRequestHandler):
    """Answer one request from a head the I/O thread read; never reads from the socket."""

    server_version = "x402-monitor"
    # A malformed request line is answered with a status line too, never HTTP/0.9-style.
    default_request_version = "HTTP/1.0"

    def __init__(
        self, head: bytes, peer: tuple[str, int], writer: io.BufferedIOBase, routes: Routes
    ) -> None:
        # Not super().__init__(): that would serve the socket; here the head is already read.
        self.client_address = peer
        self.rfile = io.BytesIO(head)
        self.wfile = writer
        self.routes = routes
        self.close_connection = True
        self.requestline = ""

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def parse_request(self) -> bool:
        """Parse the head; refuse malformed headers and any request content."""
        if not super().parse_request():
            return False
        if self.headers.defects:
            self.send_error(HTTPStatus.BAD_REQUEST, explain="a header line is malformed")
            return False
        lengths = {value.strip() for value in self.headers.get_all("Content-Length", [])}
        if len(lengths) > 1 or not all(CONTENT_LENGTH.fullmatch(n) for n in lengths):
            self.send_error(HTTPStatus.BAD_REQUEST, explain="Content-Length is not one number")
            return False
        has_content = "Transfer-Encoding" in self.headers or any(int(n) for n in lengths)
        if has_content and self.command in ("GET", "HEAD"):
            self.send_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                explain="this server takes no request content",
            )
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a plain-text error that never echoes the request (`message` may quote it)."""
        status = HTTPStatus(code)
        self.log_error("%d %s", code, (message or status.phrase)[:200])
        self.close_connection = True
        self._send(
            status,
            error_body(status, explain or status.description),
            "text/plain; charset=utf-8",
            cache_control=DYNAMIC_CACHE_CONTROL,
            send_body=self.command != "HEAD",
        )

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
        except (ConnectionError, TimeoutError):
            raise  # the client went away or reads too slowly: nothing left to answer
        except Exception:
            log.exception("error answering %s %s", self.command, path[:200])
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                b"internal server error\n",
                "text/plain; charset=utf-8",
                cache_control=DYNAMIC_CACHE_CONTROL,
                send_body=send_body,
            )

    def _serve_metrics(self, send_body: bool) -> None:
        body, content_type = self.routes.metrics()
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
        status, payload = self.routes.health()
        body = json.dumps(payload, default=str, sort_keys=True).encode() + b"\n"
        self._send(
            HTTPStatus(status),
            body,
            "application/json",
            cache_control=DYNAMIC_CACHE_CONTROL,
            send_body=send_body,
        )

    def _serve_static(self, path: str, send_body: bool) -> None:
        found, target = _locate(self.routes.site_dir, path)
        if found == "directory":
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
        handle = _open_found(target)
        if handle is None or target is None:
            if found == "not rendered":
                self._send_page(HTTPStatus.OK, NOT_RENDERED_PAGE, send_body)
            else:
                self._send_page(HTTPStatus.NOT_FOUND, NOT_FOUND_PAGE, send_body)
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

    def _send_page(self, status: HTTPStatus, page: bytes, send_body: bool) -> None:
        self._send(
            status,
            page,
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


Found = Literal["file", "directory", "not rendered", "not found"]


def _locate(site_dir: Path, path: str) -> tuple[Found, Path | None]:
    """Return what the URL path names inside the site, and the file to serve if any.

    "directory" means a directory named without its trailing slash (relative links in its
    index page need the slash). Nothing outside the site directory is ever named.
    """
    root = site_dir.resolve()
    relative = unquote(path).lstrip("/")
    if "\x00" in relative:
        return "not found", None
    try:
        # Resolving follows "..", "%2e%2e" (decoded above) and symlinks; containment is then
        # checked on the real path, so nothing outside the site directory is ever served.
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            return "not found", None
        if target.is_dir():
            if not path.endswith("/"):
                return "directory", None
            if (target / "index.html").is_file():
                return "file", target / "index.html"
            return ("not rendered" if target == root else "not found"), None
        if target.is_file():
            return "file", target
    except (OSError, RuntimeError):
        # A name longer than the file system allows, or a symlink loop: no such file.
        return "not found", None
    # The site directory does not exist yet.
    return ("not rendered" if path == "/" else "not found"), None


def _open_found(target: Path | None) -> io.BufferedReader | None:
    """Open what `_locate` found; None if nothing, or if it was replaced since."""
    if target is None:
        return None
    try:
        return target.open("rb")
    except OSError:
        return None


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
