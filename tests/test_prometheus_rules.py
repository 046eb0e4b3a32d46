"""The shipped Prometheus files pass promtool: rules, their unit tests and the example config."""

from __future__ import annotations

from pathlib import Path

import pytest
from tools import require_tool, run_tool

PROMETHEUS_DIR = Path(__file__).resolve().parent.parent / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    """Return promtool's path (skip outside CI when missing)."""
    return require_tool("promtool")


def _assert_ok(promtool: str, *args: str) -> str:
    result = run_tool([promtool, *args])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_alert_rules_are_valid(promtool: str) -> None:
    output = _assert_ok(promtool, "check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert "SUCCESS: 4 rules found" in output


def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    output = _assert_ok(promtool, "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml"))
    assert "SUCCESS" in output


def test_example_scrape_config_is_valid(promtool: str) -> None:
    output = _assert_ok(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert "SUCCESS" in output


def test_rule_tests_fail_when_a_rule_is_wrong(promtool: str, tmp_path: Path) -> None:
    """Guard the guard: a weakened threshold must make `promtool test rules` fail."""
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8")
    assert "x402_endpoint_consecutive_failures >= 3" in rules
    (tmp_path / "alerts.yml").write_text(
        rules.replace(
            "x402_endpoint_consecutive_failures >= 3", "x402_endpoint_consecutive_failures >= 4"
        ),
        encoding="utf-8",
    )
    (tmp_path / "alerts_test.yml").write_bytes((PROMETHEUS_DIR / "alerts_test.yml").read_bytes())
    result = run_tool([promtool, "test", "rules", str(tmp_path / "alerts_test.yml")])
    assert result.returncode != 0


def test_every_alert_has_a_unit_test() -> None:
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8")
    tests = (PROMETHEUS_DIR / "alerts_test.yml").read_text(encoding="utf-8")
    names = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert names == [
        "X402EndpointDown",
        "X402PaymentRequirementsInvalid",
        "X402MonitorStale",
        "X402MonitorAbsent",
    ]
    for name in names:
        assert f"alertname: {name}" in tests, f"{name} has no promtool unit test"
