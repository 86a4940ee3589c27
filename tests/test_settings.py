"""A wrong or missing setting stops start-up with one clear line that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import ConfigError
from bot.settings import load_settings


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("SEALBOT_PORT", "eighty", "SEALBOT_PORT"),
        ("SEALBOT_DATABASE_URL", "mysql://root@localhost/x", "SEALBOT_DATABASE_URL"),
        ("SEALBOT_PUBLIC_BASE_URL", "seal.example.com", "SEALBOT_PUBLIC_BASE_URL"),
        ("SEALBOT_LOCK_BACKEND", "zookeeper", "SEALBOT_LOCK_BACKEND"),
    ],
)
def test_a_bad_setting_stops_the_cli_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert named in err


def test_production_needs_its_own_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_PRODUCTION", "true")
    with pytest.raises(ConfigError, match="SEALBOT_SECRET_KEY"):
        load_settings()


def test_redis_locks_need_a_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_LOCK_BACKEND", "redis")
    with pytest.raises(ConfigError, match="SEALBOT_REDIS_URL"):
        load_settings()


async def test_the_embedded_platform_refuses_dev_keys_and_the_placeholder_seller_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import SecretStr

    from bot.app import embedded_platform_services
    from bot.settings import Settings

    base = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        "data_dir": tmp_path,
        "production": True,
        "secret_key": SecretStr("a-real-secret-of-some-length"),
    }
    with pytest.raises(ConfigError, match="PLATFORM_SERVICE_KEY"):
        await embedded_platform_services(Settings(**base))  # type: ignore[arg-type]
    monkeypatch.setenv("PLATFORM_SECRET_KEY", "another-real-secret")
    keyed = Settings(**base, platform_service_key=SecretStr("a-real-service-key"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="PLATFORM_INVOICE_SELLER_TAX_NUMBER"):
        await embedded_platform_services(keyed)
