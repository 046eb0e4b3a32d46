"""Config loading: defaults, durations, ${VAR} substitution, and errors that name the key path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import load_config, parse_config
from monitor.durations import format_duration, parse_duration
from monitor.models import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("4h", timedelta(hours=4)),
        ("35d", timedelta(days=35)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5s", timedelta(seconds=1.5)),
    ],
)
def test_parse_duration_accepts_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "5 m", "m5", "5x", "-5s", 30, True, None, "5m junk"])
def test_parse_duration_rejects_values_without_a_unit(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=10), "10s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(days=35), "35d"),
    ],
)
def test_format_duration_round_trips(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_defaults_of_an_empty_document() -> None:
    config = parse_config(None, {})
    assert config.database == "data/monitor.db"
    assert config.server.listen == "127.0.0.1:9402"
    assert config.probe.interval == timedelta(minutes=5)
    assert config.probe.timeout == timedelta(seconds=10)
    assert config.probe.concurrency == 50
    assert config.probe.per_host == 2
    assert config.probe.max_body_bytes == 1_048_576
    assert config.probe.allow_private_addresses is False
    assert config.thresholds.down_after == 3
    assert config.thresholds.recover_after == 2
    assert config.thresholds.latency_budget == timedelta(seconds=2)
    assert config.retention.raw == timedelta(days=35)
    assert config.endpoints == ()


def test_shipped_configs_are_valid() -> None:
    config = load_config(REPO / "config.yaml", {})
    urls = [endpoint.url for endpoint in config.endpoints]
    assert "https://x402.dopamint.ai/api/ai/generations/images/seedream" in urls
    seed = config.endpoints[
        urls.index("https://x402.dopamint.ai/api/ai/generations/images/seedream")
    ]
    assert seed.method == "POST"
    assert seed.to_spec().has_body
    demo = load_config(REPO / "demo" / "config.yaml", {})
    assert demo.probe.allow_private_addresses is True
    assert len(demo.endpoints) >= 10


def test_endpoint_is_normalised_and_method_upper_cased() -> None:
    config = parse_config(
        {"endpoints": [{"url": "HTTPS://API.Example.com:443/pay#frag", "method": "post"}]}, {}
    )
    endpoint = config.endpoints[0]
    assert endpoint.url == "https://api.example.com/pay"
    assert endpoint.method == "POST"
    spec = endpoint.to_spec()
    assert spec.has_body is False
    assert spec.source == "config"


def test_configured_null_body_is_kept_as_a_choice() -> None:
    config = parse_config({"endpoints": [{"url": "https://a.example/x", "body": None}]}, {})
    assert config.endpoints[0].to_spec().has_body is True


def test_environment_substitution() -> None:
    config = parse_config(
        {
            "database": "postgresql://u:${DB_PASS}@db/x",
            "site": {"base_url": "${BASE:-https://d.example/}"},
            "probe": {"user_agent": "cost $$5"},
        },
        {"DB_PASS": "s3cret"},
    )
    assert config.database == "postgresql://u:s3cret@db/x"
    assert config.site.base_url == "https://d.example/"
    assert config.probe.user_agent == "cost $5"


def test_missing_environment_variable_names_key_and_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"endpoints": [{"url": "https://a.example/", "title": "${NOPE}"}]}, {})
    assert caught.value.problems == [
        "endpoints[0].title: environment variable NOPE is not set "
        "(export it, or write ${NOPE:-default})"
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"endpoints": [{"url": "ftp://x.example/"}]}, "endpoints[0].url: not an http(s) URL"),
        (
            {
                "endpoints": [
                    {"url": "https://a.example/"},
                    {"url": "https://b.example/"},
                    {"url": "x"},
                ]
            },
            "endpoints[2].url: not an http(s) URL",
        ),
        ({"endpoints": [{"title": "no url"}]}, "endpoints[0].url: required key is missing"),
        (
            {"endpoints": [{"url": "https://a.example/", "methd": "GET"}]},
            "endpoints[0].methd: unknown key",
        ),
        (
            {"endpoints": [{"url": "https://a.example/", "method": "FETCH"}]},
            "endpoints[0].method: input should be 'GET', 'HEAD'",
        ),
        ({"probe": {"interval": "5"}}, "probe.interval: '5' is not a duration"),
        ({"probe": {"interval": 300}}, "probe.interval: expected a duration such as 30s"),
        ({"probe": {"interval": "0s"}}, "probe: interval must be longer than 0s"),
        (
            {"probe": {"concurrency": 0}},
            "probe.concurrency: input should be greater than or equal to 1",
        ),
        ({"probe": {"concurrency": "many"}}, "probe.concurrency: must be a whole number"),
        (
            {"probe": {"allow_private_addresses": "maybe"}},
            "probe.allow_private_addresses: must be true or false",
        ),
        ({"retention": {"raw": "1d"}}, "retention.raw: must be at least 2d"),
        ({"server": {"listen": "9402"}}, "server.listen: expected host:port"),
        ({"site": {"base_url": "javascript:alert(1)"}}, "site.base_url: not an http(s) URL"),
        ({"thresholds": {"down_afer": 3}}, "thresholds.down_afer: unknown key"),
        (
            {"endpoints": [{"url": "https://a.example/"}, {"url": "https://A.example:443/"}]},
            "endpoints: endpoints[1] repeats endpoints[0] (https://a.example/): remove one of them",
        ),
        ([1, 2], "(root): expected a mapping"),
        (
            {"alerts": {"channels": [{"name": "a", "type": "sms", "url": "x"}]}},
            "alerts.channels[0].type: input should be 'webhook', 'alertmanager' or 'apprise'",
        ),
        (
            {"alerts": {"channels": [{"name": "a", "type": "webhook", "url": "ftp://x"}]}},
            "alerts.channels[0]: url: not an http(s) URL",
        ),
        (
            {
                "alerts": {
                    "channels": [{"name": "a", "type": "apprise", "url": "json://x", "secret": "s"}]
                }
            },
            "alerts.channels[0]: secret: only webhook channels sign their body",
        ),
        (
            {
                "alerts": {
                    "channels": [
                        {"name": "a", "type": "webhook", "url": "https://x.example/"},
                        {"name": "a", "type": "webhook", "url": "https://y.example/"},
                    ]
                }
            },
            "alerts.channels: channels[1].name 'a' is used twice",
        ),
        (
            {
                "alerts": {
                    "mute": [{"start": "2026-12-01T03:00:00Z", "end": "2026-12-01T02:00:00Z"}]
                }
            },
            "alerts.mute[0]: end must be after start",
        ),
        (
            {"alerts": {"mute": [{"start": "2026-12-01T02:00:00", "end": "2026-12-01T03:00:00Z"}]}},
            "alerts.mute[0].start: input should have timezone info",
        ),
        ({"alerts": {"repeat_interval": "-1m"}}, "alerts.repeat_interval: '-1m' is not a duration"),
        (
            {"endpoints": [{"url": "https://a.example/", "alerts": {"failure_threshold": 0}}]},
            "endpoints[0].alerts.failure_threshold: input should be greater than or equal to 1",
        ),
    ],
)
def test_errors_name_the_key_path_and_the_fix(document: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, {})
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(expected), caught.value.problems[0]


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "absent.yaml", {})
    broken = tmp_path / "broken.yaml"
    broken.write_text("probe:\n  interval: [5m\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+"):
        load_config(broken, {})


def test_database_url_resolves_relative_paths_against_the_config_folder(tmp_path: Path) -> None:
    config = parse_config({"database": "data/x.db"}, {})
    assert config.database_url(tmp_path) == f"sqlite:///{tmp_path}/data/x.db"
    absolute = parse_config({"database": "sqlite:////var/lib/m.db"}, {})
    assert absolute.database_url(tmp_path) == "sqlite:////var/lib/m.db"


def test_alerts_config_with_secret_from_the_environment() -> None:
    config = parse_config(
        {
            "alerts": {
                "repeat_interval": "0s",
                "channels": [
                    {
                        "name": "ops",
                        "type": "webhook",
                        "url": "https://hooks.example.org/T0K3N/x402",
                        "secret": "${HOOK_SECRET}",
                    }
                ],
            },
            "endpoints": [{"url": "https://a.example/", "alerts": {"failure_threshold": 5}}],
        },
        {"HOOK_SECRET": "k"},
    )
    channel = config.alerts.channels[0]
    assert channel.secret == "k"
    assert "T0K3N" not in channel.describe()  # webhook paths often carry tokens
    assert config.alerts.repeat_interval == timedelta(0)
    policy = config.endpoints[0].alerts.apply(config.alerts.policy)
    assert (policy.failure_threshold, policy.success_threshold) == (5, 2)
