"""Secrets of alert channels never reach logs, results, the outbox, metrics or pages.

Every channel type carries distinct secret strings: a token in the URL path and in its query,
header values, the HMAC key, Apprise user, password, header and query values. Deliveries go
to a real loopback receiver (which proves the secrets were really sent) and end in every way a
delivery can end; everything every logger writes is captured at the lowest level there is
(Apprise's TRACE, httpcore's DEBUG, urllib3's DEBUG) and searched for each secret. Apprise
runs in a child process (`monitor.alerts.apprise_worker`): what it logs reaches the parent's
log only as the warnings the child hands back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from log_capture import Capture, every_record
from loopback_receivers import Answer, Received, Receiver

from monitor.alert_config import ChannelConfig
from monitor.alerts import DeliveryResult, Notifier
from monitor.cli import configure_logging
from monitor.cli.redaction import SecretRedaction, channel_secrets, config_secrets, protect
from monitor.config import parse_config
from monitor.notify import send_test

REPO = Path(__file__).resolve().parent.parent
PATH_TOKEN = "pathtoken8c1d2e"
QUERY_TOKEN = "querytoken4b7f0a"
BEARER_TOKEN = "bearertoken9e3a61"
API_KEY = "apikey5d2b90c4"
HMAC_KEY = "hmackey2f8b5c71"
AM_TOKEN = "amtoken6d0e4f"
AM_AUTH = "YW1hdXRoOmFtcGFzcw"
AP_USER = "apuser5a2c8e"
AP_PASSWORD = "appassword7f1b3d"
AP_PATH = "appath0e6c2a"
AP_QUERY = "apquery9b4a7c"
AP_HEADER = "apheader3d8f1e"
MM_TOKEN = "mmtoken2e7c5f"
SECRETS = (
    PATH_TOKEN,
    QUERY_TOKEN,
    BEARER_TOKEN,
    API_KEY,
    HMAC_KEY,
    AM_TOKEN,
    AM_AUTH,
    AP_USER,
    AP_PASSWORD,
    AP_PATH,
    AP_QUERY,
    AP_HEADER,
    MM_TOKEN,
)
TIMEOUT = timedelta(seconds=10)
"""Generous: only the `slow` receiver is meant to time out, with `SHORT` as its timeout."""
SHORT = timedelta(seconds=0.5)
WAIT_S = 30.0
"""Generous bound for things that take well under a second on an idle machine."""
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


# --- a loopback receiver ------------------------------------------------------------------


def by_first_segment(request: Received) -> Answer:
    """Answer `/e400/...` 400, `/e500/...` 500, `/slow/...` once released, anything else 200."""
    first = request.first_segment
    status = {"e400": 400, "e500": 500}.get(first, 200)
    return Answer(status, hold="before" if first == "slow" else None)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(by_first_segment) as server:
        yield server


def received_text(receiver: Receiver) -> str:
    """Return every request line and header received so far, as one text."""
    return "\n".join(request.head for request in receiver.received())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- capturing everything every logger writes ---------------------------------------------


@pytest.fixture
def everything(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    """Capture every record of every logger at the lowest level; restore logging afterwards."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # Apprise's requests honours proxy variables
    with every_record() as capture:
        yield capture


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """Remove the redaction filters `configure_logging` installs on the root's handlers."""
    yield
    for handler in logging.getLogger().handlers:
        for installed in [f for f in handler.filters if isinstance(f, SecretRedaction)]:
            handler.removeFilter(installed)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        index = text.find(secret)
        assert index < 0, f"{secret!r} in {where}: …{text[max(index - 200, 0) : index + 50]}…"


def assert_all_sent(receiver: Receiver, secrets: tuple[str, ...]) -> None:
    """The receiver saw these secrets: they were in play, so the test could catch a leak."""
    received = received_text(receiver)
    assert [secret for secret in secrets if secret not in received] == []


# --- channels ------------------------------------------------------------------------------


def webhook(base: str, first: str = "ok", **options: Any) -> ChannelConfig:
    fields: dict[str, Any] = {
        "name": f"hook-{first}",
        "type": "webhook",
        "url": f"{base}/{first}/{PATH_TOKEN}?key={QUERY_TOKEN}",
        "secret": HMAC_KEY,
        "headers": {"Authorization": f"Bearer {BEARER_TOKEN}", "X-Api-Key": API_KEY},
        "timeout": TIMEOUT,
    }
    return ChannelConfig(**(fields | options))


def alertmanager(base: str, first: str = "ok", **options: Any) -> ChannelConfig:
    fields: dict[str, Any] = {
        "name": f"am-{first}",
        "type": "alertmanager",
        "url": f"{base}/{first}/{AM_TOKEN}/",
        "headers": {"Authorization": f"Basic {AM_AUTH}"},
        "timeout": TIMEOUT,
    }
    return ChannelConfig(**(fields | options))


def apprise_json(port: int, first: str = "ok") -> ChannelConfig:
    url = (
        f"json://{AP_USER}:{AP_PASSWORD}@127.0.0.1:{port}/{first}/{AP_PATH}"
        f"?-key={AP_QUERY}&+X-Api-Key={AP_HEADER}"
    )
    timeout = SHORT if first == "slow" else TIMEOUT
    return ChannelConfig(name=f"apprise-{first}", type="apprise", url=url, timeout=timeout)


def mattermost(port: int) -> ChannelConfig:
    # Mattermost's incoming webhook: the token is a path segment, as in Slack's.
    url = f"mmost://127.0.0.1:{port}/{MM_TOKEN}"
    return ChannelConfig(name="mattermost", type="apprise", url=url, timeout=TIMEOUT)


def http_outcomes(receiver: Receiver) -> list[tuple[ChannelConfig, tuple[bool, bool, int | None]]]:
    """Webhook and Alertmanager channels that end in every way; (ok, permanent, status)."""
    base, refused = receiver.base_url, f"http://127.0.0.1:{closed_port()}"
    unusable = "http://a..b"  # IDNA cannot encode an empty label
    newline = {"Authorization": f"Bearer {BEARER_TOKEN}\n"}  # a secret file's trailing newline
    cases: list[tuple[ChannelConfig, tuple[bool, bool, int | None]]] = []
    for make in (webhook, alertmanager):
        cases += [
            (make(base), (True, False, 200)),
            (make(base, "e400"), (False, True, 400)),
            (make(base, "e500"), (False, False, 500)),
            (make(base, "slow", timeout=SHORT), (False, False, None)),
            (make(refused, "refused"), (False, False, None)),
            (make(unusable, "unusable"), (False, True, None)),
            (make(base, "newline", headers=newline), (False, True, None)),
        ]
    return cases


def send_all(channels: list[ChannelConfig]) -> list[DeliveryResult]:
    async def go() -> list[tuple[ChannelConfig, DeliveryResult]]:
        async with Notifier() as notifier:
            return await send_test(notifier, tuple(channels), NOW, "https://x402.example.org/")

    return [result for _, result in asyncio.run(go())]


# --- the notifier alone: nothing to configure, nothing to forget --------------------------


def test_webhook_and_alertmanager_log_no_secret_at_debug_without_any_logging_setup(
    receiver: Receiver, everything: Capture
) -> None:
    """httpx must not be given the chance to log a channel URL: no level or filter needed."""
    cases = http_outcomes(receiver)
    results = send_all([channel for channel, _ in cases])
    for (channel, expected), result in zip(cases, results, strict=True):
        assert (result.ok, result.permanent, result.status) == expected, (channel.name, result)
        assert_no_secret(result.detail, f"the detail of {channel.name}")
    assert_all_sent(receiver, (PATH_TOKEN, QUERY_TOKEN, BEARER_TOKEN, API_KEY, AM_TOKEN, AM_AUTH))
    output = everything.getvalue()
    assert "DEBUG httpcore" in output  # really captured at DEBUG
    assert "INFO monitor.alerts" in output
    assert_no_secret(output, "the log")


def test_undeliverable_url_and_headers_are_permanent_with_a_clear_detail(
    receiver: Receiver, everything: Capture
) -> None:
    newline = {"X-Api-Key": f"{API_KEY}\r\n"}
    unusable, bad_header = send_all(
        [webhook("http://a..b"), webhook(receiver.base_url, headers=newline)]
    )
    assert unusable == DeliveryResult(False, True, None, "unusable URL: check the channel's url")
    assert bad_header.permanent
    assert "check the channel's headers" in bad_header.detail
    assert receiver.received() == []


# --- Apprise: the command line's logging set-up --------------------------------------------


def apprise_outcomes(receiver: Receiver) -> list[tuple[ChannelConfig, tuple[bool, bool]]]:
    """Apprise channels that end in every way; (ok, permanent)."""
    unusable = ChannelConfig(
        name="unusable",
        type="apprise",
        url=f"nosuchscheme://{AP_USER}:{AP_PASSWORD}@host/{AP_PATH}?x={AP_QUERY}",
    )
    return [
        (apprise_json(receiver.port), (True, False)),
        (mattermost(receiver.port), (True, False)),
        (apprise_json(receiver.port, "e400"), (False, False)),
        (apprise_json(receiver.port, "e500"), (False, False)),
        (apprise_json(receiver.port, "slow"), (False, False)),
        (apprise_json(closed_port(), "refused"), (False, False)),
        (unusable, (False, True)),
    ]


def _deliver_apprise(receiver: Receiver) -> None:
    cases = apprise_outcomes(receiver)
    results = send_all([channel for channel, _ in cases])
    for (channel, expected), result in zip(cases, results, strict=True):
        assert (result.ok, result.permanent) == expected, (channel.name, result)
        assert_no_secret(result.detail, f"the detail of {channel.name}")
    assert_all_sent(receiver, (AP_PATH, AP_QUERY, AP_HEADER, MM_TOKEN))


def test_apprise_at_debug_with_the_command_line_logging_logs_no_secret(
    receiver: Receiver, everything: Capture, cli_logging: None
) -> None:
    """Apprise prints URLs with their tokens at DEBUG and TRACE: the CLI keeps it at WARNING."""
    configure_logging(logging.DEBUG)
    _deliver_apprise(receiver)
    output = everything.getvalue()
    assert "monitor.alerts" in output
    assert_no_secret(output, "the log")


def test_apprise_child_stays_quiet_and_its_warnings_meet_the_parents_redaction(
    receiver: Receiver, everything: Capture
) -> None:
    """Apprise runs in a child process that keeps apprise, requests and urllib3 at WARNING by
    itself: the parent's levels (TRACE here) do not reach it. Its warnings are logged again in
    the parent, through the parent's handlers and their redaction filter (defence in depth)."""
    handler, redaction = everything, SecretRedaction()
    handler.addFilter(redaction)
    try:
        for logger in ("apprise", "requests", "urllib3"):
            logging.getLogger(logger).setLevel(1)
        for channel, _ in apprise_outcomes(receiver):
            redaction.protect(channel_secrets(channel))
        redaction.protect(["127.0.0.1"])  # named in a warning of the child: see it masked
        _deliver_apprise(receiver)
    finally:
        handler.removeFilter(redaction)
    output = everything.getvalue()
    warnings = [line for line in output.splitlines() if line.startswith("WARNING apprise:")]
    assert any("[redacted]" in line for line in warnings), output
    assert "TRACE apprise" not in output
    assert "DEBUG apprise" not in output
    assert "DEBUG urllib3" not in output
    assert "127.0.0.1" not in "\n".join(warnings)
    assert_no_secret(output, "the log")


def test_redaction_alone_hides_webhook_secrets_logged_by_anyone(everything: Capture) -> None:
    handler, redaction = everything, SecretRedaction()
    handler.addFilter(redaction)
    channel = webhook("https://hooks.example.com")
    try:
        redaction.protect(channel_secrets(channel))
        log = logging.getLogger("some.library")
        log.debug("POST %s", channel.url)
        log.debug("headers %r", channel.headers)
        log.debug("path /ok/%s?key=%s", PATH_TOKEN, QUERY_TOKEN)
        log.info("key %s", HMAC_KEY)
        try:
            raise ValueError(f"cannot use {channel.url}")
        except ValueError:
            log.exception("failed")
        log.warning("stack", stack_info=True, extra={"unused": BEARER_TOKEN})
    finally:
        handler.removeFilter(redaction)
    output = everything.getvalue()
    assert "POST https://hooks.example.com/[redacted]" in output  # the host stays readable
    assert "Traceback" in output
    assert "ValueError: cannot use" in output
    assert_no_secret(output, "the log")


# --- the redaction filter itself -----------------------------------------------------------


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, message, args, None)


def test_redaction_masks_raw_and_url_encoded_forms_and_keeps_short_values() -> None:
    redaction = SecretRedaction()
    redaction.protect(["ab/cd+ef=gh", "yes", "", "two words"])
    record = _record("raw %s, quoted %s, %s %s", "ab/cd+ef=gh", "ab%2Fcd%2Bef%3Dgh", "x", "yes")
    assert redaction.filter(record)
    assert record.getMessage() == "raw [redacted], quoted [redacted], x yes"
    record = _record("ab/cd%2Bef%3Dgh two+words two%20words words")  # `/` kept; form-encoded
    redaction.filter(record)
    assert record.getMessage() == "[redacted] [redacted] [redacted] words"


def test_redaction_survives_a_broken_record_and_masks_tracebacks() -> None:
    redaction = SecretRedaction()
    redaction.protect(["hunter2-secret"])
    broken = _record("%d items", "hunter2-secret")  # a caller's bug: %d of a str
    assert redaction.filter(broken)  # never raises into the caller's logging call
    assert "hunter2-secret" not in broken.getMessage()
    try:
        raise RuntimeError("hunter2-secret")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    redaction.filter(record)
    text = logging.Formatter().format(record)
    assert "RuntimeError: [redacted]" in text
    assert "hunter2-secret" not in text


def test_channel_secrets_cover_every_part_that_can_carry_one() -> None:
    hook = channel_secrets(webhook("https://hooks.example.com"))
    assert {PATH_TOKEN, QUERY_TOKEN, BEARER_TOKEN, API_KEY, HMAC_KEY} <= set(hook)
    assert not {"hooks.example.com", "https://hooks.example.com"} & set(hook)
    apprise = channel_secrets(apprise_json(8080))
    assert {AP_USER, AP_PASSWORD, AP_PATH, AP_QUERY, AP_HEADER} <= set(apprise)
    slack = channel_secrets(
        ChannelConfig(name="s", type="apprise", url="slack://T0AAAAAAA/B0BBBBBBB/cccccccccccccc")
    )
    assert {"T0AAAAAAA", "B0BBBBBBB", "cccccccccccccc"} <= set(slack)
    words = channel_secrets(
        webhook("https://hooks.example.com", url="https://h.example/services/x")
    )
    assert "services" not in words  # a plain word of a path is not masked in every log line


def test_config_secrets_are_the_channels_and_the_database_password() -> None:
    config = parse_config(
        {
            "database": "postgresql://monitor:dbpassword%2F42@db.example:5432/monitor",
            "alerts": {
                "channels": [{"name": "a", "type": "apprise", "url": "mmost://h/tok12345678"}]
            },
        },
        {},
    )
    assert {"dbpassword%2F42", "dbpassword/42", "tok12345678"} <= set(config_secrets(config))
    assert "monitor" not in config_secrets(config)


def test_protect_reaches_the_filters_installed_on_the_root_handlers(
    everything: Capture, cli_logging: None
) -> None:
    configure_logging(logging.DEBUG)
    configure_logging(logging.DEBUG)  # twice (tests, a second main()): still one filter each
    protect([PATH_TOKEN])
    logging.getLogger("monitor.test").warning("hook /%s", PATH_TOKEN)
    assert "hook /[redacted]" in everything.getvalue()
    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, SecretRedaction) for f in handler.filters) == 1


# --- the commands: alerts test, check, render, run -----------------------------------------


ENVIRONMENT = {
    "HOOK_URL_PATH": f"{PATH_TOKEN}?key={QUERY_TOKEN}",
    "HOOK_BEARER": BEARER_TOKEN,
    "HOOK_API_KEY": API_KEY,
    "HOOK_KEY": HMAC_KEY,
    "AM_AUTH": AM_AUTH,
    "AP_PASSWORD": AP_PASSWORD,
}


def _channels(receiver: Receiver) -> list[dict[str, Any]]:
    base, port = receiver.base_url, receiver.port
    headers = {"Authorization": "Bearer ${HOOK_BEARER}", "X-Api-Key": "${HOOK_API_KEY}"}

    def hook(name: str, url: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "webhook",
            "url": url,
            "secret": "${HOOK_KEY}",
            "headers": headers,
            "timeout": "10s",
        }

    return [
        hook("hook", f"{base}/ok/${{HOOK_URL_PATH}}"),
        hook("hook-refused", f"http://127.0.0.1:{closed_port()}/x/${{HOOK_URL_PATH}}"),
        hook("hook-unusable", "http://a..b/${HOOK_URL_PATH}"),
        {
            "name": "am",
            "type": "alertmanager",
            "url": f"{base}/e500/{AM_TOKEN}/",
            "headers": {"Authorization": "Basic ${AM_AUTH}"},
        },
        {
            "name": "apprise",
            "type": "apprise",
            "url": (
                f"json://{AP_USER}:${{AP_PASSWORD}}@127.0.0.1:{port}/ok/{AP_PATH}"
                f"?-key={AP_QUERY}&+X-Api-Key={AP_HEADER}"
            ),
        },
        {"name": "mattermost", "type": "apprise", "url": f"mmost://127.0.0.1:{port}/{MM_TOKEN}"},
    ]


@pytest.fixture
def broken_endpoint() -> Iterator[str]:
    """An endpoint that always answers 500: its alert fires on the first check."""
    with Receiver(lambda request: Answer(500)) as server:
        yield f"{server.base_url}/pay"


def _write_config(tmp_path: Path, receiver: Receiver, endpoint: str, **extra: Any) -> Path:
    path = tmp_path / "config.yaml"
    document = {
        "database": "data/monitor.db",
        "site": {"output_dir": "site", "base_url": "https://x402.example.org/"},
        "probe": {"interval": "1s", "timeout": "2s", "allow_private_addresses": True},
        "alerts": {"failure_threshold": 1, "channels": _channels(receiver)},
        "endpoints": [{"url": endpoint, "method": "GET", "title": "Pay"}],
        **extra,
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _environment() -> dict[str, str]:
    return {**os.environ, **ENVIRONMENT, "NO_PROXY": "127.0.0.1", "PYTHONUNBUFFERED": "1"}


def _monitor(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "--log-level", "debug", *args],
        cwd=REPO,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _database_text(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return "\n".join(connection.iterdump())


def _site_text(folder: Path) -> str:
    return "\n".join(
        file.read_text(encoding="utf-8", errors="replace")
        for file in sorted(folder.rglob("*"))
        if file.is_file()
    )


@pytest.mark.integration
def test_alerts_test_command_at_debug_prints_and_logs_no_secret(
    tmp_path: Path, receiver: Receiver, broken_endpoint: str
) -> None:
    config = _write_config(tmp_path, receiver, broken_endpoint)
    result = _monitor("alerts", "test", "--config", str(config))
    assert result.returncode == 1, result.stderr[-3000:]  # some channels fail, by design
    assert f"hook (webhook {receiver.base_url}): ok (HTTP 200)" in result.stdout
    assert "hook-unusable (webhook http://a..b): refused (unusable URL" in result.stdout
    assert "DEBUG" in result.stderr  # really at DEBUG
    assert_all_sent(receiver, (PATH_TOKEN, QUERY_TOKEN, BEARER_TOKEN, API_KEY, AM_AUTH, MM_TOKEN))
    assert_no_secret(result.stdout, "stdout")
    assert_no_secret(result.stderr, "stderr")


@pytest.mark.integration
def test_check_delivery_outbox_and_pages_keep_no_secret(
    tmp_path: Path, receiver: Receiver, broken_endpoint: str
) -> None:
    config = _write_config(tmp_path, receiver, broken_endpoint)
    checked = _monitor("check", "--config", str(config))
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert_all_sent(receiver, (PATH_TOKEN, QUERY_TOKEN, BEARER_TOKEN, API_KEY, AP_HEADER, MM_TOKEN))
    assert_no_secret(checked.stdout + checked.stderr, "the output of monitor check")
    database = _database_text(tmp_path / "data" / "monitor.db")
    assert 'INSERT INTO "notifications"' in database  # the outbox has rows to search
    assert_no_secret(database, "the database")
    rendered = _monitor("render", "--config", str(config))
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert_no_secret(rendered.stdout + rendered.stderr, "the output of monitor render")
    assert_no_secret(_site_text(tmp_path / "site"), "the site")


@pytest.mark.integration
def test_run_delivers_and_serves_metrics_without_a_secret(
    tmp_path: Path, receiver: Receiver, broken_endpoint: str
) -> None:
    port = closed_port()
    config = _write_config(
        tmp_path, receiver, broken_endpoint, server={"listen": f"127.0.0.1:{port}"}
    )
    # Into a file, not a pipe nobody reads while waiting: a full pipe would block its logging.
    log = tmp_path / "run.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "--log-level",
                "debug",
                "run",
                "--config",
                str(config),
            ],
            cwd=REPO,
            env=_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    metrics = ""
    try:

        def delivered() -> bool:
            if process.poll() is not None:
                pytest.fail(
                    f"monitor run exited ({process.returncode}):\n{log.read_text()[-3000:]}"
                )
            text = _get(f"http://127.0.0.1:{port}/metrics")
            return 'x402_notifications_total{channel="am",result="retry"}' in text and (
                'channel="hook",result="sent"' in text
            )

        _wait_for(delivered, "deliveries counted in /metrics")
        metrics = _get(f"http://127.0.0.1:{port}/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log.read_text()
    assert_all_sent(receiver, (PATH_TOKEN, BEARER_TOKEN, AM_AUTH, AP_HEADER, MM_TOKEN))
    assert "DEBUG" in output
    assert_no_secret(output, "the output of monitor run")
    assert_no_secret(metrics, "/metrics")
    assert_no_secret(_database_text(tmp_path / "data" / "monitor.db"), "the database")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=WAIT_S) as response:
        return str(response.read().decode())


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S * 4  # a start-up, a round and deliveries, when busy
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_loading_a_config_protects_its_secrets_and_variable_values(
    tmp_path: Path,
    everything: Capture,
    cli_logging: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitor.cli.common import load_config_file

    monkeypatch.setenv("HOOK_KEY", HMAC_KEY)
    monkeypatch.setenv("SOME_TOKEN", "plain-variable-value-42")
    path = tmp_path / "c.yaml"
    document = {
        "site": {"base_url": "https://x402.example.org/${SOME_TOKEN}"},
        "alerts": {
            "channels": [
                {
                    "name": "h",
                    "type": "webhook",
                    "url": f"https://h.example/{PATH_TOKEN}",
                    "secret": "${HOOK_KEY}",
                }
            ]
        },
    }
    path.write_text(yaml.safe_dump(document))
    configure_logging(logging.DEBUG)
    load_config_file(path, channels=True)
    logging.getLogger("third.party").warning(
        "%s %s %s", PATH_TOKEN, HMAC_KEY, "plain-variable-value-42"
    )
    assert_no_secret(everything.getvalue(), "the log")
    assert "plain-variable-value-42" not in everything.getvalue()
