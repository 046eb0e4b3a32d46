"""Shared helpers for tests that run external tools (promtool from Debian's `prometheus`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

DEBIAN_PACKAGES = {"promtool": "prometheus", "prometheus": "prometheus"}
"""Which Debian package provides each tool, for the skip message."""


def in_ci() -> bool:
    """Return whether the `CI` environment variable is set to a true-ish value."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_tool(name: str) -> str:
    """Return the path of executable `name`; skip the test when absent, fail instead under CI.

    In CI a missing tool is a broken set-up, not a reason to pass silently.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    package = DEBIAN_PACKAGES.get(name, name)
    message = f"{name} not installed (Debian package {package}; .ci/run installs it)"
    if in_ci():
        pytest.fail(f"{message}, and CI is set: tests that need it must run in CI")
    pytest.skip(message)


def run_tool(
    args: Sequence[str], *, stdin: bytes | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run a tool and return the finished process (output captured as text, never raising)."""
    return subprocess.run(
        list(args),
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
