"""Shared pieces of the command line: exit codes, config loading, the clock."""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from monitor.config import Config, load_config
from monitor.discovery import FacilitatorClient

log = logging.getLogger("monitor")

EXIT_OK = 0
DUPLICATE_SIGNAL_S = 0.5
"""A signal this soon after the first is the same one delivered twice (process and group)."""
EXIT_INVALID = 1
EXIT_USAGE = 2
METHODS = ["GET", "HEAD", "DELETE", "POST", "PUT", "PATCH", "OPTIONS"]


def config_argument(parser: argparse.ArgumentParser) -> None:
    """Add the `--config PATH` option (default config.yaml)."""
    parser.add_argument(
        "--config", type=Path, default=Path("config.yaml"), help="config file (config.yaml)"
    )


def load_config_file(path: Path) -> Config:
    """Load a config file with the process environment for `${VAR}`."""
    return load_config(path, os.environ)


def utc_now() -> datetime:
    """Return the current time in UTC (the one clock the command line reads)."""
    return datetime.now(UTC)


def facilitator_client(config: Config) -> FacilitatorClient:
    """Return the facilitator client the config asks for (timeout, cache TTL)."""
    return FacilitatorClient(
        user_agent=config.probe.user_agent,
        clock=utc_now,
        timeout=config.probe.timeout,
        ttl=config.probe.facilitator_ttl,
    )
