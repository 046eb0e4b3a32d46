"""Identify endpoints by URL: http(s) check, normalisation and stable slugs.

Core module, stdlib only. Two listings of the same resource must map to one endpoint, so every
URL is normalised before it is compared or stored.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")
_MAX_URL_LENGTH = 2048


def is_http_url(value: object) -> bool:
    """Return whether `value` is an absolute http(s) URL with a host and no credentials."""
    if not isinstance(value, str) or len(value) > _MAX_URL_LENGTH or value != value.strip():
        return False
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme.lower() in _DEFAULT_PORTS
        and bool(parts.hostname)
        and parts.username is None
        and parts.password is None
        and (port is None or 0 < port < 65536)
        and not any(char.isspace() or ord(char) < 32 for char in value)
    )


def normalise_url(url: str) -> str:
    """Return the canonical form of an http(s) URL.

    Lower-cases scheme and host, drops the default port, the fragment and a lone trailing `?`,
    and turns an empty path into `/`. Path and query are kept as given (servers may treat
    case and order as meaningful). The caller checks `is_http_url` first.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit(SplitResult(scheme, netloc, parts.path or "/", parts.query, ""))


def host_of(url: str) -> str:
    """Return the lower-cased host name of a URL (empty when there is none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def slug_for(url: str, method: str | None) -> str:
    """Return a stable, unique, URL-safe slug for an endpoint (normalised URL and method).

    Readable part from host and path, then 8 hex digits of a hash of method and URL, so two
    endpoints on one host that differ by path, query or method never share a slug.
    """
    parts = urlsplit(url)
    readable = _SLUG_UNSAFE.sub("-", f"{parts.hostname or ''}{parts.path}".lower()).strip("-")
    digest = hashlib.sha256(f"{(method or '').upper()} {url}".encode()).hexdigest()[:8]
    return f"{readable[:80].rstrip('-')}-{digest}" if readable else digest
