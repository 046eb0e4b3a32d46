"""The monitor's one HTTP server: /metrics, /healthz and the static site (edge: owns http.server).

`WebServer` is built from plain callables so it never imports another edge: the shell passes
`metrics.render` bound to its registry, a health function and the site directory. Every byte a
client sends is untrusted, and the server may face the internet, so:

- One I/O thread reads every request head with `selectors` (epoll). An idle or slow client costs
  a socket and at most MAX_HEAD_BYTES of memory, never a thread. A head must arrive whole within
  `request_timeout` in total, not per read, so a client trickling a byte a second is cut then
  (408); a request line over MAX_REQUEST_LINE is a 414, a longer head a 431.
- Complete heads are answered by fixed worker lanes running http.server's parser on the head
  alone: /healthz (1 thread), /metrics (1) and the site (SITE_WORKERS). A lane never waits for
  another, so /healthz answers while every site worker is stuck on a slow download. A response
  must make progress every `request_timeout` and finish within RESPONSE_TIME_FACTOR times it,
  so a slow reader frees its worker too.
- At most `max_connections` connections are open. At the cap, the connection that has waited
  longest without being answered (a lingering close, then an idle or unfinished head, then a
  queued request) is closed to admit the new one, as nginx reuses idle connections: a flood of
  idle or slowloris connections cannot lock /healthz out, and nothing grows without bound. Only
  when every open connection is being answered is a newcomer refused with an immediate 503. A
  burst waits in the kernel's listen queue (LISTEN_BACKLOG), not in SYN retries.
- Requests carry no content (GET or HEAD with a body: 413) and every answer closes its
  connection (HTTP/1.0), so no byte a client sends is ever read as another request. After the
  answer the connection lingers briefly, reading and discarding, so the client gets the answer
  rather than a reset.

Why not a thread per connection with a cap: a capped pool either queues /healthz behind idle
clients or refuses it. Why not uvicorn or aiohttp: an asyncio server and a dependency for three
GET routes, where the standard library's selectors and http.server parser suffice.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

from monitor.web.connections import (
    LISTEN_BACKLOG,
    SITE_WORKERS,
    ConnectionLoop,
    WebServerLoad,
)
from monitor.web.handler import HealthFunction, MetricsFunction, Routes

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "MIN_MAX_CONNECTIONS",
    "REQUEST_TIMEOUT_SECONDS",
    "SITE_WORKERS",
    "HealthFunction",
    "MetricsFunction",
    "WebServer",
    "WebServerLoad",
    "parse_listen",
]


log = logging.getLogger(__name__)


DEFAULT_MAX_CONNECTIONS = 256

MIN_MAX_CONNECTIONS = 32
"""Well above the workers of all lanes (10), so at the cap some connection can always yield."""

REQUEST_TIMEOUT_SECONDS = 30.0
"""Default bound on a whole request head, and on one send making no progress."""


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


class WebServer:
    """Serve /metrics, /healthz and the static site on `listen` from daemon threads.

    Contract: `start()` binds and returns once the socket listens (errors such as "address in
    use" raise OSError there); `address` is then the bound `host:port`; `stop()` returns within
    about a second and is idempotent. Answers in progress are not waited for. Raises ValueError
    when `max_connections` is below MIN_MAX_CONNECTIONS or `request_timeout` is not positive.
    """

    def __init__(
        self,
        listen: str,
        *,
        metrics: MetricsFunction,
        health: HealthFunction,
        site_dir: Path,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        if max_connections < MIN_MAX_CONNECTIONS:
            raise ValueError(
                f"max_connections must be at least {MIN_MAX_CONNECTIONS} (got {max_connections})"
            )
        if not request_timeout > 0:
            raise ValueError(f"request_timeout must be positive (got {request_timeout})")
        self._listen = parse_listen(listen)
        self._routes = Routes(metrics, health, site_dir)
        self._max_connections = max_connections
        self._request_timeout = request_timeout
        self._loop: ConnectionLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """Return the bound `host:port` (IPv6 hosts in brackets); only valid after start()."""
        if self._loop is None:
            raise RuntimeError("WebServer.address is only known after start()")
        host, port = self._loop.listener.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        """Bind the socket and serve from an I/O thread and the lanes' worker threads."""
        if self._loop is not None:
            raise RuntimeError("WebServer already started")
        self._loop = ConnectionLoop(
            _listen(*self._listen), self._routes, self._max_connections, self._request_timeout
        )
        self._thread = threading.Thread(target=self._loop.run, name=f"web {self.address}")
        self._thread.daemon = True
        self._loop.start_workers(self.address)
        self._thread.start()
        log.info("serving /metrics, /healthz and the site on http://%s/", self.address)

    def stop(self) -> None:
        """Stop accepting, close every connection not being answered and the socket."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.stop()
        thread.join(timeout=1.0)

    def load(self) -> WebServerLoad:
        """Return open connections, busy workers and queued requests (zeros when stopped)."""
        return self._loop.load() if self._loop else WebServerLoad(0, 0, 0)


def _listen(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
        listener.setblocking(False)
    except BaseException:
        listener.close()
        raise
    return listener
