"""`monitor run` (the service) and `monitor render` (the site)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
from collections.abc import Callable
from pathlib import Path

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
    DUPLICATE_SIGNAL_S,
    EXIT_OK,
    facilitator_client,
    load_config_file,
    log,
    new_prober,
    utc_now,
)
from monitor.config import Config
from monitor.durations import format_duration
from monitor.metrics import build_registry
from monitor.metrics import render as render_metrics
from monitor.models import MonitorError
from monitor.pages import site_details, store_snapshot
from monitor.service import MonitorService
from monitor.site import RenderReport, SiteError, render_site
from monitor.snapshot import MonitorSnapshot
from monitor.store import Store
from monitor.web import WebServer


def run_command(args: argparse.Namespace) -> int:
    config = load_config_file(args.config, channels=True)
    _raise_open_file_limit()
    return asyncio.run(serve(config, args.config.parent))


def _raise_open_file_limit() -> None:
    """Lift the soft open-file limit to the hard one: probes and clients each hold a socket.

    Many systems start processes at 1,024 descriptors, fewer than `probe.concurrency` x 2
    probes plus `server.max_connections` clients may need.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def serve(config: Config, base_dir: Path) -> int:
    """Run the service until SIGINT/SIGTERM; a second signal exits at once."""
    store = Store.open(config.database_url(base_dir))
    store.sync_config_endpoints([endpoint.to_spec() for endpoint in config.endpoints], utc_now())
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
            new_prober(config.probe) as prober,
            facilitator_client(config) as facilitators,
            Notifier(user_agent=config.probe.user_agent) as notifier,
        ):
            service = MonitorService(
                config,
                store,
                prober,
                clock=utc_now,
                facilitators=facilitators,
                render=lambda snapshot: render_from_store(store, snapshot, site_dir, config),
                notifier=notifier,
            )
            registry = build_registry(lambda: service.snapshot)
            web = WebServer(
                config.server.listen,
                metrics=lambda: render_metrics(registry),
                health=service.health,
                site_dir=site_dir,
                max_connections=config.server.max_connections,
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


def render_from_store(
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


def render_command(args: argparse.Namespace) -> int:
    """Render the site from the database into site.output_dir (or --output)."""
    config = load_config_file(args.config, channels=False)
    output = args.output or config.site_dir(args.config.parent)
    store = Store.open(config.database_url(args.config.parent))
    try:
        snapshot = store_snapshot(store, utc_now())
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

            report = render_from_store(store, snapshot, output, config, progress)
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
