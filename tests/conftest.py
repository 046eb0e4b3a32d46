"""Shared fixtures: one loopback demo x402 seller for the whole test session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `demo` is not part of the installed package; make the repository root importable when
# pytest is started without it on sys.path (pyproject has no `pythonpath` setting).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from hostile_http import RawServer, Route, Serve  # noqa: E402

from demo.server import DemoServer, start_demo_server  # noqa: E402

DEMO_SLOW_DELAY_S = 2.0
"""Default `/slow` delay in tests (the CLI default): 10x the 0.2 s timeout that must fire first."""


@pytest.fixture(scope="session")
def demo_server() -> Iterator[DemoServer]:
    """Run the demo seller on 127.0.0.1 (free port) for the session; stop it afterwards."""
    server, _ = start_demo_server("127.0.0.1", 0, slow_delay=DEMO_SLOW_DELAY_S)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo_url(demo_server: DemoServer) -> str:
    """Return the demo seller's base URL, e.g. `http://127.0.0.1:41234` (no trailing slash)."""
    return demo_server.base_url


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Yield a function starting hostile RawServers; close them all at the end of the test."""
    servers: list[RawServer] = []

    def start(routes: dict[str, Route]) -> RawServer:
        server = RawServer(routes)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
