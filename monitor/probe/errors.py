"""Name what went wrong in an exchange: exception -> (ProbeErrorKind, message, timeout).

Part of the probe edge. The messages are what the "Recent Health Checks" table shows
("connection refused", "timeout after 10s", "TLS error: ..."): one line, cleaned and bounded,
since exception texts can quote what a server sent. Any exception that is not a network or
HTTP problem is a defect of the monitor: `ProbeErrorKind.MONITOR`, never a lost round.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable

import httpx

from monitor.config import ProbeConfig
from monitor.durations import format_duration
from monitor.models import MAX_ERROR_CHARS, ProbeErrorKind
from monitor.probe.connect import AddressRefusedError
from monitor.untrusted import clean_line

MAX_MESSAGE = MAX_ERROR_CHARS


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
    """Map an exception from an exchange to (kind, message, timeout seconds).

    `url` is the last URL requested (the failing hop), used to name the host in DNS errors.
    An exception that names no network or HTTP problem is (MONITOR, "monitor error: ...").
    """
    kind, message, timeout = _classify(exc, config, url)
    return kind, clean_line(message, MAX_MESSAGE), timeout


def _classify(
    exc: Exception, config: ProbeConfig, url: httpx.URL | None
) -> tuple[ProbeErrorKind, str, float | None]:
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
        stage = str(exc).split(" ", 2)[:2]
        what = {"DNS lookup": "DNS lookup", "TLS handshake": "TLS handshake"}.get(
            " ".join(stage), "connect"
        )
        message = f"{what} timeout after {format_duration(connect)}"
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
    if isinstance(exc, httpx.ProxyError):
        return ProbeErrorKind.PROXY, f"egress proxy: {exc}", None
    if isinstance(exc, httpx.TransportError):
        if any(isinstance(e, socket.gaierror) for e in chain):
            host = url.raw_host.decode("ascii", "replace") if url is not None else "host"
            invalid = next((e for e in chain if isinstance(e, UnicodeError)), None)
            if invalid is not None:
                return ProbeErrorKind.DNS, f"invalid host name {host}: {invalid}", None
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
    if isinstance(exc, UnicodeError):  # IDNA refuses the host (`xn--a.com`) while URLs are built
        host = url.raw_host.decode("ascii", "replace") if url is not None else "in the URL"
        return ProbeErrorKind.DNS, f"invalid host name {host}: {exc}", None
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ProbeErrorKind.TLS, f"TLS error: {exc}", None
    if isinstance(exc, OSError):  # a socket error that escaped httpx's wrapping
        return ProbeErrorKind.CONNECT, f"network error: {exc}", None
    return ProbeErrorKind.MONITOR, f"monitor error: {type(exc).__name__}: {exc}", None
