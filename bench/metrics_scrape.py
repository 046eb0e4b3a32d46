"""Print the time and size of one `/metrics` scrape over synthetic endpoints (not a test).

Usage: `.venv/bin/python bench/metrics_scrape.py [--endpoints 20000] [--repeat 5]`.
Measures `monitor.metrics.render` on a registry built by `build_registry`, i.e. collection plus
text encoding, then one GET /metrics through `WebServer` on loopback with and without gzip.
Every optional figure is set so each endpoint exports its full series set (the worst case).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.metrics import build_registry, render
from monitor.models import Outcome, Status
from monitor.snapshot import DurationHistogram, EndpointSnapshot, MonitorSnapshot
from monitor.web import MetricsFunction, WebServer, parse_listen


def synthetic_snapshot(count: int) -> MonitorSnapshot:
    """Return a snapshot of `count` endpoints with realistic label lengths and every figure set."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = tuple(Status)
    endpoints = tuple(
        EndpointSnapshot(
            slug=f"api-example-{i}-com-v1-weather-forecast",
            url=f"https://api.example-{i}.com/v1/weather/forecast?city=berlin",
            method="POST" if i % 2 else "GET",
            title=f"Weather forecast API number {i}",
            category="data",
            network="eip155:8453",
            source="bazaar",
            status=statuses[i % len(statuses)],
            up=i % 5 != 0,
            consecutive_failures=i % 4,
            uptime_30d=0.9875,
            score=87,
            payment_requirements_valid=True,
            asset_verified=True,
            facilitator_supported=i % 3 != 0,
            last_check_at=now - timedelta(seconds=i % 60),
            p50_ms=123.0 + i % 100,
            p95_ms=456.0,
        )
        for i in range(count)
    )
    return MonitorSnapshot(
        taken_at=now,
        endpoints=endpoints,
        probes_total=dict.fromkeys(Outcome, 1000),
        probe_durations=DurationHistogram().observe(0.2).observe(1.5),
        rounds_total=100,
        last_round_at=now,
    )


def main() -> None:
    """Build the snapshot once, then time `--repeat` scrapes and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    snapshot = synthetic_snapshot(args.endpoints)
    registry = build_registry(lambda: snapshot)
    times: list[float] = []
    body = b""
    for _ in range(args.repeat):
        started = time.perf_counter()
        body, _ = render(registry)
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    compressed = gzip.compress(body, compresslevel=1)
    gzip_seconds = time.perf_counter() - started
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"endpoints:       {args.endpoints}")
    print(f"series:          {series}")
    print(
        f"scrape time:     median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms over {args.repeat} runs"
    )
    print(f"body size:       {len(body) / 1e6:.1f} MB")
    print(f"gzip -1:         {len(compressed) / 1e6:.1f} MB in {gzip_seconds * 1000:.0f} ms")
    for encoding in ("identity", "gzip"):
        seconds, size = _http_scrape(lambda: render(registry), encoding)
        print(f"HTTP GET {encoding:<8} {seconds * 1000:.0f} ms, {size / 1e6:.1f} MB on the wire")


def _http_scrape(metrics: MetricsFunction, encoding: str) -> tuple[float, int]:
    """Return the time and wire size of one GET /metrics through WebServer on loopback."""
    with tempfile.TemporaryDirectory() as site:
        server = WebServer(
            "127.0.0.1:0", metrics=metrics, health=lambda: (200, {}), site_dir=Path(site)
        )
        server.start()
        try:
            host, port = parse_listen(server.address)
            connection = http.client.HTTPConnection(host, port, timeout=60)
            started = time.perf_counter()
            connection.request("GET", "/metrics", headers={"Accept-Encoding": encoding})
            size = len(connection.getresponse().read())
            seconds = time.perf_counter() - started
            connection.close()
        finally:
            server.stop()
    return seconds, size


if __name__ == "__main__":
    main()
