"""How the probe benchmark sends probes: monitor.probe's transport or httpx-aiohttp's.

Both keep the httpx API the Prober uses. On the TLS fleet both get the fleet's resolver (its
names, no DNS) and a client context that trusts the run's certificate authority.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import ssl
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from loopback_targets import Fleet

from monitor.addresses import refusal_reason
from monitor.config import ProbeConfig
from monitor.probe import AddressRefusedError, build_transport, resolve

T = TypeVar("T")


@dataclass(frozen=True)
class Client:
    """How probes are sent: transport, event loop, keep-alive and the address guard."""

    transport: str
    loop: str
    keepalive: str
    guard: bool
    tls_offload: bool = True
    """http1 only: check certificates in the handshake thread pool (False: on the loop)."""

    @property
    def label(self) -> str:
        parts = [self.transport, self.loop]
        if self.keepalive != "default":
            parts.append(f"keepalive-{self.keepalive}")
        if self.guard:
            parts.append("guard")
        if self.transport == "http1" and not self.tls_offload:
            parts.append("tls-on-loop")
        return "/".join(parts)


def loopback_allowed(address: str) -> str | None:
    """The address policy with 127.0.0.0/8 allowed, so `--guard` runs its checks on nginx."""
    return None if address.startswith("127.") else refusal_reason(address)


def optional(module: str, package: str) -> Any:
    """Import an optional module (not a project dependency), or exit saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        sys.exit(f"{module} is not installed: .venv/bin/pip install {package}")


def make_transport(
    client: Client, config: ProbeConfig, fleet: Fleet | None = None
) -> httpx.AsyncBaseTransport:
    """Return the probe transport: monitor.probe's own, or httpx-aiohttp's with the same limits.

    keepalive `default` is the shipped setting (up to `concurrency` idle connections; aiohttp:
    idle connections up to the limit), `all` is the same for http1, `off` opens a new
    connection per request. `guard` enforces the address policy (loopback allowed): http1
    through its own connect step, aiohttp through `guarded_socket`. With `fleet`, names
    resolve through the fleet's table and TLS trusts the fleet's CA.
    """
    verify: ssl.SSLContext | bool = True
    if fleet is not None:
        verify = ssl.create_default_context(cafile=str(fleet.tls.ca))
    if client.transport == "http1":
        max_idle = 0 if client.keepalive == "off" else None
        resolver = fleet.resolve if fleet is not None else resolve
        if client.guard:
            guarded = config.model_copy(update={"allow_private_addresses": False})
            return build_transport(
                guarded,
                policy=loopback_allowed,
                max_idle=max_idle,
                verify=verify,
                resolver=resolver,
            )
        return build_transport(config, max_idle=max_idle, verify=verify, resolver=resolver)
    aiohttp = optional("aiohttp", "httpx-aiohttp")
    httpx_aiohttp = optional("httpx_aiohttp", "httpx-aiohttp")

    def session() -> Any:
        connector = aiohttp.TCPConnector(
            limit=config.concurrency,
            limit_per_host=config.per_host,
            keepalive_timeout=5.0 if client.keepalive != "off" else None,
            force_close=client.keepalive == "off",
            socket_factory=guarded_socket if client.guard else None,
            resolver=_FleetResolver(fleet) if fleet is not None else None,
            ssl=verify if isinstance(verify, ssl.SSLContext) else True,
            use_dns_cache=fleet is None,
        )
        return aiohttp.ClientSession(connector=connector, auto_decompress=False)

    aiohttp_transport: httpx.AsyncBaseTransport = httpx_aiohttp.AiohttpTransport(client=session)
    return aiohttp_transport


def guarded_socket(address_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp `socket_factory`: refuse the exact address about to be connected, else a socket.

    aiohttp calls it for every connection attempt, after resolving (IP literals included), so
    the address checked is the address used, as with monitor.probe.GuardedBackend.
    """
    family, kind, protocol, _, sockaddr = address_info
    reason = loopback_allowed(str(sockaddr[0]))
    if reason is not None:
        raise AddressRefusedError(str(sockaddr[0]), reason)
    sock = socket.socket(family, kind, protocol)
    sock.setblocking(False)
    return sock


def run(coroutine: Coroutine[Any, Any, T], loop: str) -> T:
    """Run a coroutine to completion on a fresh asyncio or uvloop event loop."""
    if loop == "uvloop":
        uvloop = optional("uvloop", "uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    with asyncio.Runner() as runner:
        return runner.run(coroutine)


class _FleetResolver:
    """An aiohttp resolver (AbstractResolver's interface) over the fleet's table."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        return [
            {
                "hostname": host,
                "host": self._fleet.table[host],
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None
