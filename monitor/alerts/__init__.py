"""Deliver one notification to one channel: webhook, Alertmanager or Apprise (edge: httpx, apprise).

`Notifier.send` never raises for a delivery problem: every outcome is a `DeliveryResult` that
says whether to retry. Classification (the outbox retries with `retry_delay`):
  2xx → ok; 429, 5xx, timeouts, connection and protocol errors → retryable; other 4xx and
  3xx (redirects are not followed: a moved receiver is a configuration problem) → permanent;
  an unusable URL or header value → permanent; a defect of ours → retryable, logged at ERROR.
  Apprise: an URL it cannot load → permanent; a failed or timed out notify, and a child
  process that ran out of memory or died → retryable (Apprise does not say why it failed).

Secrets stay out of results and logs: details name an HTTP status or an error class, never a
URL (webhook paths and Apprise URLs often embed tokens), a header or a response body; webhook
and Alertmanager requests never pass through code that logs their URL or headers. Apprise
logs URLs with their tokens at DEBUG: it runs in a child process that keeps it at WARNING.
A receiver's answer is never decoded here: at most `MAX_ANSWER_BYTES` of it are read, raw.
Apprise's `requests` does decode whole answers: the child's memory is bounded instead (see
`monitor.alerts.apprise_worker`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
from collections.abc import AsyncGenerator, Mapping
from datetime import timedelta
from types import TracebackType

import httpx

from monitor.alert_config import ChannelConfig
from monitor.alerting import (
    NotificationMessage,
    alertmanager_alerts,
    signature,
    text_message,
    webhook_body,
)
from monitor.alerts.apprise_worker import AppriseWorker
from monitor.alerts.delivery import RETRY_BASE, RETRY_CAP, DeliveryResult, retry_delay

__all__ = [
    "MAX_ANSWER_BYTES",
    "RETRY_BASE",
    "RETRY_CAP",
    "USER_AGENT",
    "DeliveryResult",
    "Notifier",
    "retry_delay",
]

logger = logging.getLogger(__name__)

USER_AGENT = "x402-monitor-alerts/1"
MAX_ANSWER_BYTES = 64 * 1024
"""Of a receiver's answer only the status counts; this much of its body is read, raw."""
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_HEADER_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(rb"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
"""RFC 9110 field names and values (ASCII): no line breaks, no surrounding white space."""
_UNUSABLE_URL = "unusable URL: check the channel's url"
_UNSENDABLE = (
    "cannot send these headers: check the channel's headers "
    "(ASCII, no line breaks or surrounding spaces)"
)


class Notifier:
    """Send notifications through one shared HTTP connection pool; async context manager.

    Requests go to the transport directly, not through an `httpx.AsyncClient`: the client logs
    every request URL at INFO ("HTTP Request: POST https://…/<token>"), whatever the caller
    configured, and decodes compressed answers without bound. The transport ignores the
    environment (no proxy or netrc credentials) and follows no redirects; each request is
    bounded by its channel's `timeout`. Apprise channels go through one child process,
    started on the first of them and stopped on closing. `transport` and `apprise` are for
    tests.
    """

    def __init__(
        self,
        *,
        user_agent: str = USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
        apprise: AppriseWorker | None = None,
    ) -> None:
        self._user_agent = user_agent
        self._transport = transport or httpx.AsyncHTTPTransport(trust_env=False)
        self._apprise = apprise or AppriseWorker()

    async def __aenter__(self) -> Notifier:
        """Open the connection pool."""
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection pool and stop the Apprise child process."""
        try:
            await self._transport.__aexit__(exc_type, exc, tb)
        finally:
            await self._apprise.aclose()

    async def aclose(self) -> None:
        """Close the connection pool and stop the Apprise child (for use without `async with`)."""
        try:
            await self._transport.aclose()
        finally:
            await self._apprise.aclose()

    async def send(self, channel: ChannelConfig, message: NotificationMessage) -> DeliveryResult:
        """Deliver `message` through `channel` once; never raises for a delivery problem."""
        try:
            if channel.type == "webhook":
                result = await self._webhook(channel, message)
            elif channel.type == "alertmanager":
                result = await self._alertmanager(channel, message)
            else:
                title, body = text_message(message)
                seconds = channel.timeout.total_seconds()
                result = await self._apprise.notify(channel.url, title, body, seconds)
        except Exception as exc:  # a defect of ours: one notification fails, not the outbox
            _log_defect(channel, exc)
            result = DeliveryResult(False, False, None, f"delivery failed ({type(exc).__name__})")
        if not result.ok:
            kind = "permanent" if result.permanent else "retryable"
            logger.info(
                "notification %s to channel %s (%s) failed, %s: %s",
                message.notification_id,
                channel.name,
                channel.type,
                kind,
                result.detail,
            )
        return result

    async def _webhook(
        self, channel: ChannelConfig, message: NotificationMessage
    ) -> DeliveryResult:
        body = webhook_body(message)
        ours = {"Content-Type": "application/json", "X-Notification-Id": message.notification_id}
        if channel.secret is not None:
            ours["X-Signature-256"] = signature(channel.secret, body)
        return await self._post(channel.url, body, channel.headers, ours, channel.timeout)

    async def _alertmanager(
        self, channel: ChannelConfig, message: NotificationMessage
    ) -> DeliveryResult:
        url = f"{channel.url.rstrip('/')}/api/v2/alerts"
        body = json.dumps(alertmanager_alerts(message), separators=(",", ":")).encode()
        ours = {"Content-Type": "application/json"}
        return await self._post(url, body, channel.headers, ours, channel.timeout)

    async def _post(
        self,
        url: str,
        body: bytes,
        theirs: Mapping[str, str],
        ours: Mapping[str, str],
        timeout: timedelta,
    ) -> DeliveryResult:
        """POST `body` within `timeout` overall and classify the answer by its status.

        `theirs` (the channel's headers) override the defaults; `ours` describe the body and
        override `theirs`. At most `MAX_ANSWER_BYTES` of the answer's body are read, raw:
        never decoded, only read so that a short answer leaves the connection reusable.
        """
        seconds = timeout.total_seconds()
        request = _request(url, body, theirs, ours, self._user_agent, seconds)
        if isinstance(request, DeliveryResult):
            return request
        # httpx timeouts are per phase; the deadline also stops a receiver that drips bytes.
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._transport.handle_async_request(request)
        except (TimeoutError, httpx.TimeoutException):
            return DeliveryResult(False, False, None, f"timeout after {seconds:g} s")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return DeliveryResult(False, True, None, _UNUSABLE_URL)
        except httpx.LocalProtocolError:  # h11 refuses to send it: a header value, typically
            return DeliveryResult(False, True, None, _UNSENDABLE)
        except httpx.HTTPError as exc:  # connect, DNS, TLS, protocol: may work next time
            return DeliveryResult(False, False, None, f"connection failed ({type(exc).__name__})")
        try:
            async with asyncio.timeout_at(deadline):
                await _discard_answer(response)
        except (TimeoutError, httpx.HTTPError):
            pass  # the status has answered; an unfinished connection is closed, not reused
        finally:
            await response.aclose()
        return _classify(response.status_code)


def _request(
    url: str,
    body: bytes,
    theirs: Mapping[str, str],
    ours: Mapping[str, str],
    user_agent: str,
    seconds: float,
) -> httpx.Request | DeliveryResult:
    """Return the POST request, or the permanent failure when the channel cannot make one."""
    try:
        headers = httpx.Headers({"User-Agent": user_agent, "Accept-Encoding": "identity"})
        headers.update(theirs)
        headers.update(ours)  # case-insensitive: replaces a channel's `content-type`
    except (UnicodeError, ValueError, TypeError):  # not ASCII: HTTP cannot carry it
        return DeliveryResult(False, True, None, _UNSENDABLE)
    # Checked here, before h11 refuses them with an error that quotes the value (httpcore
    # logs that error at DEBUG).
    for name, value in headers.raw:
        if not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(value):
            return DeliveryResult(False, True, None, _UNSENDABLE)
    try:
        target = httpx.URL(url)
        if not _resolvable(target.raw_host):
            return DeliveryResult(False, True, None, _UNUSABLE_URL)
        timeouts = httpx.Timeout(seconds).as_dict()
        return httpx.Request(
            "POST", target, content=body, headers=headers, extensions={"timeout": timeouts}
        )
    except (httpx.InvalidURL, UnicodeError, ValueError):  # idna's errors are UnicodeErrors
        return DeliveryResult(False, True, None, _UNUSABLE_URL)


def _resolvable(raw_host: bytes) -> bool:
    """Return whether a host could ever resolve (no empty or over-long label, no odd byte)."""
    host = raw_host.decode("ascii", "replace")
    if ":" in host:
        return True  # an IPv6 literal, checked by httpx
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


async def _discard_answer(response: httpx.Response) -> None:
    """Read at most `MAX_ANSWER_BYTES` of the answer's body as sent (a gzip bomb stays small)."""
    chunks = response.aiter_raw()
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received >= MAX_ANSWER_BYTES:
                break
    finally:
        if isinstance(chunks, AsyncGenerator):  # it is one: close it now, not when collected
            await chunks.aclose()


def _log_defect(channel: ChannelConfig, exc: Exception) -> None:
    """Log a defect with its traceback but not its message (it may quote a URL or header)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error(
        "delivery through channel %s (%s) raised %s, a defect; traceback (message withheld, "
        "it may carry a secret):\n%s",
        channel.name,
        channel.type,
        type(exc).__name__,
        frames.rstrip(),
    )


def _classify(status: int) -> DeliveryResult:
    if 200 <= status < 300:
        return DeliveryResult(True, False, status, f"HTTP {status}")
    if status == 429 or status >= 500:
        return DeliveryResult(False, False, status, f"HTTP {status}")
    if 300 <= status < 400:
        return DeliveryResult(False, True, status, f"HTTP {status} (redirects are not followed)")
    return DeliveryResult(False, True, status, f"HTTP {status}")
