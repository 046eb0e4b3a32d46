"""Worker lanes: fixed threads answering complete requests of one kind (design: monitor.web).

A lane's worker answers a connection handed over by the I/O thread, writing under a stall and a
total time bound, then hands it back.
"""

from __future__ import annotations

import io
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from monitor.web.handler import Handler, Routes

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


log = logging.getLogger(__name__)


RESPONSE_TIME_FACTOR = 4
"""A response takes at most this many request timeouts (120 s by default) in total."""

SEND_PIECE_BYTES = 64 * 1024


class Connection:
    """One client connection; only the I/O thread touches it unless a worker holds it."""

    __slots__ = (
        "buffer",
        "closed",
        "deadline",
        "head",
        "line_end",
        "lingering",
        "peer",
        "sock",
        "watched",
    )

    def __init__(self, sock: socket.socket, peer: Any, deadline: float) -> None:
        self.sock = sock
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1]))
        self.deadline = deadline
        self.buffer = bytearray()
        self.line_end = -1
        self.head = b""
        self.lingering = False
        self.watched = False
        self.closed = False


Waiting = dict[Connection, None]
"""Connections in the order they started waiting, which is also the order of their deadlines."""


HandBack = Callable[[Connection, "Lane", bool], None]
"""Take a connection back from a lane's worker, saying whether it was answered."""


class Lane:
    """Worker threads for one kind of request, and the requests waiting for them.

    The I/O thread owns `busy` and `waiting` and puts connections on `queue`; a worker answers
    each and passes it to `hand_back` (True: answered, linger; False: close at once).
    """

    def __init__(
        self, name: str, workers: int, routes: Routes, timeout: float, hand_back: HandBack
    ) -> None:
        self.name = name
        self.workers = workers
        self.busy = 0
        self.waiting: Waiting = {}
        self.queue: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._routes = routes
        self._timeout = timeout
        self._hand_back = hand_back

    def start(self, address: str) -> None:
        for number in range(self.workers):
            name = f"web {address} {self.name} {number}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def stop(self) -> None:
        for _ in range(self.workers):
            self.queue.put(None)

    def _work(self) -> None:
        while (connection := self.queue.get()) is not None:
            self._hand_back(connection, self, self._answer(connection))

    def _answer(self, connection: Connection) -> bool:
        """Answer the connection's request; False if it must close at once."""
        sock = connection.sock
        try:
            sock.setblocking(True)
            deadline = time.monotonic() + RESPONSE_TIME_FACTOR * self._timeout
            writer = DeadlineWriter(sock, self._timeout, deadline)
            Handler(connection.head, connection.peer, writer, self._routes).handle_one_request()
            if writer.timed_out:
                # Reset rather than close: what the kernel still buffers for a client too slow
                # to read it is dropped at once instead of being sent for minutes.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return False
        except OSError as error:
            log.debug("%s went away: %s", connection.peer[0], error)
            return False
        except Exception:
            log.exception("error answering %s", connection.peer[0])
            return False
        return True


class DeadlineWriter(io.BufferedIOBase):
    """Send a response in pieces, each within `stall` seconds and all before `deadline`."""

    def __init__(self, sock: socket.socket, stall: float, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._stall = stall
        self._deadline = deadline
        self.timed_out = False

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        view = memoryview(data).cast("B")
        try:
            for start in range(0, len(view), SEND_PIECE_BYTES):
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the client reads the response too slowly")
                self._sock.settimeout(min(self._stall, remaining))
                self._sock.sendall(view[start : start + SEND_PIECE_BYTES])
        except TimeoutError:
            self.timed_out = True
            raise
        return len(view)
