"""Name what went wrong in an exchange: exception -> (ProbeErrorKind, message, timeout).

Part of the probe edge. The messages are what the "Recent Health Checks" table shows
("connection refused", "timeout after 10s", "TLS error: ..."); programming errors re-raise.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable

import httpx

from monitor.config import ProbeConfig
from monitor.durations import format_duration
from monitor.models import ProbeErrorKind
from monitor.probe.http1 import AddressRefusedError


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """Yield `exc` and its explicit or implicit causes (bounded against cycles)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify(
    exc: Exception, config: ProbeConfig, url: httpx.URL | None
) -> tuple[ProbeErrorKind, str, float | None]:
    """Map an exception from an exchange to (kind, message, timeout seconds); re-raise bugs.

    `url` is the last URL requested (the failing hop), used to name the host in DNS errors.
    """
    chain = list(_causes(exc))
    refused = next((e for e in chain if isinstance(e, AddressRefusedError)), None)
    if refused is not None:
        return ProbeErrorKind.BLOCKED, f"blocked: {refused.reason}", None
    if isinstance(exc, httpx.TooManyRedirects):
        return (
            ProbeErrorKind.TOO_MANY_REDIRECTS,
            f"more than {config.max_redirects} redirects",
            None,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        connect = config.connect_timeout
        message = f"connect timeout after {format_duration(connect)}"
        return ProbeErrorKind.TIMEOUT, message, connect.total_seconds()
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        total = config.timeout
        return (
            ProbeErrorKind.TIMEOUT,
            f"timeout after {format_duration(total)}",
            total.total_seconds(),
        )
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ProbeErrorKind.PROTOCOL, f"unusable URL: {exc}", None
    if isinstance(exc, httpx.RemoteProtocolError | httpx.DecodingError):
        return ProbeErrorKind.PROTOCOL, f"protocol error: {exc}", None
    if isinstance(exc, httpx.TransportError):
        if any(isinstance(e, socket.gaierror) for e in chain):
            host = url.host if url is not None else "host"
            return ProbeErrorKind.DNS, f"DNS lookup failed for {host}", None
        tls = next((e for e in chain if isinstance(e, ssl.SSLError | ssl.CertificateError)), None)
        if tls is not None:
            # verify_message says what is wrong with a certificate ("Hostname mismatch, ...").
            detail = getattr(tls, "verify_message", None) or getattr(tls, "reason", None)
            detail = detail or str(tls)
            return ProbeErrorKind.TLS, f"TLS error: {detail}", None
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return ProbeErrorKind.CONNECT, "connection refused", None
        if any(isinstance(e, ConnectionResetError) for e in chain):
            return ProbeErrorKind.CONNECT, "connection reset", None
        if isinstance(exc, httpx.ConnectError):
            return ProbeErrorKind.CONNECT, f"connect failed: {exc}", None
        # Read/write errors after connecting: the peer dropped the connection mid-exchange.
        return ProbeErrorKind.CONNECT, f"connection lost: {type(exc).__name__}", None
    raise exc
