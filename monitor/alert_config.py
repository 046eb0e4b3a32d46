"""The `alerts:` section of config.yaml: thresholds, mute windows and notification channels.

Core module (pydantic models only). Secrets such as webhook keys arrive through `${VAR}`
substitution in config.py and are never printed: `ChannelConfig.describe()` omits them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.durations import Duration
from monitor.urls import is_http_url


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertPolicy(_Section):
    """When an endpoint's alert fires, resolves, reminds and counts as flapping."""

    failure_threshold: int = Field(3, ge=1, le=1000)
    """Consecutive failed checks (soft or hard) that make the alert fire."""
    success_threshold: int = Field(2, ge=1, le=1000)
    """Passes in a row that resolve a firing alert."""
    repeat_interval: Duration = timedelta(hours=4)
    """Reminder period while firing; 0s = never remind."""
    send_resolved: bool = True
    flap_threshold: int = Field(5, ge=2, le=1000)
    """More alert changes than this within flap_window = flapping (one notification, then quiet)."""
    flap_window: Duration = timedelta(hours=1)

    @field_validator("repeat_interval")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must be 0s (never) or longer")
        return value


class EndpointAlerts(_Section):
    """Per-endpoint overrides of the alert policy (`endpoints[].alerts`)."""

    enabled: bool = True
    failure_threshold: int | None = Field(None, ge=1, le=1000)
    success_threshold: int | None = Field(None, ge=1, le=1000)
    repeat_interval: Duration | None = None
    send_resolved: bool | None = None

    def apply(self, policy: AlertPolicy) -> AlertPolicy:
        """Return `policy` with this endpoint's overrides applied."""
        changes = {
            key: value
            for key, value in self.model_dump(exclude={"enabled"}).items()
            if value is not None
        }
        return policy.model_copy(update=changes)


class MuteWindow(_Section):
    """A maintenance window: nothing is sent for the matching endpoints between start and end."""

    start: AwareDatetime
    end: AwareDatetime
    endpoints: tuple[str, ...] = ()
    """Endpoint URLs this window mutes; empty = every endpoint."""
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> MuteWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def mutes(self, url: str, at: datetime) -> bool:
        """Return whether this window mutes `url` at `at`."""
        return self.start <= at < self.end and (not self.endpoints or url in self.endpoints)


class ChannelConfig(_Section):
    """One notification channel; `endpoints`/`categories` limit what it receives."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["webhook", "alertmanager", "apprise"]
    url: str = Field(min_length=1)
    """webhook: the URL to POST to; alertmanager: its base URL; apprise: an Apprise URL."""
    secret: str | None = None
    """webhook: HMAC-SHA256 key for X-Signature-256 (use ${VAR})."""
    headers: dict[str, str] = {}
    timeout: Duration = timedelta(seconds=10)

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    endpoints: tuple[str, ...] = ()
    """Only these endpoint URLs (empty = all)."""
    categories: tuple[str, ...] = ()
    """Only endpoints in these categories (empty = all)."""

    @model_validator(mode="after")
    def _url_fits_type(self) -> ChannelConfig:
        if self.type in {"webhook", "alertmanager"} and not is_http_url(self.url):
            raise ValueError(f"url: not an http(s) URL (a {self.type} channel posts over HTTP)")
        if self.secret is not None and self.type != "webhook":
            raise ValueError("secret: only webhook channels sign their body")
        return self

    def wants(self, url: str, category: str | None) -> bool:
        """Return whether this channel receives notifications about an endpoint."""
        if self.endpoints and url not in self.endpoints:
            return False
        return not self.categories or category in self.categories

    def describe(self) -> str:
        """Return a one-line description without secrets: URLs are cut to scheme and host.

        Apprise URLs and webhook paths often carry tokens (Slack-style hooks), so no path.
        """
        scheme, _, rest = self.url.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1] if self.type != "apprise" else "…"
        return f"{self.name} ({self.type} {scheme}://{host})"


class AlertsConfig(AlertPolicy):
    """The whole `alerts:` section: the default policy, mute windows and channels."""

    mute: tuple[MuteWindow, ...] = ()
    channels: tuple[ChannelConfig, ...] = ()
    retry_max_attempts: int = Field(8, ge=1, le=100)
    """Deliveries of one notification to one channel before it is recorded as failed."""

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, channels: tuple[ChannelConfig, ...]) -> tuple[ChannelConfig, ...]:
        names = [channel.name for channel in channels]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(
                    f"channels[{index}].name {name!r} is used twice: names must be unique"
                )
        return channels

    @property
    def policy(self) -> AlertPolicy:
        """Return the default policy alone."""
        return AlertPolicy(**{key: getattr(self, key) for key in AlertPolicy.model_fields})

    def muted(self, url: str, at: datetime) -> bool:
        """Return whether any mute window silences `url` at `at`."""
        return any(window.mutes(url, at) for window in self.mute)
