"""`monitor run` as a real subprocess against the loopback demo seller: /healthz, /metrics,
SIGTERM, restart; promtool on a real scrape; a real Prometheus server scraping it."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import threading
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
SHUTDOWN_S = 3
REQUEST_S = 30.0
"""Timeout of one request of the test; a poll that times out is simply tried again."""
EVENT_S = 120.0
"""How long a test waits for an event (a start, a round, a scrape) before it fails.

Waits end as soon as the event happens; the deadline only bounds a broken run. Starting the
package (apprise, sqlalchemy, ...) alone takes many seconds on a busy CI machine.
"""
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(
    check: Callable[[], T | None],
    what: str,
    process: subprocess.Popen[Any],
    output: Callable[[], str] = lambda: "",
) -> T:
    """Poll `check` until it returns a value; fail at once if `process` exits, or after EVENT_S."""
    deadline = time.monotonic() + EVENT_S
    while True:
        try:
            value = check()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None  # not up yet: a refused connection, or a 503 "not ready" page
        if value is not None:
            return value
        code = process.poll()
        if code is not None:
            raise AssertionError(f"the process exited ({code}) before {what}:\n{output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {EVENT_S:g} s:\n{output()}")
        time.sleep(0.1)


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
                    # A timeout far above the loopback answer time: a busy machine must not
                    # turn the demo seller's healthy endpoints into timeouts.
                    "probe": {"interval": "2s", "timeout": "30s", "allow_private_addresses": True},
                    "shutdown_timeout": f"{SHUTDOWN_S}s",
                    "endpoints": [
                        {"url": demo_url + path, "method": "GET", "title": path} for path in PATHS
                    ],
                }
            )
        )
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Start `monitor run` and return once it logs that it serves (fail if it exits)."""
        self.lines = []
        process = self.process = subprocess.Popen(
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
        # Read the log as it comes: the readiness line is an event, and a full pipe would
        # block the monitor.
        self._reader = threading.Thread(target=self._read, args=(process, self.lines))
        self._reader.start()
        ready = f"monitor running, serving {self.base}/"
        self.wait(lambda: True if ready in self.output else None, f"the log line {ready!r}")

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: list[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait(self, check: Callable[[], T | None], what: str) -> T:
        """Poll `check` until it returns a value; fail at once if the monitor exits."""
        assert self.process is not None
        return _wait(check, what, self.process, lambda: self.output)

    def terminate(self) -> tuple[int, float, str]:
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=EVENT_S)
        took = time.monotonic() - started
        self._join()
        return code, took, self.output

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EVENT_S)
        self._join()

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(EVENT_S)
            self._reader = None

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        body = httpx.get(self.base + "/metrics", timeout=REQUEST_S).text
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
    health = monitor.wait(lambda: _healthy(monitor), "/healthz answering 200")
    assert health["status"] == "ok"
    up = monitor.wait(lambda: _up_by_url(monitor), "one x402_endpoint_up series per endpoint")
    assert up == {demo_url + path: value for path, value in PATHS.items()}
    series = monitor.metrics()
    assert sum(series["x402_probes_total"].values()) >= len(PATHS)
    assert series["x402_monitor_probe_rounds_total"][()] >= 1
    assert "process_resident_memory_bytes" in series
    site = monitor.wait(lambda: _index(monitor), "the rendered index")
    assert "healthy" in site

    code, took, output = monitor.terminate()
    assert code == 0, output
    # Stops in about shutdown_timeout at most; the bound is generous (load), a hang is not.
    assert took < 10 * SHUTDOWN_S, output
    assert "stopped after" in output
    assert "status of" in output  # flips are logged at INFO
    assert "round:" in output

    with sqlite3.connect(monitor.database) as raw:
        first = raw.execute("SELECT COUNT(*) FROM checks").fetchone()[0]
    assert first >= len(PATHS)

    # A restart continues the history in the same database.
    monitor.start()
    monitor.wait(lambda: _up_by_url(monitor), "metrics after restart")
    monitor.wait(lambda: True if _count(monitor.database) > first else None, "new checks")
    code, _, output = monitor.terminate()
    assert code == 0, output
    with sqlite3.connect(monitor.database) as raw:
        failures = raw.execute(
            "SELECT consecutive_failures FROM endpoints WHERE url LIKE '%/error'"
        ).fetchone()[0]
    assert failures >= 2


def _healthy(monitor: Monitor) -> dict[str, Any] | None:
    answer = httpx.get(monitor.base + "/healthz", timeout=REQUEST_S)
    body: dict[str, Any] = answer.json()
    return body if answer.status_code == 200 else None


def _index(monitor: Monitor) -> str | None:
    page = httpx.get(monitor.base + "/", timeout=REQUEST_S).text
    return page if "/v1/valid" in page else None


def _count(database: Path) -> int:
    with sqlite3.connect(database) as raw:
        return int(raw.execute("SELECT COUNT(*) FROM checks").fetchone()[0])


@pytest.mark.integration
def test_promtool_accepts_a_real_scrape(monitor: Monitor, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    monitor.start()
    monitor.wait(lambda: _up_by_url(monitor), "a first round")
    body = httpx.get(monitor.base + "/metrics", timeout=REQUEST_S).content
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=body,
        capture_output=True,
        timeout=EVENT_S,
        check=False,
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
    monitor.wait(lambda: _up_by_url(monitor), "a first round")
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
    log = tmp_path / "prometheus.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:

        def query() -> list[dict[str, Any]] | None:
            answer = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/query",
                params={"query": "x402_endpoint_up"},
                timeout=REQUEST_S,
            )
            results: list[dict[str, Any]] = answer.json()["data"]["result"]
            return results if len(results) == len(PATHS) else None

        results = _wait(query, "x402_endpoint_up from Prometheus", server, log.read_text)
    finally:
        server.terminate()
        server.wait(timeout=EVENT_S)
    values = {r["metric"]["endpoint"]: float(r["value"][1]) for r in results}
    assert sorted(values.values()) == sorted(PATHS.values())
    assert all(r["metric"]["job"] == "x402-monitor" for r in results)
