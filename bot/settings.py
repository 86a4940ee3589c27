"""The bot's settings, from the environment (prefix ``SEALBOT_``) and ``.env``.

``load_settings`` turns pydantic's validation report into one line naming the setting, which is
what an operator needs when the service refuses to start; ``from_environment`` does the same for
the other parts' settings (``WECHAT_``, ``TELEGRAM_``, ``SUPPORT_``, ...).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from observability.settings_errors import first_problem

DEV_SECRET = "embedded-dev-secret-change-me"

AnySettings = TypeVar("AnySettings", bound=BaseSettings)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks; raises ValueError naming a bad entry."""
    networks: list[Network] = []
    for part in value.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {entry!r}") from exc
    return tuple(networks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SEALBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./var/sealbot.db"
    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8000"
    # Seals sensitive answers at rest; must be set (and kept) in production.
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    # Earlier secret keys (comma-separated), still accepted for reading while
    # ``sealbot rotate-keys`` re-encrypts stored files under the current one.
    old_secret_keys: SecretStr = SecretStr("")
    production: bool = False
    # "embedded": the platform runs in this process (mounted at /platform);
    # "remote": it is a separate service at platform_url.
    platform_mode: Literal["embedded", "remote"] = "embedded"
    platform_url: str = "http://127.0.0.1:8100"
    platform_service_key: SecretStr = SecretStr("embedded-dev-service-key")
    # The embedded platform's own database; defaults to a SQLite file beside the bot's.
    platform_database_url: str | None = None
    # Cross-worker conversation locks: "auto" uses PostgreSQL advisory locks on PostgreSQL and
    # process-local locks on SQLite (one process); "redis" uses redis_url.
    lock_backend: Literal["auto", "local", "postgres", "redis"] = "auto"
    redis_url: str | None = None
    # The event bus that tells the other workers what this one did (a reply delivered, a
    # ticket opened, a platform event): "auto" is Redis pub/sub when redis_url is set, else
    # PostgreSQL LISTEN/NOTIFY on PostgreSQL, else in-process (SQLite: one process).
    bus_backend: Literal["auto", "local", "postgres", "redis"] = "auto"
    # Redis channels of the bus start with this, so several deployments can share a Redis.
    bus_prefix: str = "sealbot:bus:"
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # One JSON object per log line (with request and conversation ids, personal numbers
    # masked) instead of readable text: for log collectors in production.
    log_json: bool = False
    event_poll_seconds: float = Field(default=2.0, gt=0)
    # A web chat's long poll re-reads the database this often besides being woken through the
    # event bus (what a notification lost while the bus reconnects can cost).
    web_poll_sweep_seconds: float = Field(default=2.0, gt=0)
    # A logged-in web chat is logged out after this much inactivity, and after this long at all.
    web_idle_minutes: int = Field(default=30, ge=1)
    web_absolute_hours: int = Field(default=12, ge=1)
    # Files that passed through chats (scans, QR codes) are deleted after this many days; the
    # platform keeps its own copy of every accepted scan under its own retention.
    media_retention_days: int = Field(default=30, ge=1)
    # A data export (导出我的信息) can be downloaded for this many hours, then it is deleted
    # (PIPL: a copy of everything held should not outlive its purpose); 24 at most.
    export_link_hours: int = Field(default=24, ge=1, le=24)
    # Where chat media are kept (``bot.media_storage``): "auto" is the bot's database on
    # PostgreSQL (every worker on every host reads what another stored) and files on SQLite.
    storage_backend: Literal["auto", "local", "database", "s3"] = "auto"
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    # Serves /metrics and the platform's API docs on 127.0.0.1 at this port; in production these
    # are not on the public port at all (0: no admin port).
    admin_port: int = Field(default=0, ge=0, le=65535)
    admin_host: str = "127.0.0.1"
    # Proxies in front of the service (comma-separated addresses or networks): only a request
    # coming from one of them has its X-Forwarded-For read (the web chat's client address).
    trusted_proxies: str = ""

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not (value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("public_base_url", "platform_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def is_https(self) -> bool:
        """Cookies are ``Secure`` and pages send HSTS when the public URL is https."""
        return self.public_base_url.startswith("https://")

    def embedded_platform_database_url(self) -> str:
        return self.platform_database_url or f"sqlite+aiosqlite:///{self.data_dir / 'platform.db'}"

    def check(self) -> None:
        if self.production and self.secret_key.get_secret_value() == DEV_SECRET:
            raise ConfigError("SEALBOT_SECRET_KEY: must be set to a private value in production")
        if self.production and not self.is_https:
            # Passwords are typed on the service's own page: never over plain HTTP.
            raise ConfigError("SEALBOT_PUBLIC_BASE_URL: must be an https:// URL in production")
        if self.production and self.platform_service_key.get_secret_value().startswith("embedded-dev"):
            raise ConfigError("SEALBOT_PLATFORM_SERVICE_KEY: must be set to a private value in production")
        if self.lock_backend == "redis" and not self.redis_url:
            raise ConfigError("SEALBOT_REDIS_URL: required when SEALBOT_LOCK_BACKEND=redis")
        if self.bus_backend == "redis" and not self.redis_url:
            raise ConfigError("SEALBOT_REDIS_URL: required when SEALBOT_BUS_BACKEND=redis")
        if self.bus_backend == "postgres" and not self.database_url.startswith("postgresql"):
            raise ConfigError("SEALBOT_BUS_BACKEND: a postgres bus needs a PostgreSQL SEALBOT_DATABASE_URL")
        if self.storage_backend == "s3" and not (self.s3_endpoint_url and self.s3_bucket):
            raise ConfigError(
                "SEALBOT_S3_ENDPOINT_URL, SEALBOT_S3_BUCKET: required when SEALBOT_STORAGE_BACKEND=s3"
            )
        if self.lock_backend == "postgres" and not self.database_url.startswith("postgresql"):
            raise ConfigError("SEALBOT_LOCK_BACKEND: postgres locks need a PostgreSQL SEALBOT_DATABASE_URL")


def from_environment(cls: type[AnySettings], **overrides: object) -> AnySettings:
    """``cls`` read from the environment and ``.env``; a value that does not validate is one
    ``ConfigError`` naming its variable (the class's ``env_prefix`` and the field), not
    pydantic's report."""
    try:
        # BaseSettings types its keywords as its own init options; these are field values
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(first_problem(exc, cls.model_config.get("env_prefix", ""))) from exc


def load_settings(**overrides: object) -> Settings:
    settings = from_environment(Settings, **overrides)
    settings.check()
    return settings
