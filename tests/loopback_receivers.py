"""A threaded HTTP server on 127.0.0.1 (port 0) that records every request and answers by script.

`Receiver` runs `http.server` in threads of its own, so it answers whatever the test's event
loop is doing. Each request (GET or POST) is read whole and recorded, then answered with the
`Answer` the test's script returns for it: a status, headers and a body, the body possibly
generated part by part (a bomb of any size streams), the answer possibly held until the test
sets `release`. As a context manager it serves on entry; on exit it releases every held answer
and stops.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

HOLD_S = 60.0
"""Longest a held answer waits for `release`, and a wait for requests lasts: a broken test only."""


@dataclass(frozen=True)
class Received:
    """One request as the receiver read it."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    head: str
    """The request line and the headers as they were sent, as one text."""

    @property
    def first_segment(self) -> str:
        """Return the path's first segment, without a query: `ok` for `/ok/token?key=1`."""
        return self.path.split("/")[1].split("?")[0]


@dataclass(frozen=True)
class Answer:
    """How to answer one request.

    A `bytes` body is sent with its Content-Length (unless `headers` give one); an iterable
    body is sent part by part as it is generated, and without a Content-Length header the
    connection's close ends it (the server speaks HTTP/1.0). `hold`: "before" waits for
    `release` before answering, "after" once the body is sent (the rest of a body that
    promised more never comes). `status` None: no answer at all, the connection is closed
    once the hold ends.
    """

    status: int | None = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""
    hold: Literal["before", "after"] | None = None


Script = Callable[[Received], Answer]
"""Decides the answer to each request; called in the request's thread, after it is recorded."""


class Receiver(ThreadingHTTPServer):
    """Record every request and answer it as `script` says; serve while in `with`."""

    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.release = threading.Event()
        """Set by the test, and on exit: held answers go on."""
        self.sent = 0
        """Body bytes written so far, over every answer."""
        self._lock = threading.Condition()
        self._received: list[Received] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[Received]:
        """Return every request received so far, in the order they arrived."""
        with self._lock:
            return list(self._received)

    def wait_for_requests(self, count: int) -> None:
        """Wait until `count` requests have arrived; fail after HOLD_S."""
        with self._lock:
            arrived = self._lock.wait_for(lambda: len(self._received) >= count, HOLD_S)
        assert arrived, f"{count} requests expected, {len(self.received())} after {HOLD_S:g} s"

    def record(self, request: Received) -> None:
        with self._lock:
            self._received.append(request)
            self._lock.notify_all()

    def count_sent(self, size: int) -> None:
        with self._lock:
            self.sent += size

    def __enter__(self) -> Self:
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def do_GET(self) -> None:
        self._exchange()

    def do_POST(self) -> None:
        self._exchange()

    def _exchange(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        head = f"{self.requestline}\n{self.headers}"
        request = Received(self.command, self.path, headers, body, head)
        self.server.record(request)
        answer = self.server.script(request)
        with contextlib.suppress(ConnectionError):  # the client hung up: it may
            self._answer(answer)

    def _answer(self, answer: Answer) -> None:
        if answer.hold == "before":
            self.server.release.wait(HOLD_S)
        if answer.status is None:
            return
        self.send_response(answer.status)
        headers = dict(answer.headers)
        if isinstance(answer.body, bytes):
            headers.setdefault("Content-Length", str(len(answer.body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for part in [answer.body] if isinstance(answer.body, bytes) else answer.body:
            if part:
                self.wfile.write(part)
                self.wfile.flush()
                self.server.count_sent(len(part))
        if answer.hold == "after":
            self.server.release.wait(HOLD_S)
