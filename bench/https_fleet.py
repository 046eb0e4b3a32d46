"""The HTTPS workload of the probe benchmark: a TLS fleet of distinct host names.

What real fleets look like: every host is probed once per pass on a new TCP and TLS
connection (probed once per interval, a host's idle connection has long expired), by the
monitor's transport and by httpx-aiohttp, and by blackbox_exporter on the same URLs. Passes of
the clients and of blackbox_exporter are interleaved `--repeat` times and each figure is the
median, so a machine whose speed drifts during the run does not favour whoever ran first.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections import defaultdict
from pathlib import Path

from loopback_targets import blackbox_exporter, drive_blackbox, fleet, fleet_tls, nginx_target
from probe_clients import Client, run
from probe_runs import bench_config, now, pipeline, probe_only
from throughput_report import Report, Row, facts_note, outcome_note

from monitor.store import Store

HTTPS = "https"


def bench_https(
    args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack, report: Report
) -> None:
    """Measure the TLS fleet: distinct host names, a new TLS connection per probe."""
    print(f"\n== https: {args.hosts:,} host names, TLS, a new connection per probe ==", flush=True)
    tls = fleet_tls(workdir)
    port = stack.enter_context(nginx_target(workdir, tls))
    targets = fleet(tls, args.hosts, port)
    blackbox_port = None
    if not args.no_blackbox:
        try:
            blackbox_port = stack.enter_context(blackbox_exporter(workdir, targets))
        except RuntimeError as exc:
            report.line(f"https: blackbox_exporter skipped ({exc})")
    database = workdir / "bench-https.db"
    base = bench_config(targets.urls, database, max(args.concurrency), "1m")
    specs = [endpoint.to_spec() for endpoint in base.endpoints]
    clients = [
        Client(transport, loop, "off", guard=True, tls_offload=offload == "on")
        for transport in args.transport
        for loop in args.loop
        for offload in (args.tls_offload if transport == "http1" else ["on"])
    ]
    store = Store.open(f"sqlite:///{database}")
    try:
        store.sync_config_endpoints(specs, now())
        by_url = {endpoint.spec.url: endpoint for endpoint in store.endpoints()}
        endpoints = [by_url[url] for url in targets.urls]
        size = len(endpoints)
        cold = True
        for concurrency in args.concurrency:
            config = bench_config((), database, concurrency, "1m")
            rates: dict[tuple[str, str], list[float]] = defaultdict(list)
            notes: dict[tuple[str, str], str] = {}
            for _ in range(max(args.repeat, 1)):
                for client in clients:
                    seconds, facts = run(probe_only(config, specs, client, targets), client.loop)
                    rates["probe only", client.label].append(size / seconds)
                    notes["probe only", client.label] = facts_note(facts)
                    passed = pipeline(config, store, endpoints, concurrency, client, targets)
                    seconds, checks = run(passed, client.loop)
                    what = "pipeline 1st" if cold else "pipeline"
                    cold = False  # the challenge memo is warm for every later pass
                    rates[what, client.label].append(size / seconds)
                    notes[what, client.label] = outcome_note(checks, size)
                if blackbox_port is not None:
                    seconds, failures = run(
                        drive_blackbox(blackbox_port, targets.urls, concurrency), "asyncio"
                    )
                    rates["blackbox", "blackbox_exporter"].append(size / seconds)
                    notes["blackbox", "blackbox_exporter"] = (
                        f"{failures} failed" if failures else ""
                    )
            for (what, label), samples in rates.items():
                note = notes[what, label] or _spread(samples)
                row = Row(what, size, concurrency, label, statistics.median(samples), note, HTTPS)
                report.add(row)
    finally:
        store.close()


def _spread(samples: list[float]) -> str:
    if len(samples) < 2:
        return "one pass"
    return f"median of {len(samples)} ({min(samples):,.0f}-{max(samples):,.0f})"
