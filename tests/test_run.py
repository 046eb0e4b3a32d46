"""`monitor run` as a real subprocess against the loopback demo seller: /healthz, /metrics,
SIGTERM, restart; promtool on a real scrape; a real Prometheus server scraping it."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tools import require_tool

REPO = Path(__file__).resolve().parent.parent
PATHS = {"/v1/valid": 1.0, "/v2/valid": 1.0, "/error": 0.0, "/free": 0.0}
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None  # not up yet: a refused connection, or a 503 "not ready" page
        if value is not None:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Monitor:
    """A `monitor run` subprocess on a config written into a temp folder."""

    def __init__(self, tmp_path: Path, demo_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = tmp_path / "config.yaml"
        self.database = tmp_path / "data" / "monitor.db"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "database": "data/monitor.db",
                    "server": {"listen": f"127.0.0.1:{self.port}"},
                    "site": {"output_dir": "site", "render_interval": "1s"},
                    "probe": {"interval": "2s", "timeout": "1s", "allow_private_addresses": True},
                    "shutdown_timeout": "3s",
                    "endpoints": [
                        {"url": demo_url + path, "method": "GET", "title": path} for path in PATHS
                    ],
                }
            )
        )
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "--log-level",
                "info",
                "run",
                "--config",
                str(self.config),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def terminate(self) -> tuple[int, float, str]:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=15)
        return self.process.returncode, time.monotonic() - started, output

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=5)

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        body = httpx.get(self.base + "/metrics", timeout=5).text
        series: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                series.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                    sample.value
                )
        return series


@pytest.fixture
def monitor(tmp_path: Path, demo_url: str) -> Iterator[Monitor]:
    process = Monitor(tmp_path, demo_url)
    yield process
    process.kill()


def _up_by_url(monitor: Monitor) -> dict[str, float] | None:
    series = monitor.metrics()
    info = series.get("x402_endpoint_info", {})
    slug_to_url = {dict(labels)["endpoint"]: dict(labels)["url"] for labels in info}
    up = {
        slug_to_url[dict(labels)["endpoint"]]: value
        for labels, value in series.get("x402_endpoint_up", {}).items()
    }
    return up if len(up) == len(PATHS) else None


@pytest.mark.integration
def test_run_serves_health_metrics_and_stops_on_sigterm(monitor: Monitor, demo_url: str) -> None:
    monitor.start()
    health = _wait(lambda: _healthy(monitor), 15, "/healthz to answer 200")
    assert health["status"] == "ok"
    up = _wait(lambda: _up_by_url(monitor), 15, "one x402_endpoint_up series per endpoint")
    assert up == {demo_url + path: value for path, value in PATHS.items()}
    series = monitor.metrics()
    assert sum(series["x402_probes_total"].values()) >= len(PATHS)
    assert series["x402_monitor_probe_rounds_total"][()] >= 1
    assert "process_resident_memory_bytes" in series
    site = _wait(lambda: _index(monitor), 10, "the rendered index")
    assert "healthy" in site

    code, took, output = monitor.terminate()
    assert code == 0, output
    assert took < 3 + 2
    assert "status of" in output  # flips are logged at INFO
    assert "round:" in output

    with sqlite3.connect(monitor.database) as raw:
        first = raw.execute("SELECT COUNT(*) FROM checks").fetchone()[0]
    assert first >= len(PATHS)

    # A restart continues the history in the same database.
    monitor.start()
    _wait(lambda: _up_by_url(monitor), 15, "metrics after restart")
    _wait(
        lambda: True if _count(monitor.database) > first else None, 15, "new checks after restart"
    )
    code, _, output = monitor.terminate()
    assert code == 0, output
    with sqlite3.connect(monitor.database) as raw:
        failures = raw.execute(
            "SELECT consecutive_failures FROM endpoints WHERE url LIKE '%/error'"
        ).fetchone()[0]
    assert failures >= 2


def _healthy(monitor: Monitor) -> dict[str, Any] | None:
    answer = httpx.get(monitor.base + "/healthz", timeout=2)
    body: dict[str, Any] = answer.json()
    return body if answer.status_code == 200 else None


def _index(monitor: Monitor) -> str | None:
    page = httpx.get(monitor.base + "/", timeout=2).text
    return page if "/v1/valid" in page else None


def _count(database: Path) -> int:
    with sqlite3.connect(database) as raw:
        return int(raw.execute("SELECT COUNT(*) FROM checks").fetchone()[0])


@pytest.mark.integration
def test_promtool_accepts_a_real_scrape(monitor: Monitor, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    monitor.start()
    _wait(lambda: _up_by_url(monitor), 15, "a first round")
    body = httpx.get(monitor.base + "/metrics", timeout=5).content
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    assert result.stdout.decode().strip() == ""
    assert result.stderr.decode().strip() == ""


@pytest.mark.integration
def test_a_real_prometheus_scrapes_the_monitor(
    monitor: Monitor, tmp_path: Path, demo_url: str
) -> None:
    prometheus = require_tool("prometheus")
    monitor.start()
    _wait(lambda: _up_by_url(monitor), 15, "a first round")
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "x402-monitor",
                        "static_configs": [{"targets": [f"127.0.0.1:{monitor.port}"]}],
                    }
                ],
            }
        )
    )
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def query() -> list[dict[str, Any]] | None:
            answer = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/query",
                params={"query": "x402_endpoint_up"},
                timeout=2,
            )
            results: list[dict[str, Any]] = answer.json()["data"]["result"]
            return results if len(results) == len(PATHS) else None

        results = _wait(query, 30, "Prometheus to return x402_endpoint_up")
    finally:
        server.terminate()
        server.wait(timeout=10)
    values = {r["metric"]["endpoint"]: float(r["value"][1]) for r in results}
    assert sorted(values.values()) == sorted(PATHS.values())
    assert all(r["metric"]["job"] == "x402-monitor" for r in results)
