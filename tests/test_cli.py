"""`monitor check --json` and `monitor check-config` end to end: a real subprocess, a real
loopback seller serving real x402 payloads, a real SQLite file."""

from __future__ import annotations

import json
import os
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
    "/slow?delay=30": ("GET", "hard_fail", "down"),
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
            "timeout": "3s",
            "connect_timeout": "3s",
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
        timeout=120,
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
    assert rows[demo_url + "/slow?delay=30"]["error"] == "timeout after 3s"
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


DATABASE_COMMANDS = [
    ["check"],
    ["run"],
    ["render"],
    ["discover", "--dry-run"],
    ["alerts", "status"],
]


def _database_config(tmp_path: Path, database: str) -> Path:
    config = tmp_path / "config.yaml"
    document = {
        "database": database,
        "server": {"listen": "127.0.0.1:0"},
        "site": {"output_dir": str(tmp_path / "site")},
        "sources": [{"type": "bazaar", "name": "cdp", "url": "http://127.0.0.1:9/"}],
    }
    config.write_text(yaml.safe_dump(document))
    return config


def _unopenable(tmp_path: Path, kind: str) -> tuple[str, Path]:
    """Return a `database:` value that cannot be opened and the file path it names."""
    if kind == "below a file":
        (tmp_path / "plain").write_text("a file, not a folder")
        return "plain/data/monitor.db", tmp_path / "plain" / "data" / "monitor.db"
    if kind == "a folder":
        (tmp_path / "folder.db").mkdir()
        return "folder.db", tmp_path / "folder.db"
    if kind == "not a database":
        (tmp_path / "notes.db").write_text("these are notes, not SQLite\n" * 100)
        return "notes.db", tmp_path / "notes.db"
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return "locked/monitor.db", locked / "monitor.db"


UNOPENABLE = [
    "below a file",
    "a folder",
    "not a database",
    pytest.param(
        "unwritable folder",
        marks=pytest.mark.skipif(
            hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere"
        ),
    ),
]


@pytest.mark.parametrize("kind", UNOPENABLE)
@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], kind: str
) -> None:
    database, path = _unopenable(tmp_path, kind)
    config = _database_config(tmp_path, database)
    code = main([*command, "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: database: cannot open {path} ("), lines[0]


@pytest.mark.parametrize("command", [["check-config"], *DATABASE_COMMANDS], ids=" ".join)
def test_an_empty_database_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    config = _database_config(tmp_path, "")
    assert main([*command, "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: database: must not be empty (a file path such as data/monitor.db, "
        "or a SQLAlchemy URL)"
    ]


def test_an_unopenable_database_prints_no_traceback(tmp_path: Path) -> None:
    database, path = _unopenable(tmp_path, "below a file")
    result = _run("run", "--config", str(_database_config(tmp_path, database)))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: database: cannot open {path} (cannot create its folder {path.parent}: "
        "Not a directory)"
    ]


def _config_with_secret_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("X402_TEST_HOOK_URL", raising=False)
    monkeypatch.setenv("X402_TEST_SET", "set")
    config = tmp_path / "config.yaml"
    config.write_text(
        "database: data/monitor.db\n"
        "server: {listen: '127.0.0.1:0'}\n"
        f"site: {{output_dir: '{tmp_path / 'site'}'}}\n"
        "sources: [{type: bazaar, name: cdp, url: 'http://127.0.0.1:9/'}]\n"
        "alerts:\n"
        "  channels:\n"
        "    - name: ops\n"
        "      type: webhook\n"
        "      url: ${X402_TEST_HOOK_URL}\n"
        "      secret: ${X402_TEST_SET}\n"
    )
    return config


UNSET_HOOK = (
    "error: alerts.channels[0].url: environment variable X402_TEST_HOOK_URL is not set "
    "(export it, or write ${X402_TEST_HOOK_URL:-default})"
)


@pytest.mark.parametrize(
    ("command", "output"),
    [
        (["render"], "rendered 0 endpoints into "),
        (["alerts", "status"], "no alert is firing"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_commands_that_send_nothing_need_no_channel_variable(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    output: str,
) -> None:
    config = _config_with_secret_channel(tmp_path, monkeypatch)
    code = main([*command, "--config", str(config)])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    assert captured.out.startswith(output)


def test_discover_needs_no_channel_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config_with_secret_channel(tmp_path, monkeypatch)
    code = main(["discover", "--dry-run", "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 1  # the catalogue is unreachable (port 9): the config itself was accepted
    assert captured.out.startswith("cdp: 0 seen"), captured
    assert "error:" not in captured.err


@pytest.mark.parametrize("command", [["check-config"], ["check"], ["alerts", "test"]], ids=" ".join)
def test_commands_that_send_or_validate_everything_need_channel_variables(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    config = _config_with_secret_channel(tmp_path, monkeypatch)
    assert main([*command, "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [UNSET_HOOK]


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ("0s", "error: --timeout: must be positive (longer than 0s), got 0s"),
        ("-5s", "error: --timeout: '-5s' is negative: a duration must be positive, such as 30s"),
    ],
)
def test_validate_refuses_a_timeout_that_is_not_positive_in_one_line(
    capsys: pytest.CaptureFixture[str], timeout: str, expected: str
) -> None:
    assert main(["validate", "http://127.0.0.1:9/x", f"--timeout={timeout}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [expected]


def test_repeated_keys_are_reported_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("probe:\n  concurrency: 4\nprobe:\n  timeout: 5s\n  timeout: 6s\n")
    assert main(["check-config", "--config", str(config)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {config}: line 3: probe: duplicate key, first on line 1 "
        "(YAML keeps only the last one: merge them)",
        f"error: {config}: line 5: probe.timeout: duplicate key, first on line 4 "
        "(YAML keeps only the last one: merge them)",
    ]


def test_check_config_hides_the_database_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X402_TEST_DB_PASSWORD", "s3cret-pa:ss")
    config = tmp_path / "config.yaml"
    config.write_text("database: postgresql+psycopg://monitor:${X402_TEST_DB_PASSWORD}@db/m\n")
    assert main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "  database       postgresql+psycopg://monitor:***@db/m\n" in out
    assert "s3cret" not in out


def test_monitor_run_lifts_its_soft_open_file_limit_to_the_hard_one() -> None:
    import resource

    from monitor.cli.serving import _raise_open_file_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("the hard limit leaves nothing to lift")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        _raise_open_file_limit()
        lifted, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert lifted == (hard if hard != resource.RLIM_INFINITY else 65_536)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
