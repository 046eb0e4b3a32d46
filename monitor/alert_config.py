"""The `alerts:` section of config.yaml: thresholds, mute windows and notification channels.

Core module (pydantic models only). Secrets such as webhook keys arrive through `${VAR}`
substitution in config.py and are never printed: `ChannelConfig.describe()` omits them.
Types are strict, as in config.py: `true` is no number and `"yes"` no boolean.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.durations import Duration, PositiveDuration
from monitor.urls import is_http_url


class _Section(BaseModel):
    # Lists arrive from YAML where tuples are declared: those fields say `strict=False`, which
    # relaxes the container only (its items stay strict).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _parse_moment(value: object) -> object:
    """Read an ISO 8601 string as a datetime; anything else goes on to strict validation."""
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date and time such as 2026-12-01T02:00:00Z") from None


Moment = Annotated[AwareDatetime, BeforeValidator(_parse_moment)]


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
    flap_window: PositiveDuration = timedelta(hours=1)


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

    start: Moment
    end: Moment
    endpoints: tuple[str, ...] = Field((), strict=False)
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
    timeout: PositiveDuration = timedelta(seconds=10)
    endpoints: tuple[str, ...] = Field((), strict=False)
    """Only these endpoint URLs (empty = all)."""
    categories: tuple[str, ...] = Field((), strict=False)
    """Only endpoints in these categories (empty = all)."""

    @field_validator("url")
    @classmethod
    def _url_fits_type(cls, value: str, info: ValidationInfo) -> str:
        # A field check (not a model check), so its error carries the URL as its input: a
        # command that leaves channel variables unresolved can tell it apart (config.py).
        kind = info.data.get("type")
        if kind in {"webhook", "alertmanager"} and not is_http_url(value):
            raise ValueError(f"not an http(s) URL (a {kind} channel posts over HTTP)")
        return value

    @model_validator(mode="after")
    def _secret_fits_type(self) -> ChannelConfig:
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
        if self.type == "apprise":
            return f"{self.name} ({self.type} {scheme}://…)"
        # The authority only: a query or fragment right after the host may hold a token too.
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0].rsplit("@", 1)[-1]
        return f"{self.name} ({self.type} {scheme}://{authority})"


class AlertsConfig(AlertPolicy):
    """The whole `alerts:` section: the default policy, mute windows and channels."""

    mute: tuple[MuteWindow, ...] = Field((), strict=False)
    channels: tuple[ChannelConfig, ...] = Field((), strict=False)
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
