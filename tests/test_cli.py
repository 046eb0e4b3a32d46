"""`monitor check --json` and `monitor check-config` end to end: a real subprocess, a real
loopback seller serving real x402 payloads, a real SQLite file."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main

REPO = Path(__file__).resolve().parent.parent

# path on the demo seller -> (declared method, expected outcome, expected status after 1 check)
EXPECTED: dict[str, tuple[str | None, str, str]] = {
    "/v1/valid": ("GET", "pass", "healthy"),
    "/v1/solana": ("GET", "pass", "healthy"),
    "/v1/post-bodyfields": ("POST", "pass", "healthy"),
    "/v2/valid": ("GET", "pass", "healthy"),
    "/v2/sdk": ("GET", "pass", "healthy"),
    "/redirect": ("GET", "pass", "healthy"),
    "/post-only": (None, "pass", "healthy"),
    "/invalid/empty-payto": ("GET", "soft_fail", "degraded"),
    "/invalid/no-challenge": ("GET", "soft_fail", "degraded"),
    "/free": ("GET", "soft_fail", "degraded"),
    "/redirect-loop": ("GET", "soft_fail", "degraded"),
    "/not-found": ("GET", "hard_fail", "down"),
    "/error": ("GET", "hard_fail", "down"),
    "/slow?delay=1": ("GET", "hard_fail", "down"),
    "/rate-limited": ("GET", "inconclusive", "unknown"),
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(tmp_path: Path, demo_url: str, *, allow_private: bool = True) -> Path:
    endpoints: list[dict[str, Any]] = []
    for path, (method, _, _) in EXPECTED.items():
        entry: dict[str, Any] = {"url": demo_url + path}
        if method:
            entry["method"] = method
        endpoints.append(entry)
    endpoints.append({"url": f"http://127.0.0.1:{_closed_port()}/closed", "method": "GET"})
    config = {
        "database": "data/monitor.db",
        "probe": {
            "timeout": "500ms",
            "connect_timeout": "1s",
            "concurrency": 8,
            "per_host": 4,
            "allow_private_addresses": allow_private,
        },
        "endpoints": endpoints,
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return config_path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def _lines(stdout: str) -> dict[str, dict[str, Any]]:
    objects = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return {obj["url"]: obj for obj in objects}


@pytest.mark.integration
def test_check_json_classifies_every_demo_endpoint(tmp_path: Path, demo_url: str) -> None:
    config = _write_config(tmp_path, demo_url)
    first = _run("check", "--config", str(config), "--json")
    assert first.returncode == 0, first.stderr
    rows = _lines(first.stdout)
    assert len(rows) == len(EXPECTED) + 1
    for path, (_, outcome, status) in EXPECTED.items():
        row = rows[demo_url + path]
        assert (row["outcome"], row["status"]) == (outcome, status), (path, row)
    closed = next(row for url, row in rows.items() if url.endswith("/closed"))
    assert (closed["outcome"], closed["status"], closed["http_status"]) == (
        "hard_fail",
        "down",
        None,
    )

    required = {
        "url", "method", "outcome", "status", "http_status", "latency_ms", "x402_version",
        "payment_requirements_valid", "consecutive_failures", "uptime_30d", "p50_ms", "score",
        "error", "findings",
    }  # fmt: skip
    for row in rows.values():
        assert required <= set(row)

    v2 = rows[demo_url + "/v2/valid"]
    assert (v2["http_status"], v2["x402_version"], v2["payment_requirements_valid"]) == (
        402,
        2,
        True,
    )
    assert v2["error"] is None
    assert v2["latency_ms"] > 0
    assert rows[demo_url + "/v1/valid"]["x402_version"] == 1
    post_only = rows[demo_url + "/post-only"]
    assert (post_only["method"], post_only["method_guessed"]) == ("POST", True)
    invalid = rows[demo_url + "/invalid/empty-payto"]
    assert invalid["payment_requirements_valid"] is False
    assert any(
        f["path"] == "accepts[0].payTo" and f["severity"] == "error" for f in invalid["findings"]
    )
    assert invalid["error"].startswith("invalid challenge: ")
    assert rows[demo_url + "/not-found"]["error"] == "HTTP 404"
    assert rows[demo_url + "/slow?delay=1"]["error"] == "timeout after 500ms"
    assert rows[demo_url + "/free"]["uptime_30d"] == 0.0
    assert rows[demo_url + "/rate-limited"]["uptime_30d"] is None
    assert all(row["score"] is None for row in rows.values())  # unrated below 10 checks

    # A second round continues the history in the same database file.
    second = _rows_after_run(config)
    assert second[demo_url + "/free"]["consecutive_failures"] == 2
    assert second[demo_url + "/v1/valid"]["consecutive_failures"] == 0
    assert second[demo_url + "/v1/valid"]["uptime_30d"] == 1.0
    assert second[demo_url + "/rate-limited"]["consecutive_failures"] == 0


def _rows_after_run(config: Path) -> dict[str, dict[str, Any]]:
    result = _run("check", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    return _lines(result.stdout)


@pytest.mark.integration
def test_check_one_endpoint_and_refused_private_target(tmp_path: Path, demo_url: str) -> None:
    config = _write_config(tmp_path, demo_url, allow_private=False)
    result = _run("check", "--config", str(config), "--json", "--endpoint", demo_url + "/v1/valid")
    assert result.returncode == 0, result.stderr
    rows = _lines(result.stdout)
    assert list(rows) == [demo_url + "/v1/valid"]
    row = rows[demo_url + "/v1/valid"]
    assert (row["outcome"], row["status"]) == ("inconclusive", "unknown")
    assert row["error"].startswith("blocked: ")


@pytest.mark.integration
def test_check_prints_a_table(tmp_path: Path, demo_url: str) -> None:
    config = _write_config(tmp_path, demo_url)
    result = _run("check", "--config", str(config), "--endpoint", demo_url + "/v2/valid")
    assert result.returncode == 0, result.stderr
    assert "/v2/valid" in result.stdout
    assert "healthy" in result.stdout
    assert "pass" in result.stdout


def test_bad_config_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "endpoints": [
                    {"url": "https://a.example/"},
                    {"url": "https://b.example/"},
                    {"url": "nope"},
                ]
            }
        )
    )
    result = _run("check", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: endpoints[2].url: not an http(s) URL"]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unknown_endpoint_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("endpoints: [{url: 'https://a.example/x'}]\n")
    code = main(["check", "--config", str(config), "--endpoint", "https://b.example/y"])
    assert code == 2
    assert "not in the config or the database" in capsys.readouterr().err


def test_check_config_summarises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", str(REPO / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid" in out
    assert "POST    https://x402.dopamint.ai/api/ai/generations/images/seedream" in out
    assert main(["check-config", "--config", str(tmp_path / "absent.yaml")]) == 2


@pytest.mark.integration
def test_render_builds_the_site_from_the_database(tmp_path: Path, demo_url: str) -> None:
    config = _write_config(tmp_path, demo_url)
    assert _run("check", "--config", str(config), "--json").returncode == 0
    output = tmp_path / "public"
    result = _run("render", "--config", str(config), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"rendered {len(EXPECTED) + 1} endpoints into {output}")
    index = (output / "index.html").read_text()
    assert "/v2/valid" in index
    pages = sorted(path.name for path in (output / "endpoints").iterdir())
    assert len(pages) == len(EXPECTED) + 1
    endpoints = json.loads((output / "api" / "endpoints.json").read_text())
    assert (
        len(endpoints["endpoints"] if isinstance(endpoints, dict) else endpoints)
        == len(EXPECTED) + 1
    )
    # A second render with nothing new keeps the site and reports unchanged files.
    again = _run("render", "--config", str(config), "--output", str(output))
    assert again.returncode == 0, again.stderr
    assert " 0 removed" in again.stdout
    # Refuses to replace a folder that is not a site it rendered.
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    refused = _run("render", "--config", str(config), "--output", str(foreign))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: site: ")
    assert (foreign / "notes.txt").read_text() == "keep me"
