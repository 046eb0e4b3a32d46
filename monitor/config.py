"""Read config.yaml into typed, validated settings; every error names its key path and the fix.

Core module: the only I/O is `load_config` reading the file it is given; the environment is
passed in (`environ`) rather than read, so `${VAR}` substitution is testable and pure.

Types are strict: `concurrency: true` is no integer, `allow_private_addresses: "yes"` no
boolean and `title: 5` no text. A value written with `${VAR}` is text after substitution; where
its key takes a whole number or true/false, that text must spell one (`8`, `true`, `false`),
as YAML would read it unquoted. A key repeated in one mapping is an error (YAML would silently
keep the last one).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.alert_config import AlertsConfig, EndpointAlerts
from monitor.config_reading import (
    describe,
    is_unresolved,
    read_yaml,
    substitute_environment,
    typed,
)
from monitor.durations import Duration, PositiveDuration
from monitor.models import ConfigError, EndpointSpec, JsonValue
from monitor.urls import is_http_url, normalise_url

_CHANNELS = "alerts.channels"
"""Key path of the notification channels, the only part a command may leave unresolved."""


class _Section(BaseModel):
    # Lists arrive from YAML where tuples are declared: those fields say `strict=False`, which
    # relaxes the container only (its items stay strict).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ServerConfig(_Section):
    """Where the service listens for /metrics, /healthz and the site."""

    listen: str = "127.0.0.1:9402"
    max_connections: int = Field(256, ge=32, le=100_000)
    """Client connections open at once; at the cap the one waiting longest unanswered is closed."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("expected host:port, e.g. 127.0.0.1:9402 (port 0: any free port)")
        return value


class SiteConfig(_Section):
    """Where the static directory site is written and the public URL it is served from."""

    output_dir: str = "site"
    base_url: str = "http://127.0.0.1:9402/"
    render_interval: PositiveDuration = timedelta(minutes=1)
    """The service re-renders the site at most this often, and only when something changed."""

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError("not an http(s) URL")
        return value if value.endswith("/") else value + "/"


class ProbeConfig(_Section):
    """How probes are sent: schedule, limits and the address policy."""

    interval: PositiveDuration = timedelta(minutes=5)
    timeout: PositiveDuration = timedelta(seconds=10)
    connect_timeout: PositiveDuration = timedelta(seconds=5)
    concurrency: int = Field(50, ge=1, le=10000)
    per_host: int = Field(2, ge=1, le=1000)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    max_redirects: int = Field(3, ge=0, le=10)
    allow_private_addresses: bool = False
    user_agent: str = "x402-monitor/0.1 (+https://github.com/x402-monitor; unpaid health probe)"
    facilitator_ttl: PositiveDuration = timedelta(minutes=10)
    """How long a facilitator's /supported answer is reused before it is fetched again."""
    proxy: str | None = None
    """HTTP egress proxy for probes, `http://[user:password@]host[:port]`: each connection is
    a CONNECT tunnel to an address the policy checked (the proxy never resolves names)."""
    trust_env: bool = False
    """Without `proxy`, take it from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY."""

    @field_validator("proxy")
    @classmethod
    def _http_proxy(cls, value: str | None) -> str | None:
        # The URL may hold a password: messages describe it, never repeat it.
        if value is None:
            return None
        scheme, _, rest = value.partition("://")
        host = rest.split("/", 1)[0].rpartition("@")[2]
        if scheme.lower() != "http" or not host or host.startswith(":"):
            raise ValueError("expected http://[user:password@]host[:port] (the value is hidden)")
        return value


class ThresholdsConfig(_Section):
    """When an endpoint counts as down, recovered, or too slow (DESIGN.md, "Status")."""

    down_after: int = Field(3, ge=1, le=1000)
    recover_after: int = Field(2, ge=1, le=1000)
    latency_budget: PositiveDuration = timedelta(seconds=2)


class RetentionConfig(_Section):
    """How long raw checks are kept; older days live on as per-day rollups.

    30-day figures read rolled-up days from the rollups, so raw retention only needs to cover
    the 24-hour latency window and the "Recent Health Checks" table.
    """

    raw: Duration = timedelta(days=35)

    @field_validator("raw")
    @classmethod
    def _at_least_two_days(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=2):
            raise ValueError("must be at least 2d (the 24-hour latency window needs raw checks)")
        return value


class EndpointConfig(_Section):
    """One endpoint listed by the operator; optional keys override what catalogues say."""

    url: str
    method: Literal["GET", "HEAD", "DELETE", "POST", "PUT", "PATCH", "OPTIONS"] | None = None
    body: JsonValue = None
    title: str | None = Field(None, max_length=300)
    category: str | None = Field(None, max_length=100)
    facilitator: str | None = None
    input_schema: dict[str, JsonValue] | None = None
    alerts: EndpointAlerts = EndpointAlerts()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError("not an http(s) URL")
        return normalise_url(value)

    @field_validator("facilitator")
    @classmethod
    def _http_facilitator(cls, value: str | None) -> str | None:
        if value is not None and not is_http_url(value):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def to_spec(self) -> EndpointSpec:
        """Return the endpoint as the core's EndpointSpec."""
        return EndpointSpec(
            url=self.url,
            method=self.method,
            body=self.body,
            has_body="body" in self.model_fields_set,
            title=self.title,
            category=self.category,
            facilitator=self.facilitator,
            input_schema=self.input_schema,
            source="config",
        )


class SourceConfig(_Section):
    """A facilitator's Bazaar discovery catalogue to index endpoints from."""

    type: Literal["bazaar"] = "bazaar"
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str
    """The facilitator's base URL (its catalogue is at {url}/discovery/resources)."""
    refresh: Duration = timedelta(hours=1)
    max_items: int = Field(50_000, ge=1, le=1_000_000)
    """Safety bound: a crawl stops after this many items."""
    delist_after: int = Field(3, ge=1, le=100)
    """Complete crawls an endpoint may be missing from before it is delisted."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @field_validator("refresh")
    @classmethod
    def _sensible_refresh(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("must be at least 1m (a catalogue crawl is thousands of requests)")
        return value


class Config(_Section):
    """The whole monitor configuration."""

    database: str = "data/monitor.db"
    server: ServerConfig = ServerConfig()
    site: SiteConfig = SiteConfig()
    probe: ProbeConfig = ProbeConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    retention: RetentionConfig = RetentionConfig()
    alerts: AlertsConfig = AlertsConfig()
    sources: tuple[SourceConfig, ...] = Field((), strict=False)
    shutdown_timeout: Duration = timedelta(seconds=10)
    """On SIGINT/SIGTERM, in-flight probes get this long to finish before they are cancelled."""
    endpoints: tuple[EndpointConfig, ...] = Field((), strict=False)

    @field_validator("database")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "must not be empty (a file path such as data/monitor.db, or a SQLAlchemy URL)"
            )
        return value

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources: tuple[SourceConfig, ...]) -> tuple[SourceConfig, ...]:
        names = [source.name for source in sources]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"sources[{index}].name {name!r} is used twice: make it unique")
        return sources

    @field_validator("endpoints")
    @classmethod
    def _unique_endpoints(cls, endpoints: tuple[EndpointConfig, ...]) -> tuple[EndpointConfig, ...]:
        seen: dict[tuple[str, str | None], int] = {}
        for index, endpoint in enumerate(endpoints):
            key = (endpoint.url, endpoint.method)
            if key in seen:
                raise ValueError(
                    f"endpoints[{index}] repeats endpoints[{seen[key]}] ({endpoint.url}): "
                    "remove one of them"
                )
            seen[key] = index
        return endpoints

    def site_dir(self, base_dir: Path) -> Path:
        """Return the site's output folder; a relative one is relative to `base_dir`."""
        path = Path(self.site.output_dir)
        return path if path.is_absolute() else base_dir / path

    def database_url(self, base_dir: Path) -> str:
        """Return the SQLAlchemy URL; a plain path is relative to `base_dir` (the config's).

        The path is percent-encoded: SQLAlchemy would cut a name at `?` and decode `%20`.
        """
        if "://" in self.database:
            return self.database
        path = Path(self.database)
        if not path.is_absolute():
            path = base_dir / path
        return f"sqlite:///{quote(str(path), safe='/')}"


def parse_config(
    document: object, environ: Mapping[str, str], *, with_channels: bool = True
) -> Config:
    """Validate a decoded YAML document into a Config, or raise ConfigError with key paths.

    With `with_channels=False` (commands that send no notification) the variables of
    `alerts.channels` are not resolved: the channels are checked as far as they can be without
    them, and the Config returned has no channels, so nothing can be sent through one that is
    only half resolved.
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(["(root): expected a mapping of keys such as endpoints:, probe:"])
    keep_unset_below = None if with_channels else _CHANNELS
    substituted = substitute_environment(document, environ, keep_unset_below=keep_unset_below)
    checked = typed(substituted, Config)
    try:
        config = Config.model_validate(checked)
    except ValidationError as error:
        problems = [describe(item) for item in error.errors() if not is_unresolved(item)]
        if problems or with_channels:
            raise ConfigError(problems) from None
        # Every problem came from an unset channel variable: what remains is valid without them.
        config = Config.model_validate(_without_channels(checked))
    if with_channels:
        return config
    return config.model_copy(update={"alerts": config.alerts.model_copy(update={"channels": ()})})


def load_config(path: Path, environ: Mapping[str, str], *, with_channels: bool = True) -> Config:
    """Read and validate a config file; errors name the file, the key path and the fix.

    `with_channels` is as in `parse_config`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the config file ({error.strerror})"]) from None
    return parse_config(read_yaml(text, str(path)), environ, with_channels=with_channels)


def _without_channels(document: dict[str, Any]) -> dict[str, Any]:
    alerts = document.get("alerts")
    if not isinstance(alerts, dict):
        return document
    return {**document, "alerts": {k: v for k, v in alerts.items() if k != "channels"}}
