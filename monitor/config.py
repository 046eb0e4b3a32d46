"""Read config.yaml into typed, validated settings; every error names its key path and the fix.

Core module: the only I/O is `load_config` reading the file it is given; the environment is
passed in (`environ`) rather than read, so `${VAR}` substitution is testable and pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.alert_config import AlertsConfig, EndpointAlerts
from monitor.durations import Duration
from monitor.models import ConfigError, EndpointSpec, JsonValue
from monitor.urls import is_http_url, normalise_url

_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    """Where the service listens for /metrics, /healthz and the site."""

    listen: str = "127.0.0.1:9402"

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
    render_interval: Duration = timedelta(minutes=1)
    """The service re-renders the site at most this often, and only when something changed."""

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not is_http_url(value):
            raise ValueError("not an http(s) URL")
        return value if value.endswith("/") else value + "/"


class ProbeConfig(_Section):
    """How probes are sent: schedule, limits and the address policy."""

    interval: Duration = timedelta(minutes=5)
    timeout: Duration = timedelta(seconds=10)
    connect_timeout: Duration = timedelta(seconds=5)
    concurrency: int = Field(50, ge=1, le=10000)
    per_host: int = Field(2, ge=1, le=1000)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    max_redirects: int = Field(3, ge=0, le=10)
    allow_private_addresses: bool = False
    user_agent: str = "x402-monitor/0.1 (+https://github.com/x402-monitor; unpaid health probe)"
    facilitator_ttl: Duration = timedelta(minutes=10)
    """How long a facilitator's /supported answer is reused before it is fetched again."""

    @model_validator(mode="after")
    def _positive_durations(self) -> ProbeConfig:
        for name in ("interval", "timeout", "connect_timeout"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be longer than 0s")
        return self


class ThresholdsConfig(_Section):
    """When an endpoint counts as down, recovered, or too slow (DESIGN.md, "Status")."""

    down_after: int = Field(3, ge=1, le=1000)
    recover_after: int = Field(2, ge=1, le=1000)
    latency_budget: Duration = timedelta(seconds=2)


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
    sources: tuple[SourceConfig, ...] = ()
    shutdown_timeout: Duration = timedelta(seconds=10)
    """On SIGINT/SIGTERM, in-flight probes get this long to finish before they are cancelled."""
    endpoints: tuple[EndpointConfig, ...] = ()

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
        """Return the SQLAlchemy URL; a plain path is relative to `base_dir` (the config's)."""
        if "://" in self.database:
            return self.database
        path = Path(self.database)
        if not path.is_absolute():
            path = base_dir / path
        return f"sqlite:///{path}"


def substitute_environment(node: Any, environ: Mapping[str, str], path: str = "") -> Any:
    """Replace `${VAR}` (and `${VAR:-default}`) in every string of a YAML tree.

    `$$` stands for a literal `$`. A variable that is unset and has no default raises
    ConfigError naming the key path, so a secret never silently becomes an empty string.
    """
    if isinstance(node, dict):
        return {
            key: substitute_environment(value, environ, _join(path, str(key)))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            substitute_environment(value, environ, f"{path}[{index}]")
            for index, value in enumerate(node)
        ]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            [
                f"{path or '(root)'}: environment variable {name} is not set (export it, "
                f"or write ${{{name}:-default}})"
            ]
        )

    return _ENV_REFERENCE.sub(replace, node)


def parse_config(document: object, environ: Mapping[str, str]) -> Config:
    """Validate a decoded YAML document into a Config, or raise ConfigError with key paths."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(["(root): expected a mapping of keys such as endpoints:, probe:"])
    substituted = substitute_environment(document, environ)
    try:
        return Config.model_validate(substituted)
    except ValidationError as error:
        raise ConfigError([_describe(item) for item in error.errors()]) from None


def load_config(path: Path, environ: Mapping[str, str]) -> Config:
    """Read and validate a config file; errors name the file, the key path and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the config file ({error.strerror})"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}:{where}: {problem}"]) from None
    return parse_config(document, environ)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(error: Mapping[str, Any]) -> str:
    """Turn one pydantic error into `key.path[2].name: what is wrong (and how to fix it)`."""
    path = ""
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"function-after", "function-before"} or str(part).startswith("literal"):
            continue
        else:
            path = _join(path, str(part))
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = "unknown key (check its spelling against the README's config reference)"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in {"int_parsing", "int_type"}:
        message = "must be a whole number"
    elif kind in {"bool_parsing", "bool_type"}:
        message = "must be true or false"
    message = message[:1].lower() + message[1:]
    return f"{path or '(root)'}: {message}"
