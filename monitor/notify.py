"""Deliver alert notifications from the outbox through the configured channels.

Shell module: wires the store (the outbox) to the notifier edge. Rows are only marked sent
after a channel accepted them, so a crash at any point leaves them pending, and a restart
retries them at once; a permanent refusal (4xx other than 429) is recorded, not retried.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from monitor.alert_config import ChannelConfig
from monitor.alerting import ALERTMANAGER_REPOST, AlertEvent, AlertState, NotificationMessage
from monitor.alerts import DeliveryResult, Notifier, retry_delay
from monitor.config import Config
from monitor.store import AlertContext, Outgoing, Store

log = logging.getLogger(__name__)

DELIVERY_BATCH = 100
PARALLEL_SENDS = 8
__all__ = ["ALERTMANAGER_REPOST", "alert_context", "deliver_due", "repost_firing", "send_test"]


def alert_context(config: Config) -> AlertContext | None:
    """Return what the store needs to run alerting, or None when no channel is configured."""
    if not config.alerts.channels:
        return None
    overrides = {endpoint.url: endpoint.alerts for endpoint in config.endpoints}
    return AlertContext(config.alerts, overrides, config.site.base_url)


async def deliver_due(
    store: Store,
    notifier: Notifier,
    config: Config,
    clock: Callable[[], datetime],
    tally: Counter[tuple[str, str]],
) -> int:
    """Send every due outbox row once; record each attempt; return how many were attempted."""
    outgoing = await asyncio.to_thread(store.due_notifications, clock(), DELIVERY_BATCH)
    channels = {channel.name: channel for channel in config.alerts.channels}
    limit = asyncio.Semaphore(PARALLEL_SENDS)

    async def one(item: Outgoing) -> None:
        channel = channels.get(item.channel)
        async with limit:
            if channel is None:
                result = DeliveryResult(False, True, None, "channel no longer configured")
            else:
                result = await notifier.send(channel, item.message)
        state = await asyncio.to_thread(
            store.record_delivery,
            item.row_id,
            ok=result.ok,
            permanent=result.permanent,
            detail=result.detail,
            now=clock(),
            retry_in=retry_delay(item.attempts + 1),
            max_attempts=config.alerts.retry_max_attempts,
        )
        outcome = {"sent": "sent", "failed": "failed"}.get(state, "retry")
        tally[(item.channel, outcome)] += 1
        if outcome == "sent":
            log.info("notified %s via %s: %s", item.message.url, item.channel, item.message.event)
        elif outcome == "failed":
            log.warning(
                "notification %s via %s failed for good: %s",
                item.message.notification_id,
                item.channel,
                result.detail,
            )

    await asyncio.gather(*(one(item) for item in outgoing))
    return len(outgoing)


async def repost_firing(
    store: Store, notifier: Notifier, config: Config, clock: Callable[[], datetime]
) -> int:
    """Re-post firing alerts to Alertmanager channels (it resolves alerts it stops hearing of).

    Only alerts whose receivers were told they fire (or flap) are re-posted, as what they were
    told; returns how many posts.
    """
    channels = [channel for channel in config.alerts.channels if channel.type == "alertmanager"]
    if not channels:
        return 0
    posts = 0
    now = clock()
    for endpoint in await asyncio.to_thread(store.firing):
        state = AlertState.from_json(endpoint.alert if isinstance(endpoint.alert, dict) else {})
        if state.last_notice not in (AlertEvent.FIRING, AlertEvent.REMINDER, AlertEvent.FLAPPING):
            continue  # receivers were never told (muted) or were told it resolved
        message = NotificationMessage(
            event=AlertEvent.FLAPPING if state.flapping else AlertEvent.FIRING,
            notification_id=f"repost-{endpoint.slug}",
            url=endpoint.spec.url,
            slug=endpoint.slug,
            title=endpoint.spec.title,
            category=endpoint.spec.category,
            status=endpoint.state.status.value,
            consecutive_failures=endpoint.state.consecutive_failures,
            last_error=endpoint.last_error,
            last_healthy=endpoint.state.last_healthy_at,
            page_url=f"{config.site.base_url}endpoints/{endpoint.slug}.html",
            at=now,
            fired_at=state.fired_at,
        )
        for channel in channels:
            if channel.wants(endpoint.spec.url, endpoint.spec.category):
                await notifier.send(channel, message)
                posts += 1
    return posts


async def send_test(
    notifier: Notifier, channels: tuple[ChannelConfig, ...], now: datetime, site_base_url: str
) -> list[tuple[ChannelConfig, DeliveryResult]]:
    """Send one `test` notification through every channel; return what each answered."""
    message = NotificationMessage(
        event=AlertEvent.TEST,
        notification_id=f"test-{uuid.uuid4()}",
        url=site_base_url,
        slug="test",
        title="x402 monitor test notification",
        category=None,
        status="test",
        consecutive_failures=0,
        last_error=None,
        last_healthy=None,
        page_url=site_base_url,
        at=now,
        fired_at=now,
    )
    results = await asyncio.gather(*(notifier.send(channel, message) for channel in channels))
    return list(zip(channels, results, strict=True))
