"""Config loading: defaults, durations, ${VAR} substitution, and errors that name the key path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from monitor.config import Config, load_config, parse_config
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
        ({"probe": {"interval": "0s"}}, "probe.interval: must be positive (longer than 0s)"),
        (
            {"probe": {"concurrency": 0}},
            "probe.concurrency: input should be greater than or equal to 1",
        ),
        (
            {"probe": {"concurrency": "many"}},
            "probe.concurrency: expected an integer, got 'many'",
        ),
        (
            {"probe": {"allow_private_addresses": "maybe"}},
            "probe.allow_private_addresses: expected true or false, got 'maybe'",
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
            "alerts.channels[0].url: not an http(s) URL",
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
        ({"alerts": {"repeat_interval": "-1m"}}, "alerts.repeat_interval: '-1m' is negative"),
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


def _load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ or {})


def _problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load_text(tmp_path, text, environ)
    return caught.value.problems


def test_a_second_block_with_the_same_key_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = "probe:\n  concurrency: 4\nendpoints: []\nprobe:\n  timeout: 5s\n"
    assert _problems(tmp_path, text) == [
        f"{tmp_path / 'config.yaml'}: line 4: probe: duplicate key, first on line 1 "
        "(YAML keeps only the last one: merge them)"
    ]


def test_a_repeated_key_deep_inside_a_list_item_names_its_key_path(tmp_path: Path) -> None:
    endpoints = "".join(f"  - url: https://a.example/{n}\n" for n in range(3))
    text = (
        "endpoints:\n"
        + endpoints
        + "  - url: https://a.example/3\n    method: GET\n    title: x\n    method: POST\n"
        + "alerts:\n  channels:\n    - {name: a, type: webhook, url: 'https://h.example/', "
        + "headers: {X-A: '1', X-A: '2'}}\n"
    )
    problems = _problems(tmp_path, text)
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        "line 8: endpoints[3].method: duplicate key, first on line 6 "
        "(YAML keeps only the last one: merge them)",
        "line 11: alerts.channels[0].headers.X-A: duplicate key, first on line 11 "
        "(YAML keeps only the last one: merge them)",
    ]


def test_merge_keys_may_be_overridden_without_a_duplicate_error(tmp_path: Path) -> None:
    text = (
        "endpoints:\n"
        "  - &paid {url: 'https://a.example/x', method: POST, title: Paid}\n"
        "  - <<: *paid\n"
        "    url: https://a.example/y\n"
    )
    config = _load_text(tmp_path, text)
    assert [(e.url, e.method, e.title) for e in config.endpoints] == [
        ("https://a.example/x", "POST", "Paid"),
        ("https://a.example/y", "POST", "Paid"),
    ]


def test_yaml_is_still_loaded_safely(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "database: !!python/object/apply:os.getcwd []\n")
    assert "could not determine a constructor" in problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("probe: {concurrency: true}", "probe.concurrency: expected an integer, got true"),
        ("probe: {concurrency: '8'}", "probe.concurrency: expected an integer, got '8'"),
        ("probe: {concurrency: 8.0}", "probe.concurrency: expected an integer, got 8.0"),
        ("probe: {concurrency: null}", "probe.concurrency: expected an integer, got null"),
        (
            "probe: {allow_private_addresses: 'yes'}",
            "probe.allow_private_addresses: expected true or false, got 'yes'",
        ),
        (
            "probe: {allow_private_addresses: 1}",
            "probe.allow_private_addresses: expected true or false, got 1",
        ),
        ("probe: {user_agent: 5}", "probe.user_agent: expected text, got 5 (quote it)"),
        ("database: 5", "database: expected text, got 5 (quote it)"),
        ("server: {listen: 9402}", "server.listen: expected text, got 9402 (quote it)"),
        (
            "endpoints: [{url: 'https://a.example/', title: 123}]",
            "endpoints[0].title: expected text, got 123 (quote it)",
        ),
        (
            "endpoints: [{url: 'https://a.example/', alerts: {enabled: 'false'}}]",
            "endpoints[0].alerts.enabled: expected true or false, got 'false'",
        ),
        (
            "endpoints: [{url: 'https://a.example/', alerts: {failure_threshold: true}}]",
            "endpoints[0].alerts.failure_threshold: expected an integer, got true",
        ),
        ("alerts: {send_resolved: 'no'}", "alerts.send_resolved: expected true or false, got 'no'"),
        (
            "alerts: {channels: [{name: a, type: webhook, url: 'https://h.example/', "
            "headers: {X-Team: 7}}]}",
            "alerts.channels[0].headers.X-Team: expected text, got 7 (quote it)",
        ),
        (
            "alerts: {mute: [{start: 0, end: '2026-12-01T03:00:00Z'}]}",
            "alerts.mute[0].start: expected a date and time such as 2026-12-01T02:00:00Z, got 0",
        ),
        (
            "sources: [{name: cdp, url: 'https://f.example/', max_items: '10'}]",
            "sources[0].max_items: expected an integer, got '10'",
        ),
        ("endpoints: {url: 'https://a.example/'}", "endpoints: expected a list, got a mapping"),
        ("probe: 5m", "probe: expected a mapping of keys, got '5m'"),
    ],
)
def test_types_are_strict(tmp_path: Path, text: str, expected: str) -> None:
    problems = _problems(tmp_path, text + "\n")
    assert problems == [expected]


def test_strict_types_still_accept_what_yaml_means(tmp_path: Path) -> None:
    config = _load_text(
        tmp_path,
        "probe: {concurrency: 8, allow_private_addresses: yes}\n"
        "alerts:\n"
        "  send_resolved: false\n"
        "  mute: [{start: 2026-12-01T02:00:00Z, end: '2026-12-01T03:00:00Z', endpoints: []}]\n",
    )
    assert config.probe.concurrency == 8
    assert config.probe.allow_private_addresses is True  # YAML 1.1: unquoted yes is a boolean
    assert config.alerts.mute[0].end - config.alerts.mute[0].start == timedelta(hours=1)


def test_substituted_text_is_read_as_the_type_its_key_takes(tmp_path: Path) -> None:
    environ = {"CONC": "8", "ALLOW": "true", "TITLE": "123", "KEY": "0123", "EVERY": "90s"}
    config = _load_text(
        tmp_path,
        "probe:\n"
        "  concurrency: ${CONC}\n"
        "  per_host: ${PER_HOST:-3}\n"
        "  allow_private_addresses: ${ALLOW}\n"
        "  interval: ${EVERY}\n"
        "endpoints: [{url: 'https://a.example/', title: '${TITLE}', body: {key: '${KEY}'}}]\n"
        "alerts:\n"
        "  channels: [{name: a, type: webhook, url: 'https://h.example/', secret: '${KEY}'}]\n",
        environ,
    )
    assert (config.probe.concurrency, config.probe.per_host) == (8, 3)
    assert config.probe.allow_private_addresses is True
    assert config.probe.interval == timedelta(seconds=90)
    assert config.endpoints[0].title == "123"  # text keys keep text: never a number
    assert config.endpoints[0].body == {"key": "0123"}
    assert type(config.endpoints[0].body["key"]) is str
    assert config.alerts.channels[0].secret == "0123"
    assert type(config.alerts.channels[0].secret) is str


@pytest.mark.parametrize(
    ("line", "value", "expected"),
    [
        ("probe: {concurrency: '${V}'}", "many", "probe.concurrency: expected an integer"),
        ("probe: {concurrency: '${V}'}", "0x10", "probe.concurrency: expected an integer"),
        ("probe: {allow_private_addresses: '${V}'}", "yes", "probe.allow_private_addresses"),
        ("probe: {interval: '${V}'}", "-90s", "probe.interval: '${V}' after substitution"),
        ("probe: {interval: '${V}'}", "soon", "probe.interval: '${V}' after substitution"),
    ],
)
def test_a_substituted_value_of_the_wrong_type_is_named_not_shown(
    tmp_path: Path, line: str, value: str, expected: str
) -> None:
    problems = _problems(tmp_path, line + "\n", {"V": value})
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]
    assert "${V}" in problems[0]
    assert value not in problems[0]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"probe": {"interval": "-5s"}}, "probe.interval: '-5s' is negative: a duration must be"),
        ({"probe": {"timeout": "0s"}}, "probe.timeout: must be positive (longer than 0s)"),
        ({"probe": {"connect_timeout": "0ms"}}, "probe.connect_timeout: must be positive"),
        ({"site": {"render_interval": "0s"}}, "site.render_interval: must be positive"),
        ({"thresholds": {"latency_budget": "0s"}}, "thresholds.latency_budget: must be positive"),
        ({"alerts": {"flap_window": "0s"}}, "alerts.flap_window: must be positive"),
        ({"alerts": {"repeat_interval": "-1m"}}, "alerts.repeat_interval: '-1m' is negative"),
        ({"shutdown_timeout": "-10s"}, "shutdown_timeout: '-10s' is negative"),
        ({"probe": {"facilitator_ttl": "0s"}}, "probe.facilitator_ttl: must be positive"),
        (
            {
                "alerts": {
                    "channels": [
                        {"name": "a", "type": "webhook", "url": "https://h/", "timeout": "-1s"}
                    ]
                }
            },
            "alerts.channels[0].timeout: '-1s' is negative",
        ),
    ],
)
def test_a_negative_or_zero_duration_says_it_must_be_positive(
    document: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, {})
    assert caught.value.problems[0].startswith(expected), caught.value.problems
    assert "use a number and a unit" not in caught.value.problems[0]


def test_zero_is_allowed_where_it_means_never() -> None:
    config = parse_config({"alerts": {"repeat_interval": "0s"}, "shutdown_timeout": "0s"}, {})
    assert config.alerts.repeat_interval == timedelta(0)
    assert config.shutdown_timeout == timedelta(0)


def test_an_empty_database_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"database": ""}, {})
    assert caught.value.problems == [
        "database: must not be empty (a file path such as data/monitor.db, or a SQLAlchemy URL)"
    ]


HOOKS = {
    "alerts": {
        "channels": [
            {"name": "ops", "type": "webhook", "url": "${HOOK_URL}", "secret": "${HOOK_KEY}"},
            {"name": "chat", "type": "apprise", "url": "${CHAT_URL:-json://localhost}"},
        ]
    }
}


def test_commands_that_send_nothing_leave_channel_variables_unresolved() -> None:
    config = parse_config(HOOKS, {}, with_channels=False)
    assert config.alerts.channels == ()  # nothing can be sent through a half-resolved channel
    with pytest.raises(ConfigError) as caught:
        parse_config(HOOKS, {})
    assert caught.value.problems == [
        "alerts.channels[0].url: environment variable HOOK_URL is not set "
        "(export it, or write ${HOOK_URL:-default})"
    ]
    resolved = parse_config(HOOKS, {"HOOK_URL": "https://h.example/T0K3N", "HOOK_KEY": "k"})
    assert [channel.name for channel in resolved.alerts.channels] == ["ops", "chat"]
    assert resolved.alerts.channels[0].secret == "k"


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        (
            {"name": "a", "type": "sms", "url": "${HOOK_URL}"},
            "alerts.channels[0].type: input should be 'webhook', 'alertmanager' or 'apprise'",
        ),
        (
            {"name": "a", "type": "webhook", "url": "${HOOK_URL}", "secert": "x"},
            "alerts.channels[0].secert: unknown key",
        ),
        (
            {"name": "a", "type": "webhook", "url": "ftp://h.example/", "secret": "${K}"},
            "alerts.channels[0].url: not an http(s) URL",
        ),
        (
            {"name": "a", "type": "webhook", "url": "${HOOK_URL}", "timeout": "0s"},
            "alerts.channels[0].timeout: must be positive",
        ),
    ],
)
def test_channels_left_unresolved_are_still_checked(channel: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"alerts": {"channels": [channel]}}, {}, with_channels=False)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(expected), caught.value.problems


def test_variables_outside_channels_are_always_resolved() -> None:
    with pytest.raises(ConfigError, match="database: environment variable DB_PASS is not set"):
        parse_config(
            {"database": "postgresql://u:${DB_PASS}@db/x"} | HOOKS, {}, with_channels=False
        )


def test_database_path_is_kept_whole_in_the_url(tmp_path: Path) -> None:
    config = parse_config({"database": "data/odd ?#%20 name.db"}, {})
    url = make_url(config.database_url(tmp_path))
    assert url.database == str(tmp_path / "data" / "odd ?#%20 name.db")
