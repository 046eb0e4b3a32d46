"""Alerting end to end: an endpoint that breaks and recovers, a real loopback webhook receiver,
retries, permanent refusals, and a monitor killed between state change and delivery."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from loopback_receivers import Answer, Received, Receiver

from monitor.alerts import Notifier
from monitor.config import Config, parse_config
from monitor.probe import Prober
from monitor.service import MonitorService
from monitor.store import Store

REPO = Path(__file__).resolve().parent.parent
HEADER = (
    (REPO / "tests/fixtures/x402/02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64").read_text().strip()
)
SECRET = "s3cret-webhook-key"


class Switch(Receiver):
    """A seller that answers a valid 402 or an HTTP 500, as the test decides."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.broken = False

    def _answer(self, request: Received) -> Answer:
        if self.broken:
            return Answer(500)
        return Answer(402, {"PAYMENT-REQUIRED": HEADER}, b"{}")


class Webhook(Receiver):
    """A webhook receiver that records requests and answers with the configured statuses."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.answers: list[int] = []  # consumed one per request; then `default`
        self.default = 200
        self.accepted: list[dict[str, Any]] = []

    def _answer(self, request: Received) -> Answer:
        status = self.answers.pop(0) if self.answers else self.default
        if 200 <= status < 300:
            self.accepted.append(json.loads(request.body))
        return Answer(status)


@pytest.fixture
def seller() -> Iterator[tuple[Switch, str]]:
    with Switch() as server:
        yield server, server.base_url + "/pay"


@pytest.fixture
def receiver() -> Iterator[tuple[Webhook, str]]:
    with Webhook() as server:
        yield server, server.base_url + "/hook"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _config(seller_url: str, hook_url: str, **alerts: object) -> Config:
    return parse_config(
        {
            "probe": {"interval": "1m", "timeout": "2s", "allow_private_addresses": True},
            "site": {"base_url": "https://x402.example.org/"},
            "alerts": {
                "channels": [{"name": "ops", "type": "webhook", "url": hook_url, "secret": SECRET}],
                **alerts,
            },
            "endpoints": [{"url": seller_url, "method": "GET", "title": "Pay"}],
        },
        {},
    )


async def _cycle(service: MonitorService, clock: FakeClock, minutes: int = 1) -> None:
    """Let one interval pass: dispatch, wait for the probes, deliver."""
    clock.now += timedelta(minutes=minutes)
    await service._dispatch()
    while service.dispatcher.batches or service.dispatcher.refills:
        await asyncio.gather(
            *service.dispatcher.batches, *service.dispatcher.refills, return_exceptions=True
        )
    await service._deliver()


def _verify(headers: dict[str, str], body: bytes) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-signature-256"] == expected
    assert headers["x-notification-id"] == json.loads(body)["notification_id"]


def test_breaking_and_recovering_endpoint_fires_then_resolves(
    tmp_path: Path,
    seller: tuple[Switch, str],
    receiver: tuple[Webhook, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    switch, seller_url = seller
    hook, hook_url = receiver
    config = _config(seller_url, hook_url)
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    store.sync_config_endpoints([e.to_spec() for e in config.endpoints], FakeClock()())
    clock = FakeClock()

    async def scenario() -> None:
        async with Prober(config.probe, clock=clock) as prober, Notifier() as notifier:
            service = MonitorService(config, store, prober, clock=clock, notifier=notifier)
            store.resume(clock(), config.probe.interval)
            await _cycle(service, clock)
            assert hook.received() == []  # healthy: nothing to say
            switch.broken = True
            for _ in range(2):
                await _cycle(service, clock)
            assert hook.received() == []  # two failures: below the threshold of 3
            await _cycle(service, clock)
            assert [b["event"] for b in hook.accepted] == ["firing"]
            await _cycle(service, clock)  # still failing: no duplicate
            switch.broken = False
            await _cycle(service, clock)  # one pass: not yet resolved
            assert [b["event"] for b in hook.accepted] == ["firing"]
            await _cycle(service, clock)
            assert [b["event"] for b in hook.accepted] == ["firing", "resolved"]

    asyncio.run(scenario())
    for request in hook.received():
        _verify(request.headers, request.body)
    firing, resolved = hook.accepted
    assert firing["endpoint"]["url"] == seller_url
    assert firing["endpoint"]["consecutive_failures"] == 3
    assert firing["endpoint"]["last_error"] == "HTTP 500"
    assert firing["endpoint"]["page"].startswith("https://x402.example.org/endpoints/")
    assert firing["notification_id"] != resolved["notification_id"]
    assert store.notification_states() == {"sent": 2}
    assert "notified" in caplog.text  # deliveries are logged...
    assert SECRET not in caplog.text  # ...but the webhook secret never is


def test_reminder_while_firing(
    tmp_path: Path, seller: tuple[Switch, str], receiver: tuple[Webhook, str]
) -> None:
    switch, seller_url = seller
    hook, hook_url = receiver
    config = _config(seller_url, hook_url, repeat_interval="10m")
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    store.sync_config_endpoints([e.to_spec() for e in config.endpoints], FakeClock()())
    clock = FakeClock()
    switch.broken = True

    async def scenario() -> None:
        async with Prober(config.probe, clock=clock) as prober, Notifier() as notifier:
            service = MonitorService(config, store, prober, clock=clock, notifier=notifier)
            store.resume(clock(), config.probe.interval)
            for _ in range(3):
                await _cycle(service, clock)
            clock.now += timedelta(minutes=11)
            await service._alert_tick()
            await service._deliver()

    asyncio.run(scenario())
    assert [b["event"] for b in hook.accepted] == ["firing", "reminder"]


@pytest.mark.parametrize(
    ("answers", "states", "attempts"), [([500], {"sent": 1}, 2), ([400], {"failed": 1}, 1)]
)
def test_retry_after_500_but_not_after_400(
    tmp_path: Path,
    seller: tuple[Switch, str],
    receiver: tuple[Webhook, str],
    answers: list[int],
    states: dict[str, int],
    attempts: int,
) -> None:
    switch, seller_url = seller
    hook, hook_url = receiver
    hook.answers = list(answers)
    config = _config(seller_url, hook_url)
    store = Store.open(f"sqlite:///{tmp_path}/monitor.db")
    store.sync_config_endpoints([e.to_spec() for e in config.endpoints], FakeClock()())
    clock = FakeClock()
    switch.broken = True

    async def scenario() -> None:
        async with Prober(config.probe, clock=clock) as prober, Notifier() as notifier:
            service = MonitorService(config, store, prober, clock=clock, notifier=notifier)
            store.resume(clock(), config.probe.interval)
            for _ in range(3):
                await _cycle(service, clock)  # the third fires; its delivery gets `answers`
            for _ in range(3):  # retries are due after 10 s, 20 s, ...
                clock.now += timedelta(seconds=30)
                await service._deliver()

    asyncio.run(scenario())
    assert len(hook.received()) == attempts
    assert store.notification_states() == states
    ids = {json.loads(request.body)["notification_id"] for request in hook.received()}
    assert len(ids) == 1  # a retry is the same notification


@pytest.mark.integration
def test_killed_between_state_change_and_delivery_delivers_once_after_restart(
    tmp_path: Path, seller: tuple[Switch, str], receiver: tuple[Webhook, str]
) -> None:
    switch, seller_url = seller
    hook, hook_url = receiver
    hook.default = 503  # committed to the outbox, but not deliverable yet
    switch.broken = True
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "database": "data/monitor.db",
                "server": {"listen": "127.0.0.1:0"},
                "site": {"output_dir": "site"},
                "probe": {"interval": "1s", "timeout": "10s", "allow_private_addresses": True},
                "alerts": {"channels": [{"name": "ops", "type": "webhook", "url": hook_url}]},
                "endpoints": [{"url": seller_url, "method": "GET"}],
            }
        )
    )

    def start(name: str) -> subprocess.Popen[str]:
        with (tmp_path / f"{name}.log").open("w") as log:  # the child keeps its own copy
            return subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config_path)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )

    def wait_for(name: str, process: subprocess.Popen[str], condition: Any, what: str) -> None:
        # Generous: a start-up and a first round on a busy machine. A monitor that exited
        # fails the test at once, with its log.
        deadline = time.monotonic() + 120
        while not condition():
            code = process.poll()
            if code is not None:
                log = (tmp_path / f"{name}.log").read_text()
                raise AssertionError(f"the {name} monitor exited ({code}) before {what}:\n{log}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def sent() -> int:
        with closing(sqlite3.connect(tmp_path / "data" / "monitor.db", timeout=30)) as raw:
            query = "SELECT COUNT(*) FROM notifications WHERE state = 'sent'"
            return int(raw.execute(query).fetchone()[0])

    first = start("first")
    try:
        wait_for("first", first, lambda: hook.received(), "a first (refused) delivery attempt")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert hook.accepted == []
    hook.default = 200
    second = start("second")
    try:
        wait_for("second", second, lambda: hook.accepted, "the delivery after restart")
        # Recorded as sent before stopping: a duplicate would come from a notification that
        # is still pending, not from one stopped before it could record its delivery.
        wait_for("second", second, lambda: sent() >= 1, "the delivery recorded as sent")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert [b["event"] for b in hook.accepted] == ["firing"]
    ids = {json.loads(request.body)["notification_id"] for request in hook.received()}
    assert ids == {hook.accepted[0]["notification_id"]}
    with sqlite3.connect(tmp_path / "data" / "monitor.db") as raw:
        assert raw.execute(
            "SELECT state, COUNT(*) FROM notifications GROUP BY state"
        ).fetchall() == [("sent", 1)]
