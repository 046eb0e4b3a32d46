"""Accept connections, read request heads and hand them to lanes (design: monitor.web).

Only the I/O thread (`ConnectionLoop.run`) touches a connection, except while a lane's worker
answers it. Nothing here parses HTTP beyond finding the end of a head and its path.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

from monitor.web.handler import DYNAMIC_CACHE_CONTROL, Handler, Routes, error_body
from monitor.web.lanes import Connection, Lane, Waiting

log = logging.getLogger(__name__)


SITE_WORKERS = 8

LINGER_SECONDS = 2.0
"""How long a closed-for-writing connection is drained so the client reads its answer."""

MAX_REQUEST_LINE = 8 * 1024

MAX_HEAD_BYTES = 32 * 1024

LISTEN_BACKLOG = 4096
"""The kernel caps it at net.core.somaxconn (4096 on Linux since 5.4)."""

ACCEPT_BATCH = 64
"""Connections accepted per wake-up, so a connection flood cannot starve reading."""

ACCEPT_PAUSE_SECONDS = 0.5
"""Out of file descriptors: stop accepting this long instead of spinning on the listener."""

WARNING_INTERVAL_SECONDS = 60.0

RECEIVE_BYTES = 16 * 1024

POLL_SECONDS = 0.25


@dataclass(frozen=True)
class WebServerLoad:
    """The server's own accounting, read without locks (a moment's approximation)."""

    open_connections: int
    busy_workers: int
    waiting_requests: int
    """Complete requests queued for a busy lane."""


class ConnectionLoop:
    """Accept, read heads, hand them to lanes, linger and close; see the module docstring."""

    def __init__(
        self, listener: socket.socket, routes: Routes, max_connections: int, timeout: float
    ) -> None:
        self.listener = listener
        self._max = max_connections
        self._timeout = timeout
        self._lanes = {
            name: Lane(name, workers, routes, timeout, self._hand_back)
            for name, workers in (("health", 1), ("metrics", 1), ("site", SITE_WORKERS))
        }
        self._reading: Waiting = {}
        self._lingering: Waiting = {}
        self._open = 0
        self._returns: deque[tuple[Connection, Lane, bool]] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._stopping = threading.Event()
        self._accept_resumes_at: float | None = None
        self._warned_at: dict[str, float] = {}
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ)
        self._selector.register(self._wake_out, selectors.EVENT_READ)

    def start_workers(self, address: str) -> None:
        for lane in self._lanes.values():
            lane.start(address)

    def load(self) -> WebServerLoad:
        lanes = list(self._lanes.values())
        return WebServerLoad(
            self._open, sum(lane.busy for lane in lanes), sum(len(lane.waiting) for lane in lanes)
        )

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(POLL_SECONDS):
                    try:
                        self._on_ready(key.fileobj, key.data)
                    except Exception:
                        log.exception("web server: error handling a connection")
                self._take_returns()
                now = time.monotonic()
                self._resume_accepting(now)
                self._expire(now)
        finally:
            self._shut_down()

    def _on_ready(self, fileobj: object, connection: Connection | None) -> None:
        if connection is not None:
            self._read(connection)
        elif fileobj is self.listener:
            self._accept()
        else:
            while _receive(self._wake_out):
                pass

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:  # out of file descriptors or memory
                self._selector.unregister(self.listener)
                self._accept_resumes_at = time.monotonic() + ACCEPT_PAUSE_SECONDS
                self._warn(
                    "accept",
                    "web server cannot accept connections (%s): raise the open-files limit "
                    "(ulimit -n) or lower server.max_connections",
                    error.strerror or error,
                )
                return
            sock.setblocking(False)
            if self._open >= self._max:
                self._warn(
                    "cap",
                    "web server at server.max_connections (%d): closing the connections that "
                    "waited longest to admit new ones",
                    self._max,
                )
                if not self._make_room():  # every open connection is being answered
                    _send_quietly(sock, _busy_answer())
                    sock.close()
                    continue
            connection = Connection(sock, peer, time.monotonic() + self._timeout)
            self._open += 1
            self._reading[connection] = None
            self._watch(connection)

    def _make_room(self) -> bool:
        """Close the longest-waiting connection not being answered; False when there is none."""
        lanes = (self._lanes["site"], self._lanes["metrics"], self._lanes["health"])
        for waiting in (self._lingering, self._reading, *(lane.waiting for lane in lanes)):
            if waiting:
                connection = next(iter(waiting))
                del waiting[connection]
                if (connection.buffer or connection.head) and not connection.lingering:
                    _send_quietly(connection.sock, _busy_answer())  # a request began: say why
                self._close(connection)
                return True
        return False

    def _read(self, connection: Connection) -> None:
        if connection.closed or not connection.watched:
            return  # made room for a newcomer earlier in the same batch of events
        data = _receive(connection.sock)
        if data is None:
            return
        if not data:
            (self._lingering if connection.lingering else self._reading).pop(connection, None)
            self._close(connection)
            return
        if connection.lingering:
            return  # what a client sends after its answer is read and dropped
        buffer = connection.buffer
        searched = max(len(buffer) - 2, 0)
        buffer += data
        if connection.line_end < 0:
            if buffer.startswith((b"\r", b"\n")):  # RFC 9112 2.2: skip empty lines before it
                buffer[:] = buffer.lstrip(b"\r\n")
                searched = 0
            connection.line_end = buffer.find(b"\n", searched, MAX_REQUEST_LINE + 2)
            if connection.line_end < 0:
                if len(buffer) > MAX_REQUEST_LINE + 1:
                    self._refuse(connection, HTTPStatus.REQUEST_URI_TOO_LONG)
                return
        end = _head_end(buffer, max(searched, connection.line_end))
        if end > MAX_HEAD_BYTES or (end < 0 and len(buffer) > MAX_HEAD_BYTES):
            self._refuse(connection, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        elif end >= 0:
            del self._reading[connection]
            self._unwatch(connection)
            connection.head = bytes(buffer[:end])
            connection.buffer = bytearray()  # anything after the head is content: never read
            connection.deadline = time.monotonic() + self._timeout
            lane = self._lanes[_lane_name(connection.head)]
            lane.waiting[connection] = None
            self._feed(lane)

    def _refuse(self, connection: Connection, status: HTTPStatus) -> None:
        del self._reading[connection]
        self._answer_and_linger(connection, _plain_answer(status, _explanation(status)))

    def _answer_and_linger(self, connection: Connection, answer: bytes) -> None:
        log.debug("%s: %s", connection.peer[0], answer.split(b"\r\n", 1)[0].decode("ascii"))
        _send_quietly(connection.sock, answer)
        self._linger(connection)

    def _linger(self, connection: Connection) -> None:
        try:
            connection.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(connection)
            return
        connection.lingering = True
        connection.buffer = bytearray()
        connection.deadline = time.monotonic() + LINGER_SECONDS
        self._lingering[connection] = None
        self._watch(connection)

    def _feed(self, lane: Lane) -> None:
        while lane.waiting and lane.busy < lane.workers:
            connection = next(iter(lane.waiting))
            del lane.waiting[connection]
            lane.busy += 1
            lane.queue.put(connection)

    def _expire(self, now: float) -> None:
        for connection in _pop_expired(self._reading, now):
            if connection.buffer:
                self._answer_and_linger(
                    connection, _plain_answer(HTTPStatus.REQUEST_TIMEOUT, self._late_head())
                )
            else:
                self._close(connection)  # idle
        for connection in _pop_expired(self._lingering, now):
            self._close(connection)
        for lane in self._lanes.values():
            for connection in _pop_expired(lane.waiting, now):
                self._answer_and_linger(connection, _busy_answer())

    def _late_head(self) -> str:
        return f"the request head did not arrive within {self._timeout:g} s"

    def _take_returns(self) -> None:
        while self._returns:
            connection, lane, answered = self._returns.popleft()
            lane.busy -= 1
            if answered:
                connection.sock.setblocking(False)
                self._linger(connection)
            else:
                self._close(connection)
            self._feed(lane)

    def _hand_back(self, connection: Connection, lane: Lane, answered: bool) -> None:
        """Called by a lane's worker: queue the connection for the I/O thread."""
        with self._lock:
            if not self._closed:
                self._returns.append((connection, lane, answered))
                self._wake()
                return
        connection.sock.close()

    def _watch(self, connection: Connection) -> None:
        if not connection.watched:
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)
            connection.watched = True

    def _unwatch(self, connection: Connection) -> None:
        if connection.watched:
            self._selector.unregister(connection.sock)
            connection.watched = False

    def _close(self, connection: Connection) -> None:
        if not connection.closed:
            connection.closed = True
            self._unwatch(connection)
            connection.sock.close()
            self._open -= 1

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            self._wake_in.send(b"\0")

    def _warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._warned_at.get(kind, -WARNING_INTERVAL_SECONDS) >= WARNING_INTERVAL_SECONDS:
            self._warned_at[kind] = now
            log.warning(message, *args)

    def _resume_accepting(self, now: float) -> None:
        if self._accept_resumes_at is not None and now >= self._accept_resumes_at:
            self._accept_resumes_at = None
            self._selector.register(self.listener, selectors.EVENT_READ)

    def _shut_down(self) -> None:
        with self._lock:
            self._closed = True
        waiting = [*self._reading, *self._lingering]
        waiting += [c for lane in self._lanes.values() for c in lane.waiting]
        waiting += [connection for connection, _, _ in self._returns]
        for connection in waiting:
            connection.sock.close()
        self._selector.close()
        for sock in (self.listener, self._wake_in, self._wake_out):
            sock.close()
        for lane in self._lanes.values():
            lane.stop()


def _receive(sock: socket.socket) -> bytes | None:
    """Return what arrived, b"" when the peer closed or failed, None when nothing is there."""
    try:
        return sock.recv(RECEIVE_BYTES)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send what fits without blocking: a short answer to a client we are about to drop."""
    with contextlib.suppress(OSError):
        sock.send(data)


def _head_end(buffer: bytearray, start: int) -> int:
    """Return the index just past the empty line ending a request head, or -1."""
    ends = []
    for terminator in (b"\n\r\n", b"\n\n"):  # http.client also takes bare "\n" line ends
        at = buffer.find(terminator, start)
        if at >= 0:
            ends.append(at + len(terminator))
    return min(ends, default=-1)


def _pop_expired(waiting: Waiting, now: float) -> list[Connection]:
    expired: list[Connection] = []
    for connection in waiting:
        if connection.deadline > now:
            break
        expired.append(connection)
    for connection in expired:
        del waiting[connection]
    return expired


def _lane_name(head: bytes) -> str:
    words = head.split(b"\n", 1)[0].split()
    target = words[1].split(b"?", 1)[0] if len(words) > 1 else b""
    return {b"/healthz": "health", b"/metrics": "metrics"}.get(target, "site")


def _explanation(status: HTTPStatus) -> str:
    if status == HTTPStatus.REQUEST_URI_TOO_LONG:
        return f"the request line is longer than {MAX_REQUEST_LINE} bytes"
    if status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
        return f"the request head is longer than {MAX_HEAD_BYTES} bytes"
    return status.description


def _plain_answer(status: HTTPStatus, explanation: str, extra: str = "") -> bytes:
    """Return a whole HTTP/1.0 answer with a plain-text body, for the I/O thread to send."""
    body = error_body(status, explanation)
    head = (
        f"HTTP/1.0 {status.value} {status.phrase}\r\n"
        f"Server: {Handler.server_version}\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Cache-Control: {DYNAMIC_CACHE_CONTROL}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Connection: close\r\n{extra}\r\n"
    )
    return head.encode("ascii") + body


def _busy_answer() -> bytes:
    return _plain_answer(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "the server is at its connection limit, retry shortly",
        "Retry-After: 5\r\n",
    )
