"""Client TLS over memory BIOs for one probe connection, with the handshake off the event loop.

Part of the probe edge, used by `monitor.probe.connection.HttpConnection`. asyncio's own TLS
layer (`sslproto`) wraps every connection in a second protocol and transport, buffers in
Python and runs OpenSSL's handshake on the event loop's thread. Probes open one TLS
connection per host and interval, so the handshake is most of a probe's cost: about 0.6 ms of
OpenSSL 3.0 CPU (certificate chain and signature checks) against 0.3 ms for everything else.
Here the connection feeds an `ssl.SSLObject` directly, and the handshake step that checks the
server's certificates runs in a small thread pool: OpenSSL releases the GIL, so the second
core verifies certificates while the loop serves other probes (bench/README.md has figures).

Thread safety: while a handshake step runs in a worker thread, the connection touches neither
the SSLObject nor its BIOs; bytes that arrive meanwhile wait in `held` and are fed after.
"""

from __future__ import annotations

import contextlib
import ssl
from concurrent.futures import ThreadPoolExecutor

READ_SIZE = 64 * 1024

HANDSHAKE_THREADS = 2
"""Certificate checks in flight at once off the loop: one per core of the 2-core target."""

_executor: ThreadPoolExecutor | None = None


def handshake_executor() -> ThreadPoolExecutor:
    """Return the process-wide pool that runs handshake steps (created on first use)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(HANDSHAKE_THREADS, thread_name_prefix="tls-handshake")
    return _executor


class TlsSession:
    """One client TLS session: bytes in from the network, bytes out to it, plaintext both ways.

    `step()` advances the handshake; after it, `decrypt()` and `encrypt()` carry the data.
    Errors are `ssl.SSLError`s (certificate problems are `ssl.SSLCertVerificationError`).
    """

    def __init__(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        self.server_hostname = server_hostname
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._object = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self.established = False
        self.eof = False
        """The server closed the TLS session (close_notify)."""

    def receive(self, data: bytes) -> None:
        """Hand bytes read from the socket to OpenSSL."""
        self._incoming.write(data)

    def step(self) -> bool:
        """Advance the handshake with what was received; return whether it is complete.

        Safe to call from a worker thread while nobody else touches this session.
        """
        try:
            self._object.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.established = True
        return True

    def outgoing(self) -> bytes:
        """Return the bytes OpenSSL wants sent (handshake records, encrypted data)."""
        return self._outgoing.read() if self._outgoing.pending else b""

    def decrypt(self) -> bytes:
        """Return the plaintext the received records hold (b"" when none is complete yet)."""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._object.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.eof = True
                break
            if not chunk:
                self.eof = True
                break
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def encrypt(self, data: bytes) -> bytes:
        """Return `data` as TLS records to send."""
        self._object.write(data)
        return self.outgoing()

    def close(self) -> bytes:
        """Return a close_notify alert to send, or b"" when the session cannot say goodbye."""
        with contextlib.suppress(ssl.SSLError):
            self._object.unwrap()
        return self.outgoing()
