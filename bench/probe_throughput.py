"""Print probe throughput of the monitor next to blackbox_exporter's (not a test; never asserts).

Usage: `.venv/bin/python bench/probe_throughput.py [--quick] [--workload loopback,https]
[--sizes 1000,20000] [--hosts 1000] [--concurrency 100,200] [--transport http1,aiohttp]
[--loop asyncio,uvloop] [--guard] [--keepalive default|all|off]`; bench/README.md explains
every figure.

Two workloads, each measured beside blackbox_exporter probing the same targets in the same run:

- `loopback`: nginx (Debian package `nginx`) on 127.0.0.1-127.0.0.8 answering every path with
  HTTP 402 and a real v2 `PAYMENT-REQUIRED` challenge; `--sizes` endpoints share the 8
  addresses, so keep-alive connections are reused as shipped.
- `https`: what real fleets look like: `--hosts` distinct host names (`h00000.fleet.test`, ...)
  that an injected resolver maps to the 8 addresses (blackbox_exporter sees them through a
  private /etc/hosts in its own mount namespace), nginx speaking TLS with a certificate from a
  CA the run creates, every host probed once per pass on a new TLS connection.

For each size and concurrency, on the monitor's real code path (`parse_config`, `Store.open`
on a temporary SQLite file, `sync_config_endpoints`):

- probe only: one `Prober.probe_many` over every endpoint (no assess, no store);
- pipeline: batches of `--batch` endpoints, at most two in flight (the service's capacity of
  2 x concurrency), each probed with `Prober.probe_many`, judged with `service.judge` and
  saved with `service.save` in a worker thread under a writer lock; timed end to end;
- service (loopback): `MonitorService` itself for `--service-seconds` with a 1 s interval
  (every endpoint always due): what its dispatch sustains, checks counted in the database;
- blackbox: blackbox_exporter probing the same URLs, driven by `concurrency` keep-alive
  `GET /probe?module=http_402&target=...` requests at once.

Then (loopback) `assess` and `save_round` per 1,000 results, `save_round` again with
`--history` checks per endpoint in the database (a day at a 60 s interval), peak memory, the
SQLite file sizes, and bench/metrics_scrape.py's `/metrics` figures. Everything listens on
127.0.0.x only, counts and durations are bounded, and every process started is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from https_fleet import bench_https
from loopback_targets import (
    ADDRESSES,
    blackbox_exporter,
    drive_blackbox,
    nginx_target,
)
from probe_clients import Client, run
from probe_runs import bench_config, now, pipeline, probe_only, service
from store_costs import count_checks, database_mb, history_cost, peak_rss_mb, store_costs
from throughput_report import Report, Row, facts_note, outcome_note, print_tables

from monitor.models import CheckResult, ProbeFacts
from monitor.store import Store, StoredEndpoint


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
    parser.add_argument(
        "--workload",
        type=names(("loopback", "https")),
        default=["loopback", "https"],
        help="loopback (8 addresses, keep-alive) and/or https (a TLS fleet of --hosts names)",
    )
    parser.add_argument("--hosts", type=int, default=1000, help="host names of the https fleet")
    parser.add_argument(
        "--repeat", type=int, default=3, help="https: passes per client, interleaved (median)"
    )
    parser.add_argument(
        "--tls-offload",
        type=names(("on", "off")),
        default=["on"],
        help="https, http1: certificate checks in the thread pool (on, shipped) or on the loop",
    )
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
        if "https" in args.workload:
            with contextlib.ExitStack() as fleet_stack:
                bench_https(args, workdir, fleet_stack, report)
        if "loopback" in args.workload:
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
