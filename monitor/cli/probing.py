"""`monitor check-config`, `monitor check` and `monitor validate`."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections import Counter
from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.alerts import Notifier
from monitor.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    facilitator_client,
    load_config_file,
    new_prober,
    utc_now,
)
from monitor.config import Config, ProbeConfig
from monitor.discovery import FacilitatorClient
from monitor.durations import format_duration, parse_duration
from monitor.models import CheckResult, EndpointSpec, JsonValue, MonitorError, ProbeFacts
from monitor.notify import alert_context, deliver_due
from monitor.report import check_json, print_check_table, print_validation, validation_json
from monitor.service import judge_one, probe_round
from monitor.store import Store, StoredEndpoint
from monitor.urls import is_http_url, normalise_url

_URL_PASSWORD = re.compile(r"^([\w+]+://[^:/@]*):[^@]*@")
"""The user:password@ part of a SQLAlchemy URL, read as SQLAlchemy reads it."""


def check_config_command(args: argparse.Namespace) -> int:
    config = load_config_file(args.config, channels=True)  # checks every variable
    probe = config.probe
    print(f"{args.config}: valid")
    print(f"  database       {without_password(config.database_url(args.config.parent))}")
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


def without_password(url: str) -> str:
    """Return a database URL with its password (often a `${VAR}` secret) shown as `***`."""
    return _URL_PASSWORD.sub(r"\1:***@", url, count=1)


def check_command(args: argparse.Namespace) -> int:
    config = load_config_file(args.config, channels=True)  # delivers due notifications
    store = Store.open(config.database_url(args.config.parent))
    try:
        now = utc_now()
        store.sync_config_endpoints([endpoint.to_spec() for endpoint in config.endpoints], now)
        endpoints = selected_endpoints(store, args.endpoint)
        results = asyncio.run(probe_all(store, endpoints, config, show_progress=not args.json))
        refreshed = {endpoint.id: endpoint for endpoint in store.endpoints()}
        now = utc_now()
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


def selected_endpoints(store: Store, urls: list[str] | None) -> list[StoredEndpoint]:
    if not urls:
        # Delisted endpoints and MCP tools are kept and shown, but not probed.
        return [e for e in store.endpoints() if not e.delisted and e.kind == "http"]
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


async def probe_all(
    store: Store, endpoints: list[StoredEndpoint], config: Config, *, show_progress: bool
) -> list[tuple[StoredEndpoint, CheckResult]]:
    alerts = alert_context(config)
    progress = Progress(
        TextColumn("probing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=(console := Console(stderr=True)),
        transient=True,
        # Not on a terminal (CI, cron, pipes) a progress bar is only noise on stderr.
        disable=not show_progress or not console.is_terminal,
    )
    with progress:
        task = progress.add_task("probing", total=len(endpoints))

        def advance(_facts: ProbeFacts) -> None:
            progress.advance(task)

        async with (
            new_prober(config.probe) as prober,
            facilitator_client(config) as facilitators,
        ):
            report = await probe_round(
                store, prober, endpoints, config, advance, facilitators, alerts
            )
        if alerts is not None:
            async with Notifier(user_agent=config.probe.user_agent) as notifier:
                await deliver_due(store, notifier, config, utc_now, Counter())
    return report.checks


def validate_command(args: argparse.Namespace) -> int:
    """Probe one URL; exit 0 valid challenge, 1 answered but not valid, 2 no answer or misuse."""
    if not is_http_url(args.url):
        raise MonitorError(f"{args.url}: not an http(s) URL")
    if args.facilitator is not None and not is_http_url(args.facilitator):
        raise MonitorError(f"--facilitator {args.facilitator}: not an http(s) URL")
    body: JsonValue = None
    if args.body is not None:
        try:
            body = json.loads(args.body)
        except json.JSONDecodeError as error:
            raise MonitorError(f"--body: not JSON ({error.msg} at character {error.pos})") from None
    try:
        timeout = parse_duration(args.timeout)
    except ValueError as error:
        raise MonitorError(f"--timeout: {error}") from None
    if timeout <= timedelta(0):
        raise MonitorError(f"--timeout: must be positive (longer than 0s), got {args.timeout}")
    probe = ProbeConfig(
        timeout=timeout, allow_private_addresses=args.allow_private, concurrency=1, per_host=1
    )
    spec = EndpointSpec(
        url=normalise_url(args.url),
        method=args.method,
        body=body,
        has_body=args.body is not None,
        facilitator=args.facilitator.rstrip("/") if args.facilitator else None,
        source="cli",
    )
    result = asyncio.run(validate_once(spec, probe))
    if args.json:
        print(json.dumps(validation_json(spec.url, result), sort_keys=True))
    else:
        print_validation(spec.url, result)
    if result.http_status is None:
        return EXIT_USAGE
    return EXIT_OK if result.payment_requirements_valid else EXIT_INVALID


async def validate_once(spec: EndpointSpec, probe: ProbeConfig) -> CheckResult:
    async with (
        new_prober(probe) as prober,
        FacilitatorClient(
            user_agent=probe.user_agent, clock=utc_now, timeout=probe.timeout
        ) as client,
    ):
        facts = (await prober.probe_many([spec]))[0]
        return await judge_one(spec, facts, client)
