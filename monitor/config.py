"""Read config.yaml into typed, validated settings; every error names its key path and the fix.

Core module: the only I/O is `load_config` reading the file it is given; the environment is
passed in (`environ`) rather than read, so `${VAR}` substitution is testable and pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.models import ConfigError, EndpointSpec, JsonValue
from monitor.urls import is_http_url, normalise_url

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_METHODS = ("GET", "HEAD", "DELETE", "POST", "PUT", "PATCH", "OPTIONS")


def parse_duration(value: object) -> timedelta:
    """Parse `30s`, `5m`, `4h`, `35d`, `250ms` or `1h30m` into a timedelta.

    A timedelta passes through. Bare numbers are refused: a unit makes the intent explicit.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 5m or 4h, got {value!r}")
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{value!r} is not a duration: use a number and a unit (ms, s, m, h, d)")
    return timedelta(seconds=sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts))


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def format_duration(value: timedelta) -> str:
    """Render a duration compactly (`10s`, `5m`, `1h30m`, `250ms`) for messages and summaries."""
    millis = round(value.total_seconds() * 1000)
    if millis % 1000:
        return f"{millis}ms" if millis < 1000 else f"{millis / 1000:g}s"
    seconds = millis // 1000
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out += f"{count}{unit}"
    return out or "0s"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    """Where the service listens for /metrics, /healthz and the site."""

    listen: str = "127.0.0.1:9402"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port, e.g. 127.0.0.1:9402")
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


class Config(_Section):
    """The whole monitor configuration."""

    database: str = "data/monitor.db"
    server: ServerConfig = ServerConfig()
    site: SiteConfig = SiteConfig()
    probe: ProbeConfig = ProbeConfig()
    thresholds: ThresholdsConfig = ThresholdsConfig()
    retention: RetentionConfig = RetentionConfig()
    shutdown_timeout: Duration = timedelta(seconds=10)
    """On SIGINT/SIGTERM, in-flight probes get this long to finish before they are cancelled."""
    endpoints: tuple[EndpointConfig, ...] = ()

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
    elif kind == "literal_error":
        message = f"must be one of {', '.join(_METHODS)}"
    elif kind in {"int_parsing", "int_type"}:
        message = "must be a whole number"
    elif kind in {"bool_parsing", "bool_type"}:
        message = "must be true or false"
    elif kind in {"greater_than_equal", "less_than_equal", "string_too_long"}:
        message = message[0].lower() + message[1:]
    return f"{path or '(root)'}: {message}"
