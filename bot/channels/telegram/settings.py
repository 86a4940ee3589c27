"""Telegram settings, from the environment with the prefix ``TELEGRAM_``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

# The cloud Bot API serves downloads up to 20 MB; a local Bot API server can do more.
CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024
TOKEN_REQUIRED = "TELEGRAM_TOKEN: required when the Telegram channel is enabled"


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELEGRAM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    enabled: bool = False
    token: SecretStr = SecretStr("")
    # "webhook" in production; "polling" for development without a public URL.
    mode: Literal["webhook", "polling"] = "webhook"
    # The public base URL Telegram calls (https, ports 443/80/88/8443); the webhook is
    # <public_url>/telegram/<webhook_path>.
    public_url: str = ""
    # An unguessable path segment and the secret-token header; both must be set for webhooks.
    webhook_path: str = Field(default="hook", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    webhook_secret: SecretStr = SecretStr("")
    # Point the real library at another Bot API server (a local one, or the fake in tests).
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=CLOUD_DOWNLOAD_LIMIT)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Telegram allows about one message per second in a private chat.
    per_chat_interval: float = Field(default=1.0, ge=0)
    polling_timeout: int = Field(default=30, ge=0, le=50)

    @field_validator("api_base_url", "file_base_url", "public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def check(self) -> None:
        """What the enabled channel cannot work without, as one ``ConfigError`` naming it."""
        if not self.token.get_secret_value():
            raise ConfigError(TOKEN_REQUIRED)
        if self.mode == "webhook" and not self.webhook_secret.get_secret_value():
            # The webhook refuses every call that lacks the secret header: without a secret
            # the service would start and never hear from Telegram.
            raise ConfigError("TELEGRAM_WEBHOOK_SECRET: required in webhook mode (TELEGRAM_MODE=webhook)")

    @property
    def webhook_url(self) -> str:
        return f"{self.public_url}/telegram/{self.webhook_path}"
