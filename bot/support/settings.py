"""Support desk settings, from the environment with the prefix ``SUPPORT_``."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.settings import from_environment


class SupportSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Office hours in ``time_zone``; ``office_days`` are ISO weekdays (1 = Monday).
    time_zone: str = "Asia/Shanghai"
    office_opens: time = time(9, 0)
    office_closes: time = time(18, 0)
    office_days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    # N: a user message unanswered by staff this long is escalated and the user told the wait.
    escalation_minutes: int = Field(default=10, ge=1)
    # M: a conversation with staff (or in the queue) idle this long goes back to the bot.
    idle_handback_minutes: int = Field(default=30, ge=1)
    # For the expected wait shown to users: how long one queued conversation takes on average.
    minutes_per_conversation: int = Field(default=5, ge=1)
    # The staff supergroup (with topics) of the Telegram desk; unset means no Telegram desk.
    telegram_desk_chat_id: int | None = None
    # Offer WeChat's own 客服 system (transfer_customer_service) instead of our inbox.
    wechat_kf_transfer: bool = False
    # Console sessions of support staff.
    session_hours: int = Field(default=12, ge=1, le=24 * 7)
    cookie_secure: bool = False
    # Staff uploads sent to users.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    timer_poll_seconds: float = Field(default=15.0, gt=0)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("office_days")
    @classmethod
    def _weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if not value or not value <= set(range(1, 8)):
            raise ValueError("ISO weekdays 1..7, at least one")
        return value

    @model_validator(mode="after")
    def _opens_before_closes(self) -> SupportSettings:
        if self.office_opens >= self.office_closes:
            raise ValueError("office_opens must be before office_closes")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def load_support_settings(**overrides: object) -> SupportSettings:
    return from_environment(SupportSettings, **overrides)
