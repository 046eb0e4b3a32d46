"""Mask known secret values in every log record the process writes (defence in depth).

The first line of defence is that secrets are never handed to code that logs them (see
`monitor.alerts` and `configure_logging`). This filter is the second: installed on the root
logger's handlers, it replaces every known secret value, raw or URL-encoded, in a record's
message, traceback and stack with `[redacted]`, whoever logged it. Known = what `protect`
was given: the channels' URLs, header values and HMAC keys and the database URL's password
(`config_secrets`), and the values of the config's `${VAR}` references.

Values shorter than `MIN_SECRET_CHARS` are not masked: masking `yes` or `10s` everywhere would
mangle every log line, and such a value protects nothing. Parts of a URL (path segments, an
Apprise URL's host) are masked from `MIN_PIECE_CHARS` on, where they look like tokens.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from monitor.alert_config import ChannelConfig
from monitor.config import Config

MASK = "[redacted]"
MIN_SECRET_CHARS = 6
MIN_PIECE_CHARS = 8
_TOKEN_CHARS = 16
"""A webhook path segment this long is masked even without a digit (a token, not a word)."""
_HOST_NAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")


class SecretRedaction(logging.Filter):
    """A handler filter that masks every protected value; it never drops a record."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def protect(self, values: Iterable[str]) -> None:
        """Mask these values (and their URL-encoded forms) from now on."""
        forms = {
            form
            for value in values
            if len(value) >= MIN_SECRET_CHARS
            for form in (value, quote(value, safe=""), quote(value), quote_plus(value))
        }
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            # Longest first, so a whole URL is masked before a token inside it.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def redact(self, text: str) -> str:
        """Return `text` with every protected value replaced by `[redacted]`."""
        pattern = self._pattern  # one read: `protect` may swap it from another thread
        return text if pattern is None else pattern.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record's message, traceback and stack in place; keep the record."""
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a caller's bad format string: still mask what it carries
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redaction(logger: logging.Logger | None = None) -> list[SecretRedaction]:
    """Put one `SecretRedaction` on each handler of `logger` (the root); return them all."""
    installed = []
    for handler in (logger or logging.getLogger()).handlers:
        present = [f for f in handler.filters if isinstance(f, SecretRedaction)]
        if present:
            installed.append(present[0])
        else:
            redaction = SecretRedaction()
            handler.addFilter(redaction)
            installed.append(redaction)
    return installed


def protect(values: Iterable[str], logger: logging.Logger | None = None) -> None:
    """Mask `values` in every `SecretRedaction` on the handlers of `logger` (the root)."""
    values = list(values)
    for handler in (logger or logging.getLogger()).handlers:
        for redaction in handler.filters:
            if isinstance(redaction, SecretRedaction):
                redaction.protect(values)


def config_secrets(config: Config) -> list[str]:
    """Return the secrets a loaded config holds: its channels', the database's and the egress
    proxy's credentials."""
    values = [value for channel in config.alerts.channels for value in channel_secrets(channel)]
    for url in (config.database, config.probe.proxy or ""):
        if "://" not in url:
            continue
        try:
            password = urlsplit(url).password  # a user name is no secret (and may be a word)
        except ValueError:
            password = None
        if password:
            values += [password, unquote(password)]
    return values


def channel_secrets(channel: ChannelConfig) -> list[str]:
    """Return every part of a channel that may be a secret.

    Webhook and Alertmanager: the URL after its host (path and query), each query value and
    token-like path segment, the HMAC key, each header value and its credential (the part
    after `Bearer `). Apprise: everything after `scheme://`, since Apprise URLs put tokens in
    the host, user, password, path and query alike; host names and addresses stay visible.
    """
    values = [*channel.headers.values(), *(v.split()[-1] for v in channel.headers.values() if v)]
    if channel.secret is not None:
        values.append(channel.secret)
    if channel.type == "apprise":
        values += _apprise_secrets(channel.url)
    else:
        values += _http_secrets(channel.url)
    return [value for value in values if value]


def _http_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    after_host = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    values = [after_host, parts.path.strip("/"), parts.query]
    values += [value for _, value in parse_qsl(parts.query)]
    values += [
        piece
        for piece in map(unquote, parts.path.split("/"))
        if len(piece) >= _TOKEN_CHARS
        or (len(piece) >= MIN_PIECE_CHARS and any(c.isdigit() for c in piece))
    ]
    return [value for value in values if value]


def _apprise_secrets(url: str) -> list[str]:
    rest = url.partition("://")[2]
    values = [rest]
    where, _, query = rest.partition("?")
    values += [value for _, value in parse_qsl(query)]
    netloc, _, path = where.partition("/")
    userinfo, _, host = netloc.rpartition("@")
    if userinfo:
        user, _, password = userinfo.partition(":")
        values += [unquote(user), unquote(password), userinfo]
        values.append(base64.b64encode(unquote(userinfo).encode()).decode())  # Basic auth
    pieces = [*host.split(":"), *path.split("/")]
    values += [
        piece
        for piece in map(unquote, pieces)
        if len(piece) >= MIN_PIECE_CHARS and not _is_host(piece)
    ]
    return values


def _is_host(piece: str) -> bool:
    try:
        ipaddress.ip_address(piece)
    except ValueError:
        return bool(_HOST_NAME.match(piece))
    return True
