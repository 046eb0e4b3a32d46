"""The `monitor` command: subcommands over the library; the only composition root.

Exit codes: 0 the command ran (whatever the endpoints answered), 2 configuration or usage error.
Errors the user can fix print one line per problem and no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.config import Config, format_duration, load_config
from monitor.models import CheckResult, MonitorError, ProbeFacts
from monitor.probe import Prober
from monitor.report import check_json, print_check_table
from monitor.service import probe_round
from monitor.store import Store, StoredEndpoint
from monitor.urls import is_http_url, normalise_url

EXIT_OK = 0
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        result: int = args.handler(args)
    except MonitorError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Health monitor and directory indexer for x402-paid APIs."
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check_config = commands.add_parser("check-config", help="validate a config file")
    _config_argument(check_config)
    check_config.set_defaults(handler=_check_config)

    check = commands.add_parser("check", help="probe every endpoint once and show the figures")
    _config_argument(check)
    check.add_argument("--json", action="store_true", help="print JSON Lines, one per endpoint")
    check.add_argument(
        "--endpoint",
        action="append",
        metavar="URL",
        help="probe only this endpoint (repeatable); it must be in the config or the database",
    )
    check.set_defaults(handler=_check)
    return parser


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="config file (config.yaml)"
    )


def _load(path: Path) -> Config:
    return load_config(path, os.environ)


def _now() -> datetime:
    return datetime.now(UTC)


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    probe = config.probe
    print(f"{args.config}: valid")
    print(f"  database       {config.database_url(args.config.parent)}")
    print(f"  server         {config.server.listen}")
    print(f"  site           {config.site.output_dir} -> {config.site.base_url}")
    print(
        f"  probe          every {format_duration(probe.interval)}, timeout "
        f"{format_duration(probe.timeout)}, concurrency {probe.concurrency}, "
        f"{probe.per_host} per host, private addresses "
        f"{'allowed' if probe.allow_private_addresses else 'refused'}"
    )
    thresholds = config.thresholds
    print(
        f"  thresholds     down after {thresholds.down_after} hard failures, recover after "
        f"{thresholds.recover_after} passes, latency budget "
        f"{format_duration(thresholds.latency_budget)}"
    )
    print(f"  retention      raw checks {format_duration(config.retention.raw)}")
    print(f"  endpoints      {len(config.endpoints)}")
    for endpoint in config.endpoints:
        print(f"    {endpoint.method or 'auto':7} {endpoint.url}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    store = Store.open(config.database_url(args.config.parent))
    try:
        now = _now()
        store.sync_config_endpoints([endpoint.to_spec() for endpoint in config.endpoints], now)
        endpoints = _selected(store, args.endpoint)
        results = asyncio.run(_probe(store, endpoints, config, show_progress=not args.json))
        refreshed = {endpoint.id: endpoint for endpoint in store.endpoints()}
        now = _now()
        rows = [
            (refreshed[endpoint.id], result, refreshed[endpoint.id].figures(now))
            for endpoint, result in results
        ]
    finally:
        store.close()
    if args.json:
        for stored, result, endpoint_figures in rows:
            line = check_json(stored.spec.url, stored.slug, result, endpoint_figures)
            print(json.dumps(line, sort_keys=True))
    else:
        print_check_table([(stored.spec.url, result, figs) for stored, result, figs in rows])
    return EXIT_OK


def _selected(store: Store, urls: list[str] | None) -> list[StoredEndpoint]:
    if not urls:
        return store.endpoints()
    for url in urls:
        if not is_http_url(url):
            raise MonitorError(f"--endpoint {url}: not an http(s) URL")
    wanted = {normalise_url(url) for url in urls}
    endpoints = store.endpoints(wanted)
    missing = wanted - {endpoint.spec.url for endpoint in endpoints}
    if missing:
        raise MonitorError(
            f"--endpoint {sorted(missing)[0]}: not in the config or the database "
            "(add it under endpoints: in the config)"
        )
    return endpoints


async def _probe(
    store: Store, endpoints: list[StoredEndpoint], config: Config, *, show_progress: bool
) -> list[tuple[StoredEndpoint, CheckResult]]:
    progress = Progress(
        TextColumn("probing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("probing", total=len(endpoints))

        def advance(_facts: ProbeFacts) -> None:
            progress.advance(task)

        async with Prober(config.probe, clock=_now) as prober:
            report = await probe_round(store, prober, endpoints, config, advance)
    return report.checks
