"""Print probe throughput of the monitor next to blackbox_exporter's (not a test; never asserts).

Usage: `.venv/bin/python bench/probe_throughput.py [--quick] [--sizes 1000,20000]
[--concurrency 100,200] [--transport httpx,aiohttp] [--loop asyncio,uvloop] [--guard]
[--keepalive default|all|off]`; bench/README.md explains every figure.

Starts nginx (Debian package `nginx`) in the foreground on 127.0.0.1-127.0.0.8, answering every
path with HTTP 402 and a real v2 `PAYMENT-REQUIRED` challenge, and blackbox_exporter (Debian
package `prometheus-blackbox-exporter`). Then, for each size and concurrency, on the monitor's
real code path (`parse_config`, `Store.open` on a temporary SQLite file, `sync_config_endpoints`):

- probe only: one `Prober.probe_many` over every endpoint (no assess, no store);
- pipeline: batches of `--batch` endpoints, at most two in flight (the service's capacity of
  2 x concurrency), each probed with `Prober.probe_many`, judged with `service.judge` and
  saved with `service.save` in a worker thread under a writer lock; timed end to end;
- service: `MonitorService` itself for `--service-seconds` with a 1 s interval (every endpoint
  always due): what its 1 s dispatch tick sustains, checks counted in the database;
- blackbox: blackbox_exporter probing the same URLs, driven by `concurrency` keep-alive
  `GET /probe?module=http_402&target=...` requests at once.

Then `assess` and `save_round` per 1,000 results, `save_round` again with `--history` checks per
endpoint in the database (a day at a 60 s interval), peak memory, the SQLite file sizes, and
bench/metrics_scrape.py's `/metrics` figures. Everything listens on 127.0.0.x only, counts and
durations are bounded, and every process started is stopped (also on errors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib
import importlib.util
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from monitor.addresses import refusal_reason
from monitor.assess import assess
from monitor.config import Config, ProbeConfig, parse_config
from monitor.models import CheckResult, EndpointSpec, Outcome, ProbeFacts
from monitor.probe import AddressRefusedError, Prober, build_transport
from monitor.service import MonitorService, judge, save
from monitor.store import Store, StoredEndpoint

ROOT = Path(__file__).resolve().parent.parent
CHALLENGE = ROOT / "tests/fixtures/x402/02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64"
ADDRESSES = tuple(f"127.0.0.{n}" for n in range(1, 9))
PER_HOST = 1000
BATCHES_IN_FLIGHT = 2
"""MonitorService._dispatch keeps at most 2 x concurrency endpoints in flight."""
PER = 1000
"""Store and assess costs are reported per this many results."""
HISTORY_STEP = timedelta(minutes=1)
START_TIMEOUT = 10.0

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of the final table."""

    what: str
    endpoints: int
    concurrency: int
    client: str
    rate: float | None
    note: str = ""


@dataclass
class Report:
    """Every figure, printed as it is measured and again at the end."""

    rows: list[Row] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        rate = "-" if row.rate is None else f"{row.rate:,.0f}/s"
        print(
            f"  {row.what:<10} {row.endpoints:>7,} endpoints  c={row.concurrency:<4} "
            f"{row.client:<22} {rate:>9}  {row.note}",
            flush=True,
        )

    def line(self, text: str) -> None:
        self.lines.append(text)
        print(f"  {text}", flush=True)


# -- processes ------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies (Linux), so none linger."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def running(command: list[str], log: Path, ready: Callable[[], bool]) -> Iterator[None]:
    """Run `command` until the block ends; wait until `ready()` or fail showing its log."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(host: str, port: int) -> bool:
    """Return whether host:port accepts a TCP connection."""
    try:
        socket.create_connection((host, port), 0.2).close()
    except OSError:
        return False
    return True


def need(binary: str, package: str) -> str:
    """Return the path of `binary`, or exit naming the Debian package that provides it."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if path is None:
        sys.exit(
            f"{binary} not found: apt-get update -qq && "
            f"apt-get install -y -qq --no-install-recommends {package}"
        )
    return path


@contextlib.contextmanager
def nginx_target(workdir: Path) -> Iterator[int]:
    """Run nginx answering 402 with a real challenge on every ADDRESSES:port; yield the port."""
    binary = need("nginx", "nginx")
    challenge = CHALLENGE.read_text().strip()
    port = free_port()
    temp_paths = "\n".join(
        f"  {kind}_temp_path {workdir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    listen = "\n".join(f"    listen {address}:{port};" for address in ADDRESSES)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/err.log;
worker_processes 1;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
http {{
  access_log off;
{temp_paths}
  server {{
{listen}
    default_type application/json;
    location / {{
      add_header PAYMENT-REQUIRED "{challenge}" always;
      return 402 '{{}}';
    }}
  }}
}}
"""
    )
    command = [binary, "-p", str(workdir), "-e", str(workdir / "err.log"), "-c", str(conf)]
    with running(
        command,
        workdir / "nginx.out",
        lambda: all(accepts(address, port) for address in ADDRESSES),
    ):
        yield port


@contextlib.contextmanager
def blackbox_exporter(workdir: Path) -> Iterator[int]:
    """Run prometheus-blackbox-exporter with an `http_402` module; yield its port."""
    binary = need("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    conf = workdir / "blackbox.yml"
    conf.write_text(
        "modules:\n"
        "  http_402:\n"
        "    prober: http\n"
        "    timeout: 5s\n"
        "    http:\n"
        "      valid_status_codes: [402]\n"
        "      method: GET\n"
    )
    port = free_port()
    command = [
        binary,
        f"--config.file={conf}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with running(command, workdir / "blackbox.out", lambda: accepts("127.0.0.1", port)):
        yield port


# -- transports and event loops -------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """How probes are sent: transport, event loop, keep-alive and the address guard."""

    transport: str
    loop: str
    keepalive: str
    guard: bool

    @property
    def label(self) -> str:
        parts = [self.transport, self.loop]
        if self.keepalive != "default":
            parts.append(f"keepalive-{self.keepalive}")
        if self.guard:
            parts.append("guard")
        return "/".join(parts)


def loopback_allowed(address: str) -> str | None:
    """The address policy with 127.0.0.0/8 allowed, so `--guard` runs its checks on nginx."""
    return None if address.startswith("127.") else refusal_reason(address)


def optional(module: str, package: str) -> Any:
    """Import an optional module (not a project dependency), or exit saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        sys.exit(f"{module} is not installed: .venv/bin/pip install {package}")


def make_transport(client: Client, config: ProbeConfig) -> httpx.AsyncBaseTransport:
    """Return the probe transport: monitor.probe's own, or httpx-aiohttp's with the same limits.

    keepalive `default` is the shipped setting (up to `concurrency` idle connections; aiohttp:
    idle connections up to the limit), `all` is the same for http1, `off` opens a new
    connection per request. `guard` enforces the address policy (loopback allowed): http1
    through its own connect step, aiohttp through `guarded_socket`.
    """
    if client.transport == "http1":
        max_idle = 0 if client.keepalive == "off" else None
        if client.guard:
            guarded = config.model_copy(update={"allow_private_addresses": False})
            return build_transport(guarded, policy=loopback_allowed, max_idle=max_idle)
        return build_transport(config, max_idle=max_idle)
    aiohttp = optional("aiohttp", "httpx-aiohttp")
    httpx_aiohttp = optional("httpx_aiohttp", "httpx-aiohttp")

    def session() -> Any:
        connector = aiohttp.TCPConnector(
            limit=config.concurrency,
            limit_per_host=config.per_host,
            keepalive_timeout=5.0 if client.keepalive != "off" else None,
            force_close=client.keepalive == "off",
            socket_factory=guarded_socket if client.guard else None,
        )
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    aiohttp_transport: httpx.AsyncBaseTransport = httpx_aiohttp.AiohttpTransport(client=session)
    return aiohttp_transport


def guarded_socket(address_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp `socket_factory`: refuse the exact address about to be connected, else a socket.

    aiohttp calls it for every connection attempt, after resolving (IP literals included), so
    the address checked is the address used, as with monitor.probe.GuardedBackend.
    """
    family, kind, protocol, _, sockaddr = address_info
    reason = loopback_allowed(str(sockaddr[0]))
    if reason is not None:
        raise AddressRefusedError(str(sockaddr[0]), reason)
    sock = socket.socket(family, kind, protocol)
    sock.setblocking(False)
    return sock


def run(coroutine: Coroutine[Any, Any, T], loop: str) -> T:
    """Run a coroutine to completion on a fresh asyncio or uvloop event loop."""
    if loop == "uvloop":
        uvloop = optional("uvloop", "uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    with asyncio.Runner() as runner:
        return runner.run(coroutine)


# -- the monitor ----------------------------------------------------------------------------


def bench_config(urls: Sequence[str], database: Path, concurrency: int, interval: str) -> Config:
    """Return the monitor config of a run, through the real parser."""
    document = {
        "database": str(database),
        "probe": {
            "concurrency": concurrency,
            "per_host": PER_HOST,
            "allow_private_addresses": True,
            "interval": interval,
            "timeout": "10s",
        },
        "endpoints": [{"url": url} for url in urls],
    }
    return parse_config(document, {})


def now() -> datetime:
    return datetime.now(UTC)


def prober(config: Config, client: Client) -> Prober:
    return Prober(config.probe, clock=now, transport=make_transport(client, config.probe))


async def probe_only(
    config: Config, specs: Sequence[EndpointSpec], client: Client
) -> tuple[float, list[ProbeFacts]]:
    """Probe every spec once through `Prober.probe_many`; return (seconds, facts)."""
    async with prober(config, client) as probes:
        started = time.perf_counter()
        facts = await probes.probe_many(specs)
        return time.perf_counter() - started, facts


async def pipeline(
    config: Config,
    store: Store,
    endpoints: Sequence[StoredEndpoint],
    batch: int,
    client: Client,
) -> tuple[float, list[tuple[StoredEndpoint, CheckResult]]]:
    """Probe, judge and save every endpoint in batches, two in flight; return (seconds, checks).

    Like `MonitorService._run_batch`: a batch is probed, judged, then saved in one transaction
    in a worker thread under a writer lock, while the next batch keeps probing.
    """
    writer = asyncio.Lock()
    window = asyncio.Semaphore(BATCHES_IN_FLIGHT)
    checks: list[tuple[StoredEndpoint, CheckResult]] = []

    async def one_batch(probes: Prober, chunk: Sequence[StoredEndpoint]) -> None:
        try:
            facts = await probes.probe_many([endpoint.spec for endpoint in chunk])
            judged = await judge(chunk, facts, None)
            async with writer:
                await asyncio.to_thread(save, store, judged, config)
            checks.extend(judged)
        finally:
            window.release()

    async with prober(config, client) as probes:
        started = time.perf_counter()
        tasks = []
        for start in range(0, len(endpoints), batch):
            await window.acquire()
            chunk = endpoints[start : start + batch]
            tasks.append(asyncio.create_task(one_batch(probes, chunk)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - started, checks


async def service(
    config: Config, store: Store, seconds: float, client: Client
) -> tuple[float, object]:
    """Run MonitorService (interval 1 s: always due) for `seconds`; return (checks/s, rounds)."""
    async with prober(config, client) as probes:
        monitor = MonitorService(config, store, probes, clock=now)
        await monitor.start()
        try:
            await asyncio.sleep(min(3.0, seconds / 3))  # start-up: resume, snapshot, rollup
            before = await asyncio.to_thread(store.count_checks)
            started = time.perf_counter()
            await asyncio.sleep(seconds)
            after = await asyncio.to_thread(store.count_checks)
            elapsed = time.perf_counter() - started
        finally:
            await monitor.stop(timedelta(seconds=10))
            # stop() does not wait for a dispatch tick already running; let it end in peace.
            running_jobs = asyncio.all_tasks() - {asyncio.current_task()}
            if running_jobs:
                await asyncio.wait(running_jobs, timeout=5)
        return (after - before) / elapsed, monitor.health()[1].get("rounds")


# -- blackbox_exporter ----------------------------------------------------------------------


async def drive_blackbox(
    port: int, urls: Sequence[str], concurrency: int, driver: str
) -> tuple[float, int]:
    """Request one blackbox probe per URL, `concurrency` at once; return (seconds, failures).

    Driver `raw` keeps `concurrency` HTTP/1.1 keep-alive connections over asyncio streams;
    `httpx` uses an httpx AsyncClient. httpx's pool checks every idle keep-alive connection on
    each request, so with 100 of them to one origin it caps the driver far below what
    blackbox_exporter serves (see bench/README.md): `raw` measures blackbox, not the driver.
    """
    pending = iter(urls)
    failures = 0

    def succeeded(body: bytes) -> bool:
        return b"\nprobe_success 1" in body

    async def raw_worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for url in pending:
                writer.write(
                    f"GET /probe?module=http_402&target={quote(url, safe='')} HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
                )
                if not succeeded(await read_response(reader)):
                    failures += 1
        finally:
            writer.close()
            await writer.wait_closed()

    async def httpx_worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for url in pending:
            response = await client.get(
                f"http://127.0.0.1:{port}/probe", params={"module": "http_402", "target": url}
            )
            if not succeeded(response.content):
                failures += 1

    started = time.perf_counter()
    if driver == "raw":
        await asyncio.gather(*(raw_worker() for _ in range(concurrency)))
    else:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
            await asyncio.gather(*(httpx_worker(client) for _ in range(concurrency)))
    return time.perf_counter() - started, failures


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one HTTP/1.1 response (Content-Length or chunked) and return its body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
    }
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
        return bytes(body)
    return await reader.readexactly(int(headers.get(b"content-length", b"0")))


# -- one size -------------------------------------------------------------------------------


def outcome_note(checks: Sequence[tuple[StoredEndpoint, CheckResult]], total: int) -> str:
    """Return '' when every check passed, else the outcome counts (a broken run shows)."""
    outcomes = Counter(result.outcome for _, result in checks)
    if outcomes[Outcome.PASS] == total:
        return ""
    return "NOT ALL PASS: " + ", ".join(f"{n} {o}" for o, n in outcomes.items())


def facts_note(facts: Sequence[ProbeFacts]) -> str:
    """Return '' when every probe got a 402, else what came back instead."""
    bad = Counter(str(f.error or f.http_status) for f in facts if f.http_status != 402)
    return "" if not bad else "NOT ALL 402: " + ", ".join(f"{n} {k}" for k, n in bad.items())


def bench_size(
    size: int,
    args: argparse.Namespace,
    port: int,
    blackbox_port: int | None,
    workdir: Path,
    report: Report,
) -> None:
    """Measure every figure at `size` endpoints."""
    print(f"\n== {size:,} endpoints ==", flush=True)
    urls = [f"http://{ADDRESSES[i % len(ADDRESSES)]}:{port}/e/{i}" for i in range(size)]
    database = workdir / f"bench-{size}.db"
    started = time.perf_counter()
    base = bench_config(urls, database, max(args.concurrency), "1m")
    specs = [endpoint.to_spec() for endpoint in base.endpoints]
    parsed = time.perf_counter() - started
    store = Store.open(f"sqlite:///{database}")
    try:
        started = time.perf_counter()
        store.sync_config_endpoints(specs, now())
        by_url = {endpoint.spec.url: endpoint for endpoint in store.endpoints()}
        report.line(
            f"set-up at {size:,}: parse_config {parsed:.2f} s, "
            f"sync_config_endpoints + endpoints() {time.perf_counter() - started:.2f} s"
        )
        endpoints = [by_url[url] for url in urls]  # in config order: addresses interleaved
        checks: list[tuple[StoredEndpoint, CheckResult]] = []
        facts: list[ProbeFacts] = []
        clients = [
            Client(transport, loop, args.keepalive, args.guard)
            for transport in args.transport
            for loop in args.loop
        ]
        for concurrency in args.concurrency:
            config = bench_config((), database, concurrency, "1m")
            batch = args.batch or concurrency
            for client in clients:
                seconds, facts = run(probe_only(config, specs, client), client.loop)
                report.add(
                    Row(
                        "probe only",
                        size,
                        concurrency,
                        client.label,
                        size / seconds,
                        facts_note(facts),
                    )
                )
                # Twice: the first pass meets every challenge for the first time (cold
                # validation); the second is the steady state of the service, where each
                # endpoint was checked one interval before.
                seconds, checks = run(
                    pipeline(config, store, endpoints, batch, client), client.loop
                )
                report.add(
                    Row(
                        "pipeline 1st",
                        size,
                        concurrency,
                        client.label,
                        size / seconds,
                        "first check of each endpoint (cold validation)",
                    )
                )
                seconds, checks = run(
                    pipeline(config, store, endpoints, batch, client), client.loop
                )
                report.add(
                    Row(
                        "pipeline",
                        size,
                        concurrency,
                        client.label,
                        size / seconds,
                        outcome_note(checks, size) or f"batches of {batch}",
                    )
                )
                if args.service_seconds > 0:
                    bench_service(store, database, concurrency, client, args, size, report)
            if blackbox_port is not None:
                seconds, failures = run(
                    drive_blackbox(blackbox_port, urls, concurrency, args.blackbox_driver),
                    "asyncio",
                )
                note = f"{failures} failed" if failures else f"driver {args.blackbox_driver}"
                report.add(
                    Row("blackbox", size, concurrency, "blackbox_exporter", size / seconds, note)
                )
        store_costs(store, checks, facts, base, size, report)
    finally:
        store.close()
    report.line(
        f"SQLite file after the runs at {size:,} (db + wal): {database_mb(database):.1f} MB, "
        f"{count_checks(database):,} checks; peak RSS so far {peak_rss_mb():.0f} MB"
    )
    if args.history and size == min(args.sizes):
        history_cost(database, checks, base, args.history, report)


def bench_service(
    store: Store,
    database: Path,
    concurrency: int,
    client: Client,
    args: argparse.Namespace,
    size: int,
    report: Report,
) -> None:
    """Measure MonitorService's sustained checks/s (a failure is printed, not raised)."""
    config = bench_config((), database, concurrency, "1s")
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        # Every endpoint due now: start-up (Store.resume) gives each a slot within 1 s.
        db.execute("UPDATE endpoints SET next_check_at = NULL")
    try:
        rate, rounds = run(service(config, store, args.service_seconds, client), client.loop)
    except Exception as exc:  # service.py is young: report and go on with the other figures
        report.add(Row("service", size, concurrency, client.label, None, f"failed: {exc!r}"))
        return
    note = f"{args.service_seconds:g} s, {rounds} rounds"
    report.add(Row("service", size, concurrency, client.label, rate, note))


def save_ms(
    store: Store, checks: Sequence[tuple[StoredEndpoint, CheckResult]], config: Config
) -> float:
    """Return the median milliseconds of `save` per PER results, over chunks of PER."""
    times = []
    for start in range(0, len(checks), PER):
        chunk = checks[start : start + PER]
        started = time.perf_counter()
        save(store, chunk, config)
        times.append((time.perf_counter() - started) * PER / len(chunk))
    return statistics.median(times) * 1000


def store_costs(
    store: Store,
    checks: Sequence[tuple[StoredEndpoint, CheckResult]],
    facts: Sequence[ProbeFacts],
    config: Config,
    size: int,
    report: Report,
) -> None:
    """Print what assess and save_round cost per PER results on their own (no probing)."""
    if not checks or not facts:
        return
    started = time.perf_counter()
    for fact in facts:
        assess(fact)
    assess_ms = (time.perf_counter() - started) * 1000 * PER / len(facts)
    ms = save_ms(store, checks, config)
    report.line(
        f"at {size:,}: assess {assess_ms:.0f} ms, save_round {ms:.0f} ms per {PER:,} results "
        f"(store alone: {PER / ms * 1000:,.0f} results/s; the DB holds a few checks each)"
    )


def history_cost(
    database: Path,
    checks: Sequence[tuple[StoredEndpoint, CheckResult]],
    config: Config,
    history: int,
    report: Report,
) -> None:
    """Give every endpoint `history` more checks (one per HISTORY_STEP back), time save_round.

    Copies each endpoint's latest check row back in time with one SQL statement, so the
    checks table looks like a day of probing at a 60 s interval, which the 24-hour latency
    percentiles and the 30-day counts of every save_round read.
    """
    before = database_mb(database)
    started = time.perf_counter()
    with contextlib.closing(sqlite3.connect(database)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(checks)") if row[1] != "id"]
        step = int(HISTORY_STEP.total_seconds())
        moved = (
            f"strftime('%Y-%m-%d %H:%M:%f000', c.checked_at, '-' || (k.n * {step}) || ' seconds')"
        )
        values = ", ".join(moved if column == "checked_at" else f"c.{column}" for column in columns)
        db.execute(
            "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?)"
            f" INSERT INTO checks ({', '.join(columns)}) SELECT {values} FROM checks AS c, k"
            " WHERE c.id IN (SELECT MAX(id) FROM checks GROUP BY endpoint_id)",
            (history,),
        )
        added = db.total_changes
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filled = time.perf_counter() - started
    store = Store.open(f"sqlite:///{database}")
    try:
        ms = save_ms(store, checks[:PER], config)
    finally:
        store.close()
    per_check = (database_mb(database) - before) * 1e6 / max(added, 1)
    report.line(
        f"with {history:,} checks per endpoint in the DB ({added:,} rows added in {filled:.0f} s):"
        f" save_round {ms:,.0f} ms per {PER:,} results (store alone: {PER / ms * 1000:,.0f}/s)"
    )
    daily = 20_000 * 1440
    report.line(
        f"size per stored check: {per_check:.0f} B, so 20,000 endpoints at 60 s add "
        f"{daily * per_check / 1e9:.1f} GB of raw checks a day"
    )


def database_mb(database: Path) -> float:
    """Return the size of the SQLite database with its WAL and shared-memory files, in MB."""
    return sum(p.stat().st_size for p in database.parent.glob(f"{database.name}*")) / 1e6


def count_checks(database: Path) -> int:
    store = Store.open(f"sqlite:///{database}")
    try:
        return store.count_checks()
    finally:
        store.close()


def peak_rss_mb() -> float:
    """Return the benchmark process's peak resident set size (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- output ---------------------------------------------------------------------------------


def ratios(report: Report) -> list[str]:
    """Return monitor pipeline and service rates over blackbox's at the same size/concurrency."""
    texts = []
    for row in report.rows:
        if row.what not in ("pipeline", "service") or row.rate is None:
            continue
        blackbox = next(
            (
                other
                for other in report.rows
                if other.what == "blackbox"
                and (other.endpoints, other.concurrency) == (row.endpoints, row.concurrency)
            ),
            None,
        )
        if blackbox is not None and blackbox.rate:
            texts.append(
                f"{row.what} / blackbox at {row.endpoints:,} endpoints, c={row.concurrency}, "
                f"{row.client}: {row.rate / blackbox.rate:.2f}"
            )
    return texts


def print_tables(report: Report) -> None:
    """Print the figures as a plain table, the ratios and notes, then the same as Markdown."""
    print("\n== Summary ==\n")
    header = ("what", "endpoints", "concurrency", "client", "probes/s", "note")
    cells = [
        (
            row.what,
            f"{row.endpoints:,}",
            str(row.concurrency),
            row.client,
            "-" if row.rate is None else f"{row.rate:,.0f}",
            row.note,
        )
        for row in report.rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    right = {1, 2, 4}
    for cols in (header, *cells):
        print(
            "  ".join(
                text.rjust(width) if i in right else text.ljust(width)
                for i, (text, width) in enumerate(zip(cols, widths, strict=True))
            ).rstrip()
        )
    print()
    for text in [*ratios(report), *report.lines]:
        print(text)
    print("\nMarkdown:\n")
    print("| what | endpoints | concurrency | client | probes/s |")
    print("| --- | ---: | ---: | --- | ---: |")
    for c in cells:
        print(f"| {c[0]} | {c[1]} | {c[2]} | {c[3]} | {c[4]} |")
    print()
    for text in [*ratios(report), *report.lines]:
        print(f"- {text}")


def parse_args() -> argparse.Namespace:
    def numbers(text: str) -> list[int]:
        return [int(part.replace("_", "")) for part in text.split(",") if part]

    def names(choices: Sequence[str]) -> Callable[[str], list[str]]:
        def parse(text: str) -> list[str]:
            values = [part for part in text.split(",") if part]
            for value in values:
                if value not in choices:
                    raise argparse.ArgumentTypeError(f"{value!r}: choose from {choices}")
            return values

        return parse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 endpoints only")
    parser.add_argument("--sizes", type=numbers, default=[1000, 20000], help="1000,20000")
    parser.add_argument("--concurrency", type=numbers, default=[100, 200], help="100,200")
    parser.add_argument(
        "--transport",
        type=names(("http1", "aiohttp")),
        default=["http1"],
        help="http1 (monitor.probe's own) and/or aiohttp (httpx-aiohttp, pip-installed)",
    )
    parser.add_argument("--loop", type=names(("asyncio", "uvloop")), default=["asyncio"])
    parser.add_argument("--keepalive", choices=("default", "all", "off"), default="default")
    parser.add_argument("--guard", action="store_true", help="enforce the address policy")
    parser.add_argument("--batch", type=int, default=0, help="pipeline batch (0: concurrency)")
    parser.add_argument("--service-seconds", type=float, default=10.0, help="0 skips")
    parser.add_argument(
        "--history", type=int, default=1440, help="checks per endpoint for the store cost, 0 skips"
    )
    parser.add_argument("--no-blackbox", action="store_true")
    parser.add_argument("--blackbox-driver", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--no-metrics", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.sizes = [1000]
    return args


def main() -> None:
    """Start nginx and blackbox_exporter, measure every size, print the tables, then /metrics."""
    args = parse_args()
    report = Report()
    sniffio = (
        "installed"
        if importlib.util.find_spec("sniffio")
        else "missing (httpcore then re-imports it on every lock: about 20% of httpx's speed)"
    )
    print(
        f"{os.cpu_count()} cpus, python {sys.version.split()[0]}, httpx {httpx.__version__}, "
        f"sniffio {sniffio}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="x402-bench-") as temp, contextlib.ExitStack() as stack:
        workdir = Path(temp)
        port = stack.enter_context(nginx_target(workdir))
        blackbox_port = None
        if not args.no_blackbox:
            blackbox_port = stack.enter_context(blackbox_exporter(workdir))
        for size in args.sizes:
            bench_size(size, args, port, blackbox_port, workdir, report)
    report.line(f"peak RSS of the benchmark process: {peak_rss_mb():.0f} MB")
    print_tables(report)
    if not args.no_metrics:
        print("\n== /metrics scrape (bench/metrics_scrape.py) ==\n", flush=True)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        metrics_scrape = importlib.import_module("metrics_scrape")
        sys.argv = [sys.argv[0], "--endpoints", str(max(20_000, *args.sizes))]
        metrics_scrape.main()


if __name__ == "__main__":
    main()
