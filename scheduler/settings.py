"""Settings of the timed duties, from the environment (prefix ``SCHEDULER_``) and ``.env``."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The steps of a reminder policy: the chat identity used last (when it can reach the user now),
# an SMS to the account's phone, an e-mail to the account's address.
CHANNELS: tuple[str, ...] = ("chat", "sms", "email")


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCHEDULER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    enabled: bool = True
    # Reminders this many days before a seal expires (SCHEDULER_THRESHOLDS_DAYS='[60,30,7,1]').
    thresholds_days: list[int] = Field(default_factory=lambda: [60, 30, 7, 1])
    # One more reminder the day after expiry.
    remind_after_expiry: bool = True
    # A post-expiry reminder missed by this much more (scheduler down) is no longer sent.
    after_expiry_grace_days: int = Field(default=3, ge=0)
    # The manual: renewal opens 60 days before expiry (must match the platform's rule).
    renewal_window_days: int = Field(default=60, ge=1)
    # The reminder policy, in order (SCHEDULER_CHANNELS='["chat","sms","email"]'); each user may
    # narrow it in the chat (提醒方式).
    channels: list[str] = Field(default_factory=lambda: list(CHANNELS))
    # Reminders go out only between these local times, in this time zone.
    send_window_start: time = time(9, 0)
    send_window_end: time = time(20, 0)
    default_timezone: str = "Asia/Shanghai"
    # A full pass over every due seal at most this often (planning is incremental in between).
    full_sweep_hours: float = Field(default=24.0, gt=0)
    page_size: int = Field(default=500, ge=1, le=1000)
    batch: int = Field(default=100, ge=1)
    lease_seconds: int = Field(default=300, ge=10)
    max_attempts: int = Field(default=6, ge=1)
    backoff_base_seconds: float = Field(default=60.0, gt=0)
    backoff_cap_seconds: float = Field(default=6 * 3600.0, gt=0)
    # While staff own the conversation a reminder waits this long and tries again.
    staff_defer_minutes: int = Field(default=30, ge=1)
    # Job intervals.
    reminders_every_seconds: float = Field(default=60.0, gt=0)
    timeouts_every_seconds: float = Field(default=5.0, gt=0)
    outbox_every_seconds: float = Field(default=10.0, gt=0)
    reconcile_every_seconds: float = Field(default=60.0, gt=0)
    purge_every_seconds: float = Field(default=3600.0, gt=0)
    stale_every_seconds: float = Field(default=600.0, gt=0)
    # Inbound receipts (dedupe records) older than this are deleted: no channel redelivers
    # anything that old (WeChat retries within seconds, Telegram within a day).
    dedupe_retention_days: int = Field(default=30, ge=2)
    # A flow untouched for this long is put aside (answers kept) so the next message is not
    # taken as the answer to a question asked long ago.
    stale_after_hours: float = Field(default=24.0, gt=0)
    # Retention (docs/privacy.md): a conversation nobody wrote in for this long is deleted with
    # its transcript, and delivered replies older than this are deleted in any conversation.
    # The platform's own periods (scans, SMS and login records) are its settings.
    conversation_retention_days: int = Field(default=180, ge=31)
    retention_every_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("thresholds_days")
    @classmethod
    def _positive_distinct(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("at least one threshold")
        if any(days < 1 for days in value):
            raise ValueError("thresholds are days before expiry, 1 or more")
        return sorted(set(value), reverse=True)

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown reminder channels {unknown}; use some of {list(CHANNELS)}")
        return list(dict.fromkeys(value))

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _window_order(self) -> SchedulerSettings:
        if self.send_window_start == self.send_window_end:
            raise ValueError("the send window needs a start and an end that differ")
        return self

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)
