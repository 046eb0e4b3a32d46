"""Deliver one notification to one channel: webhook, Alertmanager or Apprise (edge: httpx, apprise).

`Notifier.send` never raises for a delivery problem: every outcome is a `DeliveryResult` that
says whether to retry. Classification (the outbox retries with `retry_delay`):
  2xx → ok; 429, 5xx, timeouts, connection and protocol errors → retryable; other 4xx and
  3xx (redirects are not followed: a moved receiver is a configuration problem) → permanent;
  an unusable URL → permanent. Apprise: an URL it cannot load → permanent; a failed or timed
  out notify → retryable (Apprise does not say why).

Secrets stay out of results and logs: details name an HTTP status or an error class, never a
URL (webhook paths and Apprise URLs often embed tokens), a header or a response body.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

import apprise
import httpx

from monitor.alert_config import ChannelConfig
from monitor.alerting import (
    NotificationMessage,
    alertmanager_alerts,
    signature,
    text_message,
    webhook_body,
)

logger = logging.getLogger(__name__)

USER_AGENT = "x402-monitor-alerts/1"
RETRY_BASE = timedelta(seconds=10)
RETRY_CAP = timedelta(hours=1)
_APPRISE_GRACE_S = 5.0
"""Extra wait for Apprise's worker thread beyond its own timeout before giving up on it."""


@dataclass(frozen=True)
class DeliveryResult:
    """The answer of one delivery attempt.

    `ok` = delivered. Otherwise `permanent` says retrying cannot help (record and stop).
    `status` is the HTTP status when one was received; `detail` is short and secret-free.
    """

    ok: bool
    permanent: bool
    status: int | None
    detail: str


def retry_delay(attempt: int) -> timedelta:
    """Return the wait after failed attempt number `attempt` (1-based): 10 s × 2^(n-1), ≤ 1 h."""
    exponent = min(max(attempt, 1) - 1, 20)  # 2^20 × 10 s is far past the cap already
    return min(RETRY_BASE * (1 << exponent), RETRY_CAP)


class Notifier:
    """Send notifications through one shared `httpx.AsyncClient`; async context manager.

    The client ignores the environment (no proxy or netrc credentials) and follows no
    redirects; each request is bounded by its channel's `timeout`. `transport` is for tests.
    """

    def __init__(
        self, *, user_agent: str = USER_AGENT, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": user_agent},
        )

    async def __aenter__(self) -> Notifier:
        """Open the shared client."""
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the shared client and its connections."""
        await self._client.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the shared client (for use without `async with`)."""
        await self._client.aclose()

    async def send(self, channel: ChannelConfig, message: NotificationMessage) -> DeliveryResult:
        """Deliver `message` through `channel` once; never raises for a delivery problem."""
        if channel.type == "webhook":
            result = await self._webhook(channel, message)
        elif channel.type == "alertmanager":
            result = await self._alertmanager(channel, message)
        else:
            result = await _apprise(channel, message)
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
        # Channel headers first: ours describe the body and must not be overridden.
        headers = {
            **channel.headers,
            "Content-Type": "application/json",
            "X-Notification-Id": message.notification_id,
        }
        if channel.secret is not None:
            headers["X-Signature-256"] = signature(channel.secret, body)
        return await self._post(channel.url, body, headers, channel.timeout)

    async def _alertmanager(
        self, channel: ChannelConfig, message: NotificationMessage
    ) -> DeliveryResult:
        url = f"{channel.url.rstrip('/')}/api/v2/alerts"
        body = json.dumps(alertmanager_alerts(message), separators=(",", ":")).encode()
        headers = {**channel.headers, "Content-Type": "application/json"}
        return await self._post(url, body, headers, channel.timeout)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: timedelta
    ) -> DeliveryResult:
        """POST `body` within `timeout` overall and classify the answer."""
        seconds = timeout.total_seconds()
        try:
            # httpx timeouts are per phase; the outer bound stops a receiver that drips bytes.
            async with asyncio.timeout(seconds):
                response = await self._client.post(
                    url, content=body, headers=headers, timeout=seconds
                )
        except (TimeoutError, httpx.TimeoutException):
            return DeliveryResult(False, False, None, f"timeout after {seconds:g} s")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return DeliveryResult(False, True, None, "unusable URL: check the channel's url")
        except httpx.HTTPError as exc:  # connect, DNS, TLS, protocol: may work next time
            return DeliveryResult(False, False, None, f"connection failed ({type(exc).__name__})")
        return _classify(response.status_code)


def _classify(status: int) -> DeliveryResult:
    if 200 <= status < 300:
        return DeliveryResult(True, False, status, f"HTTP {status}")
    if status == 429 or status >= 500:
        return DeliveryResult(False, False, status, f"HTTP {status}")
    if 300 <= status < 400:
        return DeliveryResult(False, True, status, f"HTTP {status} (redirects are not followed)")
    return DeliveryResult(False, True, status, f"HTTP {status}")


async def _apprise(channel: ChannelConfig, message: NotificationMessage) -> DeliveryResult:
    """Notify through Apprise in a worker thread (it is blocking), bounded by the timeout."""
    title, body = text_message(message)
    seconds = channel.timeout.total_seconds()
    try:
        loaded, delivered = await asyncio.wait_for(
            asyncio.to_thread(_apprise_notify, channel.url, title, body, seconds),
            timeout=seconds + _APPRISE_GRACE_S,
        )
    except TimeoutError:
        # The thread cannot be cancelled; Apprise's own timeout ends it soon after.
        return DeliveryResult(False, False, None, f"apprise timed out after {seconds:g} s")
    except Exception as exc:  # a plugin bug must not stop the outbox; the type says enough
        return DeliveryResult(False, False, None, f"apprise raised {type(exc).__name__}")
    if not loaded:
        scheme = channel.url.split("://", 1)[0] if "://" in channel.url else "?"
        detail = f"apprise cannot use this URL (scheme {scheme[:20]!r}): check the channel's url"
        return DeliveryResult(False, True, None, detail)
    if not delivered:
        return DeliveryResult(False, False, None, "apprise reported failure")
    return DeliveryResult(True, False, None, "delivered by apprise")


def _apprise_notify(url: str, title: str, body: str, timeout: float) -> tuple[bool, bool]:
    """Return (URL loaded, notification delivered); runs in a worker thread."""
    instance = apprise.Apprise()
    if not instance.add(url):
        return False, False
    return True, bool(instance.notify(body=body, title=title, timeout=timeout))
