"""The `monitor` command: subcommands over the library; the only composition root.

Exit codes: 0 the command ran (whatever the endpoints answered), 2 configuration or usage error.
Errors the user can fix print one line per problem and no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor.cli.catalogue import alerts_status_command, alerts_test_command, discover_command
from monitor.cli.common import EXIT_USAGE, METHODS, config_argument, log
from monitor.cli.probing import check_command, check_config_command, validate_command
from monitor.cli.redaction import install_redaction
from monitor.cli.serving import render_command, run_command
from monitor.models import MonitorError

__all__ = ["configure_logging", "log", "main"]

LIBRARIES_THAT_LOG_SECRETS = ("httpx", "httpcore", "urllib3", "requests", "apprise")
"""They log request URLs (httpx at INFO, urllib3 at DEBUG), Apprise URLs with their tokens and
header values (apprise at DEBUG and TRACE, despite its masking), or response headers (httpcore
at DEBUG): kept at WARNING whatever `--log-level` says."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(logging, args.log_level.upper()))
    try:
        result: int = args.handler(args)
    except MonitorError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return result


def configure_logging(level: int) -> None:
    """Log to stderr at `level`; quiet the libraries that print secrets; mask known secrets.

    Known secrets are added later, once a command has read its config (`redaction.protect`).
    """
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # APScheduler logs every job run at INFO; the monitor's own round lines say what matters.
    for name in ("apscheduler", *LIBRARIES_THAT_LOG_SECRETS):
        logging.getLogger(name).setLevel(max(logging.WARNING, level))
    install_redaction()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="Health monitor and directory indexer for x402-paid APIs."
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check_config = commands.add_parser("check-config", help="validate a config file")
    config_argument(check_config)
    check_config.set_defaults(handler=check_config_command)

    check = commands.add_parser("check", help="probe every endpoint once and show the figures")
    config_argument(check)
    check.add_argument("--json", action="store_true", help="print JSON Lines, one per endpoint")
    check.add_argument(
        "--endpoint",
        action="append",
        metavar="URL",
        help="probe only this endpoint (repeatable); it must be in the config or the database",
    )
    check.set_defaults(handler=check_command)

    validate = commands.add_parser(
        "validate",
        help="probe one URL once and explain whether a standard x402 client can pay it",
    )
    validate.add_argument("url", help="the endpoint URL")
    validate.add_argument("--method", type=str.upper, choices=METHODS, help="HTTP method")
    validate.add_argument("--body", metavar="JSON", help="JSON request body to send")
    validate.add_argument(
        "--facilitator", metavar="URL", help="facilitator base URL to cross-check the offer with"
    )
    validate.add_argument(
        "--allow-private", action="store_true", help="allow loopback and private addresses"
    )
    validate.add_argument("--timeout", default="10s", help="whole exchange timeout (10s)")
    validate.add_argument("--json", action="store_true", help="print one JSON object")
    validate.set_defaults(handler=validate_command)

    alerts = commands.add_parser("alerts", help="alert channels: send a test, list firing alerts")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    test = alert_commands.add_parser("test", help="send a test notification through every channel")
    config_argument(test)
    test.set_defaults(handler=alerts_test_command)
    status = alert_commands.add_parser("status", help="list the firing alerts")
    config_argument(status)
    status.set_defaults(handler=alerts_status_command)

    discover = commands.add_parser("discover", help="crawl the Bazaar catalogues of sources now")
    config_argument(discover)
    discover.add_argument("--source", action="append", metavar="NAME", help="only this source")
    discover.add_argument("--dry-run", action="store_true", help="crawl and count, store nothing")
    discover.add_argument("--json", action="store_true", help="print the summary as one object")
    discover.set_defaults(handler=discover_command)

    render = commands.add_parser("render", help="render the static directory site now")
    config_argument(render)
    render.add_argument("--output", type=Path, help="output folder (default: site.output_dir)")
    render.set_defaults(handler=render_command)

    run = commands.add_parser(
        "run", help="run the monitor: probe on schedule, serve /metrics, /healthz and the site"
    )
    config_argument(run)
    run.set_defaults(handler=run_command)
    return parser
