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
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.alert_config import ChannelConfig
from monitor.alerts import DeliveryResult, Notifier
from monitor.config import Config, ProbeConfig, SourceConfig, load_config
from monitor.discovery import FacilitatorClient
from monitor.durations import format_duration, parse_duration
from monitor.indexing import CrawlSummary, crawl_source, crawler_for
from monitor.metrics import build_registry
from monitor.metrics import render as render_metrics
from monitor.models import CheckResult, EndpointSpec, JsonValue, MonitorError, ProbeFacts
from monitor.notify import alert_context, deliver_due, send_test
from monitor.pages import site_details, store_snapshot
from monitor.probe import Prober
from monitor.report import check_json, print_check_table, print_validation, validation_json
from monitor.service import MonitorService, judge_one, probe_round
from monitor.site import RenderReport, SiteError, render_site
from monitor.snapshot import MonitorSnapshot
from monitor.store import Store, StoredEndpoint
from monitor.urls import is_http_url, normalise_url
from monitor.web import WebServer

log = logging.getLogger("monitor")

EXIT_OK = 0
DUPLICATE_SIGNAL_S = 0.5
"""A signal this soon after the first is the same one delivered twice (process and group)."""
EXIT_INVALID = 1
EXIT_USAGE = 2
_METHODS = ["GET", "HEAD", "DELETE", "POST", "PUT", "PATCH", "OPTIONS"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler logs every job run at INFO; the monitor's own round lines say what matters.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.root.level))
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

    validate = commands.add_parser(
        "validate",
        help="probe one URL once and explain whether a standard x402 client can pay it",
    )
    validate.add_argument("url", help="the endpoint URL")
    validate.add_argument("--method", type=str.upper, choices=_METHODS, help="HTTP method")
    validate.add_argument("--body", metavar="JSON", help="JSON request body to send")
    validate.add_argument(
        "--facilitator", metavar="URL", help="facilitator base URL to cross-check the offer with"
    )
    validate.add_argument(
        "--allow-private", action="store_true", help="allow loopback and private addresses"
    )
    validate.add_argument("--timeout", default="10s", help="whole exchange timeout (10s)")
    validate.add_argument("--json", action="store_true", help="print one JSON object")
    validate.set_defaults(handler=_validate)

    alerts = commands.add_parser("alerts", help="alert channels: send a test, list firing alerts")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    test = alert_commands.add_parser("test", help="send a test notification through every channel")
    _config_argument(test)
    test.set_defaults(handler=_alerts_test)
    status = alert_commands.add_parser("status", help="list the firing alerts")
    _config_argument(status)
    status.set_defaults(handler=_alerts_status)

    discover = commands.add_parser("discover", help="crawl the Bazaar catalogues of sources now")
    _config_argument(discover)
    discover.add_argument("--source", action="append", metavar="NAME", help="only this source")
    discover.add_argument("--dry-run", action="store_true", help="crawl and count, store nothing")
    discover.add_argument("--json", action="store_true", help="print the summary as one object")
    discover.set_defaults(handler=_discover)

    render = commands.add_parser("render", help="render the static directory site now")
    _config_argument(render)
    render.add_argument("--output", type=Path, help="output folder (default: site.output_dir)")
    render.set_defaults(handler=_render_command)

    run = commands.add_parser(
        "run", help="run the monitor: probe on schedule, serve /metrics, /healthz and the site"
    )
    _config_argument(run)
    run.set_defaults(handler=_run)
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


async def _probe(
    store: Store, endpoints: list[StoredEndpoint], config: Config, *, show_progress: bool
) -> list[tuple[StoredEndpoint, CheckResult]]:
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
            Prober(config.probe, clock=_now) as prober,
            _facilitator_client(config) as facilitators,
        ):
            report = await probe_round(
                store, prober, endpoints, config, advance, facilitators, alert_context(config)
            )
        if alert_context(config) is not None:
            async with Notifier(user_agent=config.probe.user_agent) as notifier:
                await deliver_due(store, notifier, config, _now, Counter())
    return report.checks


def _facilitator_client(config: Config) -> FacilitatorClient:
    return FacilitatorClient(
        user_agent=config.probe.user_agent,
        clock=_now,
        timeout=config.probe.timeout,
        ttl=config.probe.facilitator_ttl,
    )


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    return asyncio.run(_serve(config, args.config.parent))


async def _serve(config: Config, base_dir: Path) -> int:
    """Run the service until SIGINT/SIGTERM; a second signal exits at once."""
    store = Store.open(config.database_url(base_dir))
    store.sync_config_endpoints([endpoint.to_spec() for endpoint in config.endpoints], _now())
    site_dir = config.site_dir(base_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    first_signal_at: list[float] = []

    def on_signal(number: signal.Signals) -> None:
        now = loop.time()
        if first_signal_at and now - first_signal_at[0] > DUPLICATE_SIGNAL_S:
            log.warning("second %s: exiting now", number.name)
            os._exit(130)
        if first_signal_at:
            return  # the same signal delivered to the process and its group: not a second one
        first_signal_at.append(now)
        grace = format_duration(config.shutdown_timeout)
        log.info("%s: stopping (in-flight probes get %s)", number.name, grace)
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, on_signal, number)
    try:
        async with (
            Prober(config.probe, clock=_now) as prober,
            _facilitator_client(config) as facilitators,
            Notifier(user_agent=config.probe.user_agent) as notifier,
        ):
            service = MonitorService(
                config,
                store,
                prober,
                clock=_now,
                facilitators=facilitators,
                render=lambda snapshot: _render(store, snapshot, site_dir, config),
                notifier=notifier,
            )
            registry = build_registry(lambda: service.snapshot)
            web = WebServer(
                config.server.listen,
                metrics=lambda: render_metrics(registry),
                health=service.health,
                site_dir=site_dir,
            )
            try:
                web.start()
            except OSError as error:
                raise MonitorError(
                    f"server.listen {config.server.listen}: cannot listen ({error.strerror})"
                ) from None
            try:
                await service.start()
                log.info("monitor running, serving http://%s/", web.address)
                await stop.wait()
                await service.stop(config.shutdown_timeout)
            finally:
                web.stop()
    finally:
        store.close()
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
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
        probe = ProbeConfig(
            timeout=parse_duration(args.timeout),
            allow_private_addresses=args.allow_private,
            concurrency=1,
            per_host=1,
        )
    except ValueError as error:
        raise MonitorError(f"--timeout: {error}") from None
    spec = EndpointSpec(
        url=normalise_url(args.url),
        method=args.method,
        body=body,
        has_body=args.body is not None,
        facilitator=args.facilitator.rstrip("/") if args.facilitator else None,
        source="cli",
    )
    result = asyncio.run(_validate_once(spec, probe))
    if args.json:
        print(json.dumps(validation_json(spec.url, result), sort_keys=True))
    else:
        print_validation(spec.url, result)
    if result.http_status is None:
        return EXIT_USAGE
    return EXIT_OK if result.payment_requirements_valid else EXIT_INVALID


async def _validate_once(spec: EndpointSpec, probe: ProbeConfig) -> CheckResult:
    async with (
        Prober(probe, clock=_now) as prober,
        FacilitatorClient(user_agent=probe.user_agent, clock=_now, timeout=probe.timeout) as client,
    ):
        facts = (await prober.probe_many([spec]))[0]
        return await judge_one(spec, facts, client)


def _alerts_test(args: argparse.Namespace) -> int:
    """Send a `test` notification through every channel; exit 1 when any failed."""
    config = _load(args.config)
    if not config.alerts.channels:
        raise MonitorError(
            "alerts.channels: no channel configured (add a webhook, alertmanager or apprise one)"
        )

    async def send() -> list[tuple[ChannelConfig, DeliveryResult]]:
        async with Notifier(user_agent=config.probe.user_agent) as notifier:
            return await send_test(notifier, config.alerts.channels, _now(), config.site.base_url)

    failed = 0
    for channel, result in asyncio.run(send()):
        verdict = "ok" if result.ok else ("refused" if result.permanent else "failed")
        failed += not result.ok
        print(f"{channel.describe()}: {verdict} ({result.detail})")
    return EXIT_OK if not failed else EXIT_INVALID


def _alerts_status(args: argparse.Namespace) -> int:
    """List firing alerts: endpoint, status, failures in a row, since, last error."""
    config = _load(args.config)
    store = Store.open(config.database_url(args.config.parent))
    try:
        firing = store.firing()
    finally:
        store.close()
    if not firing:
        print("no alert is firing")
    for endpoint in firing:
        since = endpoint.alert.get("fired_at") if isinstance(endpoint.alert, dict) else None
        print(
            f"FIRING {endpoint.spec.url}  status {endpoint.state.status}, "
            f"{endpoint.state.consecutive_failures} failures in a row, since {since}, "
            f"last error: {endpoint.last_error or '-'}"
        )
    return EXIT_OK


def _render(
    store: Store,
    snapshot: MonitorSnapshot,
    output: Path,
    config: Config,
    progress: Callable[[int, int], None] | None = None,
) -> RenderReport:
    return render_site(
        snapshot,
        site_details(store, snapshot),
        output,
        base_url=config.site.base_url,
        progress=progress,
    )


def _render_command(args: argparse.Namespace) -> int:
    """Render the site from the database into site.output_dir (or --output)."""
    config = _load(args.config)
    output = args.output or config.site_dir(args.config.parent)
    store = Store.open(config.database_url(args.config.parent))
    try:
        snapshot = store_snapshot(store, _now())
        bar = Progress(
            TextColumn("rendering"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=(console := Console(stderr=True)),
            transient=True,
            disable=not console.is_terminal,
        )
        with bar:
            task = bar.add_task("rendering", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = _render(store, snapshot, output, config, progress)
    except SiteError as error:
        raise MonitorError(f"site: {error}") from None
    finally:
        store.close()
    print(
        f"rendered {len(snapshot.endpoints)} endpoints into {output} in {report.seconds:.2f} s: "
        f"{report.written} files written, {report.unchanged} unchanged, {report.removed} removed"
    )
    for slug in report.refused:
        print(f"warning: endpoint {slug!r} left out: its slug is not safe as a file name")
    return EXIT_OK


def _discover(args: argparse.Namespace) -> int:
    """Crawl each configured source once; print a summary per source (exit 1 if any failed)."""
    config = _load(args.config)
    sources = [s for s in config.sources if not args.source or s.name in args.source]
    unknown = set(args.source or ()) - {source.name for source in config.sources}
    if unknown:
        raise MonitorError(f"--source {sorted(unknown)[0]}: no such source under sources:")
    if not sources:
        raise MonitorError("sources: none configured (add a bazaar source, see README)")
    store = Store.open(config.database_url(args.config.parent))
    try:
        summaries = asyncio.run(_crawl_all(store, sources, config, args.dry_run, not args.json))
    finally:
        store.close()
    if args.json:
        print(json.dumps({"sources": [s.as_json() for s in summaries]}, sort_keys=True))
    else:
        for summary in summaries:
            rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.rejected.items()))
            state = "complete" if summary.complete else f"stopped: {summary.error}"
            print(
                f"{summary.source}: {summary.seen} seen, {summary.new} new, "
                f"{summary.updated} updated, {summary.delisted} delisted, "
                f"{sum(summary.rejected.values())} rejected{f' ({rejected})' if rejected else ''}"
                f" - {state}{' (dry run)' if args.dry_run else ''}"
            )
    return EXIT_OK if all(summary.complete for summary in summaries) else EXIT_INVALID


async def _crawl_all(
    store: Store, sources: list[SourceConfig], config: Config, dry_run: bool, show: bool
) -> list[CrawlSummary]:
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[seen]} items"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show or not console.is_terminal,
    )
    summaries = []
    with bar:
        for source in sources:
            task = bar.add_task(f"crawling {source.name}", total=None, seen=0)

            def progress(summary: CrawlSummary, task: TaskID = task) -> None:
                bar.update(task, seen=summary.seen)

            async with crawler_for(source, config) as crawler:
                summaries.append(
                    await crawl_source(
                        store, crawler, source, config, _now, dry_run=dry_run, on_page=progress
                    )
                )
    return summaries
