"""Loopback peers of the probe benchmark: nginx targets (plain and a TLS fleet), blackbox_exporter.

Everything listens on 127.0.0.x only and runs in the foreground as a child of the benchmark,
stopped when the benchmark ends (also when it dies: PR_SET_PDEATHSIG). The TLS fleet gets a
certificate authority made for the run (trustme), a wildcard certificate for its host names,
and blackbox_exporter sees the same names through a private mount namespace whose /etc/hosts
is a generated file: the machine's own /etc/hosts is never edited.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHALLENGE = ROOT / "tests/fixtures/x402/02a-v2-evm-spec-PAYMENT-REQUIRED-header.b64"
ADDRESSES = tuple(f"127.0.0.{n}" for n in range(1, 9))
START_TIMEOUT = 10.0
FLEET_DOMAIN = "fleet.test"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies (Linux), so none linger."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def running(command: list[str], log: Path, ready: Callable[[], bool]) -> Iterator[None]:
    """Run `command` until the block ends; wait until `ready()` or fail showing its log."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(host: str, port: int) -> bool:
    """Return whether host:port accepts a TCP connection."""
    try:
        socket.create_connection((host, port), 0.2).close()
    except OSError:
        return False
    return True


def need(binary: str, package: str) -> str:
    """Return the path of `binary`, or exit naming the Debian package that provides it."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if path is None:
        sys.exit(
            f"{binary} not found: apt-get update -qq && "
            f"apt-get install -y -qq --no-install-recommends {package}"
        )
    return path


@contextlib.contextmanager
def nginx_target(workdir: Path, tls: FleetTls | None = None) -> Iterator[int]:
    """Run nginx answering 402 with a real challenge on every ADDRESSES:port; yield the port.

    With `tls`, nginx speaks HTTPS only, with the fleet's wildcard certificate.
    """
    binary = need("nginx", "nginx")
    challenge = CHALLENGE.read_text().strip()
    port = free_port()
    temp_paths = "\n".join(
        f"  {kind}_temp_path {workdir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    ssl = " ssl" if tls is not None else ""
    listen = "\n".join(f"    listen {address}:{port}{ssl};" for address in ADDRESSES)
    if tls is not None:
        listen += f"\n    ssl_certificate {tls.cert};\n    ssl_certificate_key {tls.key};"
    workdir = workdir / ("nginx-tls" if tls is not None else "nginx")
    workdir.mkdir(exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/err.log;
worker_processes 1;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
http {{
  access_log off;
{temp_paths}
  server {{
{listen}
    default_type application/json;
    location / {{
      add_header PAYMENT-REQUIRED "{challenge}" always;
      return 402 '{{}}';
    }}
  }}
}}
"""
    )
    command = [binary, "-p", str(workdir), "-e", str(workdir / "err.log"), "-c", str(conf)]
    with running(
        command,
        workdir / "nginx.out",
        lambda: all(accepts(address, port) for address in ADDRESSES),
    ):
        yield port


@contextlib.contextmanager
def blackbox_exporter(workdir: Path, fleet: Fleet | None = None) -> Iterator[int]:
    """Run prometheus-blackbox-exporter with an `http_402` module; yield its port.

    With `fleet`, it trusts the fleet's CA and resolves the fleet's names through a private
    /etc/hosts (`unshare --mount` + a bind mount: root only; RuntimeError otherwise).
    """
    binary = need("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    conf = workdir / ("blackbox-fleet.yml" if fleet else "blackbox.yml")
    tls = f"      tls_config:\n        ca_file: {fleet.tls.ca}\n" if fleet else ""
    conf.write_text(
        "modules:\n"
        "  http_402:\n"
        "    prober: http\n"
        "    timeout: 5s\n"
        "    http:\n"
        "      valid_status_codes: [402]\n"
        "      method: GET\n"
        "      preferred_ip_protocol: ip4\n" + tls
    )
    port = free_port()
    command = [
        binary,
        f"--config.file={conf}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    if fleet is not None:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            raise RuntimeError("blackbox_exporter on the TLS fleet needs root and unshare")
        hosts = workdir / "fleet-hosts"
        hosts.write_text(
            "127.0.0.1 localhost\n"
            + "".join(f"{address} {name}\n" for name, address in fleet.table.items())
        )
        mount = f"mount --bind {hosts} /etc/hosts && exec " + " ".join(command)
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount]
    log = workdir / ("blackbox-fleet.out" if fleet else "blackbox.out")
    with running(command, log, lambda: accepts("127.0.0.1", port)):
        yield port


@dataclass(frozen=True)
class FleetTls:
    """The run's certificate authority and the fleet's wildcard certificate (PEM files)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Fleet:
    """HTTPS endpoints on distinct host names, each name mapped to one of ADDRESSES."""

    tls: FleetTls
    table: dict[str, str]
    urls: list[str]

    async def resolve(self, host: str, port: int) -> list[str]:
        """The injected resolver: the fleet's names, without DNS."""
        return [self.table[host]]


def fleet_tls(workdir: Path) -> FleetTls:
    """Create a CA and a `*.fleet.test` certificate signed by it (needs trustme)."""
    try:
        import trustme
    except ImportError:
        sys.exit("trustme is not installed: .venv/bin/pip install -e '.[dev]'")
    authority = trustme.CA()
    issued = authority.issue_cert(f"*.{FLEET_DOMAIN}")
    tls = FleetTls(workdir / "ca.pem", workdir / "fleet.pem", workdir / "fleet.key")
    authority.cert_pem.write_to_path(str(tls.ca))
    issued.private_key_pem.write_to_path(str(tls.key))
    for index, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(tls.cert), append=index > 0)
    return tls


def fleet(tls: FleetTls, hosts: int, port: int) -> Fleet:
    """Return `hosts` endpoints on distinct names (one each), spread over ADDRESSES."""
    table = {f"h{i:05d}.{FLEET_DOMAIN}": ADDRESSES[i % len(ADDRESSES)] for i in range(hosts)}
    urls = [f"https://{name}:{port}/e/{i}" for i, name in enumerate(table)]
    return Fleet(tls, table, urls)


async def drive_blackbox(
    port: int, urls: Sequence[str], concurrency: int, driver: str = "raw"
) -> tuple[float, int]:
    """Request one blackbox probe per URL, `concurrency` at once; return (seconds, failures).

    Driver `raw` keeps `concurrency` HTTP/1.1 keep-alive connections over asyncio streams;
    `httpx` uses an httpx AsyncClient. httpx's pool checks every idle keep-alive connection on
    each request, so with 100 of them to one origin it caps the driver far below what
    blackbox_exporter serves (see bench/README.md): `raw` measures blackbox, not the driver.
    """
    pending = iter(urls)
    failures = 0

    def succeeded(body: bytes) -> bool:
        return b"\nprobe_success 1" in body

    async def raw_worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for url in pending:
                writer.write(
                    f"GET /probe?module=http_402&target={quote(url, safe='')} HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
                )
                if not succeeded(await read_response(reader)):
                    failures += 1
        finally:
            writer.close()
            await writer.wait_closed()

    async def httpx_worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for url in pending:
            response = await client.get(
                f"http://127.0.0.1:{port}/probe", params={"module": "http_402", "target": url}
            )
            if not succeeded(response.content):
                failures += 1

    started = time.perf_counter()
    if driver == "raw":
        await asyncio.gather(*(raw_worker() for _ in range(concurrency)))
    else:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
            await asyncio.gather(*(httpx_worker(client) for _ in range(concurrency)))
    return time.perf_counter() - started, failures


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one HTTP/1.1 response (Content-Length or chunked) and return its body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
    }
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # the empty line after the last chunk (no trailers)
        return bytes(body)
    return await reader.readexactly(int(headers.get(b"content-length", b"0")))
