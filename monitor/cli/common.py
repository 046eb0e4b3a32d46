"""Shared pieces of the command line: exit codes, config loading, the clock."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from monitor.cli.redaction import config_secrets, protect
from monitor.config import Config, ProbeConfig, load_config
from monitor.config_reading import referenced_variables
from monitor.discovery import FacilitatorClient
from monitor.models import ConfigError
from monitor.probe import Prober, build_transport

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


def load_config_file(path: Path, *, channels: bool) -> Config:
    """Load a config file with the process environment for `${VAR}`.

    `channels`: whether the command uses the alert channels (sends notifications, or checks
    the whole config). Without, their variables may be unset and the Config has no channels.
    From here on, the config's secrets (channel URLs and headers, the database password, every
    `${VAR}` value the file refers to) are masked in every log line.
    """
    config = load_config(path, os.environ, with_channels=channels)
    protect(config_secrets(config))
    with contextlib.suppress(OSError):  # read once already by load_config
        names = referenced_variables(path.read_text(encoding="utf-8"))
        protect([os.environ[name] for name in names if os.environ.get(name)])
    return config


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


def new_prober(config: ProbeConfig) -> Prober:
    """Return the prober of `config`, its egress proxy taken from the environment if asked.

    An unusable proxy variable is a ConfigError naming it (its value may hold a password).
    """
    try:
        transport = build_transport(config, environ=os.environ)
    except ValueError as error:
        raise ConfigError([f"probe.proxy: {error}"]) from None
    return Prober(config, clock=utc_now, transport=transport)
