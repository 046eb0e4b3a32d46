"""Run one probe round as the service does, and read back what the store kept.

Used in-process by tests/test_hostile*.py, and as a script by the memory test: `python
hostile_round.py SPEC.json` runs one round described by SPEC.json and prints its peak RSS, so a
healthy and a hostile round each run in a fresh process that imported exactly these modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import sqlite3
import ssl
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hostile_servers import (
    BLOCKED_ADDRESS,
    DOMAIN,
    LoopbackNames,
    Pki,
    TlsServer,
    healthy,
    loopback_policy,
    pki,
)
from scripted_server import Handler, Server

from monitor.config import Config, parse_config
from monitor.probe import Prober, Resolver, build_transport
from monitor.service import probe_round
from monitor.store import Store
from monitor.untrusted import is_clean
from monitor.urls import normalise_url

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
PROBE: dict[str, object] = {
    "interval": "1m",
    "timeout": "2s",
    "connect_timeout": "1s",
    "concurrency": 200,
}
"""Short timeouts keep the suite fast; the body cap is the default 1 MiB."""
TIMEOUT_S = 2.0
"""PROBE's timeout."""
ROUND_BOUND_S = 10 * TIMEOUT_S
"""A round must end within a generous multiple of probe.timeout (CI machines are busy)."""
OVERRIDES = {"internal.test": [BLOCKED_ADDRESS]}
"""Names the test resolver maps elsewhere than the test servers' address."""


def round_config(urls: Sequence[str], **probe: object) -> Config:
    """Return a config probing `urls` with GET under the default address policy."""
    document: dict[str, object] = {
        "probe": {**PROBE, **probe},
        "endpoints": [{"url": url, "method": "GET"} for url in urls],
    }
    return parse_config(document, {})


async def run_round(
    database: Path,
    config: Config,
    *,
    verify: ssl.SSLContext | bool = True,
    resolver: Resolver | None = None,
    batches: Sequence[Sequence[str]] | None = None,
    between: Callable[[], Awaitable[object]] | None = None,
) -> float:
    """Probe the endpoints of `config` in one round per batch (one prober) into `database`.

    `batches` lists the URLs of each round (default: one round of every endpoint); `between`
    is awaited between two rounds. Endpoints are stored and read back as `monitor check`
    does; the transport is the real one, with the test resolver and address policy. Returns
    the seconds the rounds took.
    """
    store = Store.open(f"sqlite:///{database}")
    try:
        store.sync_config_endpoints([endpoint.to_spec() for endpoint in config.endpoints], T0)
        endpoints = store.endpoints()
        transport = build_transport(
            config.probe,
            policy=loopback_policy,
            verify=verify,
            resolver=resolver or LoopbackNames(),
        )
        rounds = [[e for e in endpoints if e.spec.url in batch] for batch in batches or []]
        started = time.monotonic()
        async with Prober(config.probe, clock=lambda: T0, transport=transport) as prober:
            for number, batch in enumerate(rounds or [endpoints]):
                if number and between is not None:
                    await between()
                await probe_round(store, prober, batch, config)
        elapsed = time.monotonic() - started
        # What was stored can be read back the way the pages read it.
        stored = store.endpoints()
        store.page_histories([endpoint.id for endpoint in stored], T0)
        return elapsed
    finally:
        store.close()


@dataclass(frozen=True)
class StoredCheck:
    """One stored check, as read back from the database."""

    url: str
    outcome: str
    error: str | None
    http_status: int | None


def stored_checks(database: Path) -> dict[str, list[StoredCheck]]:
    """Return every stored check by endpoint URL, oldest first."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT endpoints.url, checks.outcome, checks.error, checks.http_status"
            " FROM checks JOIN endpoints ON endpoints.id = checks.endpoint_id"
            " ORDER BY checks.id"
        ).fetchall()
    checks: dict[str, list[StoredCheck]] = {}
    for url, outcome, error, status in rows:
        checks.setdefault(url, []).append(StoredCheck(url, outcome, error, status))
    return checks


def unclean_text(database: Path) -> list[str]:
    """Return where the database holds text that is not clean UTF-8 (empty when none).

    Every text value of every table is read as raw bytes and decoded strictly: a lone
    surrogate, invalid UTF-8 or a control character (other than tab and line breaks) is
    reported as "table.column: problem".
    """
    problems: list[str] = []
    with sqlite3.connect(database) as connection:
        connection.text_factory = bytes
        tables = [
            name.decode()
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            columns = [description[0] for description in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if not isinstance(value, bytes):
                        continue
                    try:
                        text = value.decode("utf-8")
                    except UnicodeDecodeError as error:
                        problems.append(f"{table}.{column}: {error}")
                        continue
                    if not is_clean(text):
                        problems.append(f"{table}.{column}: unsafe characters in {text[:80]!r}")
    return problems


def longest_text(database: Path, table: str, column: str) -> int:
    """Return the length in characters of the longest value of `table.column`."""
    with sqlite3.connect(database) as connection:
        (longest,) = connection.execute(
            f'SELECT COALESCE(MAX(LENGTH("{column}")), 0) FROM "{table}"'
        ).fetchone()
    return int(longest)


# Cases and the servers of a round ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile endpoint: how its server behaves, and what its stored check must say."""

    name: str
    """The first label of its host name, `{name}.seller.test` (a DNS label: a-z, 0-9, -)."""
    serve: Callable[[], Handler]
    outcome: str
    words: tuple[str, ...] = ()
    """Words the stored error must contain, exactly as written."""
    targets: tuple[str, ...] = ("/",)
    """One endpoint per target, all on this server (one origin)."""
    scheme: str = "http"
    certificate: str | None = None
    """Serve TLS with this certificate of `Pki` ("good", "expired", ...); None: no TLS layer
    on the server, whatever the URL's scheme (a server that breaks TLS by itself)."""
    known_bug: str | None = None
    """Why the monitor does not yet do what this case expects (the test is a strict xfail)."""

    def param(self) -> Any:
        """Return this case as a pytest parameter (a strict xfail when it has a known bug)."""
        marks = (
            []
            if self.known_bug is None
            else [pytest.mark.xfail(strict=True, reason=self.known_bug)]
        )
        return pytest.param(self, id=self.name, marks=marks)

    def server(self) -> Server:
        handler = self.serve()
        if self.certificate is None:
            return Server(handler)
        return TlsServer(handler, Pki.server_context(getattr(pki(), self.certificate)))

    def urls(self, server: Server) -> list[str]:
        base = f"{self.scheme}://{self.name}.{DOMAIN}:{server.port}"
        return [normalise_url(base + target) for target in self.targets]


class Lab(contextlib.AsyncExitStack):
    """The servers of one round: each case's, and one healthy seller per `healthy_schemes`."""

    def __init__(self, cases: Sequence[Case], healthy_schemes: Sequence[str] = ("http",)) -> None:
        super().__init__()
        self.cases = list(cases)
        self.healthy_schemes = list(healthy_schemes)
        self.urls: dict[str, list[str]] = {}
        """Each case's endpoint URLs, by case name."""
        self.healthy_urls: list[str] = []
        self.servers: dict[str, Server] = {}
        """Each case's server, by case name."""

    @property
    def all_urls(self) -> list[str]:
        return [url for urls in self.urls.values() for url in urls] + self.healthy_urls

    async def __aenter__(self) -> Lab:
        await super().__aenter__()
        for case in self.cases:
            server = await self.enter_async_context(case.server())
            self.urls[case.name] = case.urls(server)
            self.servers[case.name] = server
        for index, scheme in enumerate(self.healthy_schemes):
            good = Server(healthy()) if scheme == "http" else TlsServer(healthy(), _good_tls())
            server = await self.enter_async_context(good)
            self.healthy_urls.append(f"{scheme}://good-{index}.{DOMAIN}:{server.port}/paid")
        return self


def _good_tls() -> ssl.SSLContext:
    return Pki.server_context(pki().good)


@dataclass(frozen=True)
class RoundResult:
    """What a round left: its duration, the stored checks, and any trouble it caused."""

    elapsed_s: float
    checks: dict[str, list[StoredCheck]]
    unclean: list[str]
    """Stored text that is not clean UTF-8 (see unclean_text)."""
    loop_errors: list[str]
    """Errors the monitor's code reported to the event loop's exception handler."""


async def play(
    database: Path,
    lab: Lab,
    *,
    batches: Sequence[Sequence[str]] | None = None,
    between: Callable[[], Awaitable[object]] | None = None,
    resolver: Resolver | None = None,
    **probe: object,
) -> RoundResult:
    """Probe every endpoint of `lab` (in `batches`, see run_round); return what was stored.

    `resolver` defaults to the test resolver with OVERRIDES; `probe` overrides PROBE settings.
    """
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    loop.set_exception_handler(lambda _, context: errors.extend(_from_monitor(context)))
    try:
        elapsed = await run_round(
            database,
            round_config(lab.all_urls, **probe),
            verify=pki().client_context(),
            resolver=resolver or LoopbackNames(OVERRIDES),
            batches=batches,
            between=between,
        )
    finally:
        loop.set_exception_handler(None)
    return RoundResult(elapsed, stored_checks(database), unclean_text(database), errors)


def _from_monitor(context: dict[str, Any]) -> list[str]:
    """Return the context as one line if monitor code raised it (test servers' errors pass)."""
    error = context.get("exception")
    frames = traceback.extract_tb(error.__traceback__) if isinstance(error, BaseException) else []
    ours = f"{os.sep}monitor{os.sep}"
    if any(ours in frame.filename for frame in frames) or "HttpConnection" in repr(context):
        return [f"{context.get('message')}: {error!r}"]
    return []


def assert_round(result: RoundResult, lab: Lab, cases: Sequence[Case]) -> None:
    """Assert each case's check, the healthy passes, the time bound and the stored text."""
    for case in cases:
        for url in lab.urls[case.name]:
            checks = result.checks.get(url, [])
            assert len(checks) == 1, f"{case.name}: {url} has {len(checks)} checks"
            (check,) = checks
            assert check.outcome == case.outcome, check
            for word in case.words:
                assert word in (check.error or ""), check
    for url in lab.healthy_urls:
        assert [(c.outcome, c.error) for c in result.checks.get(url, [])] == [("pass", None)]
    assert result.elapsed_s <= ROUND_BOUND_S
    assert result.unclean == []
    assert result.loop_errors == []


def assert_costs_one_check(
    case: Case,
    database: Path,
    caplog: pytest.LogCaptureFixture,
    healthy_schemes: Sequence[str] = ("http",),
) -> None:
    """Probe `case` in a round beside healthy sellers; assert_round, and no monitor warning."""

    async def go() -> None:
        async with Lab([case], healthy_schemes) as lab:
            result = await play(database, lab)
        assert_round(result, lab, [case])

    caplog.set_level(logging.INFO)
    asyncio.run(asyncio.wait_for(go(), 3 * ROUND_BOUND_S))
    troubles = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in troubles if r.name.startswith("monitor")] == []


# The memory test's subprocess ------------------------------------------------------------------


def _client_context(ca_pem: str | None) -> ssl.SSLContext | bool:
    if ca_pem is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=ca_pem)
    return context


def main(argv: list[str]) -> int:
    """Run the round SPEC.json describes; print its duration and the process's peak RSS."""
    spec: dict[str, Any] = json.loads(Path(argv[1]).read_text())
    config = round_config(spec["urls"], **spec.get("probe", {}))
    resolver = LoopbackNames(spec.get("overrides", {}))
    elapsed = asyncio.run(
        run_round(
            Path(spec["database"]),
            config,
            verify=_client_context(spec.get("ca_pem")),
            resolver=resolver,
        )
    )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"elapsed_s": elapsed, "max_rss_kib": peak_kib}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
