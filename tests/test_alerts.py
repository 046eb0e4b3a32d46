"""Notifier against real loopback receivers: webhook, a real Alertmanager, Apprise `json://`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import subprocess
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hostile_http import MIB, zero_bomb
from loopback_receivers import HOLD_S, Answer, Received, Receiver
from tools import require_tool

from monitor.alert_config import ChannelConfig
from monitor.alerting import AlertEvent, Notice, NotificationMessage, notification_id
from monitor.alerts import DeliveryResult, Notifier, retry_delay

SECRET = "s3cret-webhook-key"
SLUG = "api-example-com-weather"
WAIT_S = 60.0
"""How long a test waits (Alertmanager to start, an alert to show)."""
POLL_S = 0.1


def by_first_segment(request: Received) -> Answer:
    """Answer by the first path segment: e500, e400, e429, r302 (to /ok), slow (once released)."""
    first = request.first_segment
    status = {"e500": 500, "e400": 400, "e429": 429, "r302": 302}.get(first, 200)
    headers = {"Location": "/ok"} if status == 302 else {}
    return Answer(status, headers, hold="before" if first == "slow" else None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(by_first_segment) as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def message(event: AlertEvent = AlertEvent.FIRING, **changes: Any) -> NotificationMessage:
    at = changes.pop("at", datetime(2026, 3, 1, 12, 5, tzinfo=UTC))
    fields: dict[str, Any] = {
        "event": event,
        "notification_id": notification_id(SLUG, Notice(event, at)),
        "url": "https://api.example.com/weather",
        "slug": SLUG,
        "title": "Weather API",
        "category": "data",
        "status": "down",
        "consecutive_failures": 3,
        "last_error": "HTTP 500",
        "last_healthy": None,
        "page_url": "https://status.example.org/endpoints/api-example-com-weather.html",
        "at": at,
        "fired_at": at - timedelta(minutes=1),
    }
    fields.update(changes)
    return NotificationMessage(**fields)


def channel(url: str, type: str = "webhook", **options: Any) -> ChannelConfig:
    return ChannelConfig.model_validate({"name": "test", "type": type, "url": url, **options})


def send(target: ChannelConfig, note: NotificationMessage | None = None) -> DeliveryResult:
    async def go() -> DeliveryResult:
        async with Notifier() as notifier:
            return await notifier.send(target, note or message())

    return asyncio.run(go())


def test_webhook_is_signed_and_the_receiver_verifies_it(receiver: Receiver) -> None:
    note = message()
    result = send(channel(f"{receiver.base_url}/ok", secret=SECRET), note)
    assert result == DeliveryResult(True, False, 200, "HTTP 200")
    (request,) = receiver.received()
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-signature-256"], f"sha256={expected}")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-notification-id"] == note.notification_id
    document = json.loads(request.body)
    assert (document["event"], document["notification_id"]) == ("firing", note.notification_id)
    assert document["endpoint"]["slug"] == SLUG


def test_webhook_custom_headers_and_no_signature_without_secret(receiver: Receiver) -> None:
    headers = {"Authorization": "Bearer t0ken", "X-Team": "payments", "Content-Type": "text/x"}
    assert send(channel(f"{receiver.base_url}/ok", headers=headers)).ok
    (request,) = receiver.received()
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["x-team"] == "payments"
    assert request.headers["content-type"] == "application/json"  # ours wins: it is the body's
    assert "x-signature-256" not in request.headers


@pytest.mark.parametrize(
    ("path", "permanent", "status"),
    [("/e500", False, 500), ("/e429", False, 429), ("/e400", True, 400), ("/r302", True, 302)],
)
def test_webhook_failures_are_classified(
    receiver: Receiver, path: str, permanent: bool, status: int
) -> None:
    result = send(channel(f"{receiver.base_url}{path}/hook-t0ken"))
    assert (result.ok, result.permanent, result.status) == (False, permanent, status)
    assert "t0ken" not in result.detail
    assert [request.path for request in receiver.received()] == [f"{path}/hook-t0ken"]


def test_closed_port_is_retryable() -> None:
    result = send(channel(f"http://127.0.0.1:{free_port()}/hook"))
    assert (result.ok, result.permanent, result.status) == (False, False, None)
    assert result.detail.startswith("connection failed")


def test_slow_receiver_times_out_retryable(receiver: Receiver) -> None:
    started = time.perf_counter()
    result = send(channel(f"{receiver.base_url}/slow", timeout=timedelta(seconds=0.2)))
    # 25x the timeout (a busy machine); the default timeout (10 s) or the receiver's hold
    # (HOLD_S) would take longer.
    assert time.perf_counter() - started < 5.0
    assert (result.ok, result.permanent, result.detail) == (False, False, "timeout after 0.2 s")


# --- answers that are never read in full ---------------------------------------------------


def hostile_body(kind: str) -> Answer:
    """Return 200 with a hostile body: `bomb` (gzip) or `drip` (never ends)."""
    if kind == "bomb":  # 1 GiB of zeros once decoded, about 1 MB as sent
        # No Content-Length: the body ends when the connection closes.
        gzip = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return Answer(headers=gzip, body=zero_bomb("gzip"))
    promise = {"Content-Type": "application/json", "Content-Length": "1000"}
    return Answer(headers=promise, body=b'{"ok": ', hold="after")  # ...and the rest never comes


@pytest.fixture
def answering(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    kind: str = request.param
    with Receiver(lambda _: hostile_body(kind)) as server:
        yield server


@pytest.mark.parametrize("answering", ["bomb"], indirect=True)
@pytest.mark.parametrize("kind", ["webhook", "alertmanager"])
def test_compressed_answer_is_never_decoded(answering: Receiver, kind: str) -> None:
    tracemalloc.start()
    try:
        result = send(channel(f"{answering.base_url}/hook", kind, timeout=timedelta(seconds=30)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    accepted = answering.received()[-1].headers.get("accept-encoding")
    assert accepted == "identity"  # it was not asked for
    assert result == DeliveryResult(True, False, 200, "HTTP 200")
    assert peak < 16 * MIB  # decoding it would take 1 GiB
    assert answering.sent < 16 * MIB  # and the rest of the bomb was never fetched


@pytest.mark.parametrize("answering", ["drip"], indirect=True)
def test_answer_body_that_never_ends_still_counts_as_delivered(answering: Receiver) -> None:
    """The status decides: waiting for a body would time out, then deliver twice."""
    started = time.perf_counter()
    result = send(channel(f"{answering.base_url}/hook", timeout=timedelta(seconds=3)))
    assert result == DeliveryResult(True, False, 200, "HTTP 200")
    assert time.perf_counter() - started < HOLD_S  # not held until the body's sender gives up


def test_alertmanager_posts_to_the_v2_api(receiver: Receiver) -> None:
    assert send(channel(f"{receiver.base_url}/am/", "alertmanager")).ok
    (request,) = receiver.received()
    assert request.path == "/am/api/v2/alerts"
    alerts = json.loads(request.body)
    assert {alert["labels"]["severity"] for alert in alerts} == {"critical", "warning"}


def test_retry_delay_doubles_from_10_seconds_up_to_an_hour() -> None:
    seconds = [retry_delay(attempt).total_seconds() for attempt in range(1, 11)]
    assert seconds == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]
    assert retry_delay(0) == timedelta(seconds=10)
    assert retry_delay(1000) == timedelta(hours=1)


# --- Apprise ------------------------------------------------------------------------------


def test_apprise_json_url_reaches_the_receiver(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # Apprise uses requests, which honours proxies
    result = send(channel(f"json://127.0.0.1:{receiver.port}/apprise", "apprise"))
    assert (result.ok, result.permanent) == (True, False)
    (request,) = receiver.received()
    assert request.path == "/apprise"
    document = json.loads(request.body)
    assert document["title"] == "[FIRING] x402 endpoint down: Weather API"
    assert "URL: https://api.example.com/weather" in document["message"]
    assert "Page: https://status.example.org/endpoints/" in document["message"]


def test_apprise_failure_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    result = send(channel(f"json://127.0.0.1:{free_port()}/x", "apprise"))
    assert (result.ok, result.permanent, result.detail) == (
        False,
        False,
        "apprise reported failure",
    )


def test_invalid_apprise_url_is_permanent_and_not_echoed() -> None:
    result = send(channel("nosuchscheme://user:hunter2@example.invalid", "apprise"))
    assert (result.ok, result.permanent) == (False, True)
    assert "hunter2" not in result.detail
    assert "nosuchscheme" in result.detail


# --- a real Alertmanager -------------------------------------------------------------------


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=WAIT_S) as response:
        return json.loads(response.read())


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if condition():
                return
        time.sleep(POLL_S)
    pytest.fail(f"timed out after {WAIT_S:g} s waiting for {what}")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # empty: no clustering, no extra ports
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"alertmanager exited: {stderr[-2000:]}")
            with urllib.request.urlopen(f"{base}/-/ready", timeout=10) as response:
                return bool(response.status == 200)

        _wait_for(ready, "Alertmanager /-/ready")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()


def _ours(base: str, query: str = "") -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = _get_json(f"{base}/api/v2/alerts{query}")
    return [alert for alert in alerts if alert["labels"].get("endpoint") == SLUG]


@pytest.mark.integration
def test_real_alertmanager_shows_the_alert_active_then_resolved(alertmanager: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    target = channel(alertmanager, "alertmanager")
    fired = message(AlertEvent.FIRING, at=now, fired_at=now)
    assert send(target, fired) == DeliveryResult(True, False, 200, "HTTP 200")

    def active() -> bool:
        alerts = _ours(alertmanager, "?active=true")
        return [(a["labels"]["severity"], a["status"]["state"]) for a in alerts] == [
            ("critical", "active")
        ]

    _wait_for(active, "the firing alert to be active")
    (alert,) = _ours(alertmanager, "?active=true")
    assert alert["labels"] == {
        "alertname": "X402EndpointDown",
        "endpoint": SLUG,
        "severity": "critical",
    }
    assert alert["annotations"]["url"] == "https://api.example.com/weather"
    assert alert["generatorURL"] == fired.page_url
    assert datetime.fromisoformat(alert["startsAt"]) == now

    resolved_at = datetime.now(UTC)
    resolved = message(AlertEvent.RESOLVED, at=resolved_at, fired_at=now, status="healthy")
    assert send(target, resolved).ok
    _wait_for(lambda: _ours(alertmanager, "?active=true") == [], "the alert to be resolved")
