"""Which shared store each side uses, from settings: a multi-host deployment on PostgreSQL needs
no storage setting at all (``auto`` is the database), one host on SQLite keeps files, and
``s3`` is only accepted with a bucket to go to."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app import create_app
from bot.engine.ports import SystemClock
from bot.errors import ConfigError
from bot.media_storage import media_store_for
from bot.settings import Settings, load_settings
from dbkit.blobs import LocalBlobBackend, SqlBlobBackend
from dbkit.engine import make_engine
from dbkit.s3 import S3Backend
from seal_platform.clock import SystemClock as PlatformClock
from seal_platform.settings import PlatformSettings
from seal_platform.storage import storage_from_settings
from tests.fixtures.served import free_port, service_settings

PG = "postgresql+asyncpg://sealbot@db.internal:5432/sealbot"


@pytest.mark.parametrize(
    ("url", "backend", "expected"),
    [
        (PG, "auto", SqlBlobBackend),
        ("sqlite+aiosqlite:///{tmp}/bot.db", "auto", LocalBlobBackend),
        ("sqlite+aiosqlite:///{tmp}/bot.db", "database", SqlBlobBackend),
        (PG, "local", LocalBlobBackend),
        (PG, "s3", S3Backend),
    ],
)
async def test_the_bot_keeps_chat_media_where_the_settings_say(
    tmp_path: Path, url: str, backend: str, expected: type
) -> None:
    settings = Settings(
        database_url=url.format(tmp=tmp_path),
        data_dir=tmp_path,
        storage_backend=backend,  # type: ignore[arg-type]
        s3_endpoint_url="http://s3.internal:9000",
        s3_bucket="sealbot",
    )
    engine = make_engine(settings.database_url)
    try:
        store = media_store_for(settings, engine, SystemClock())
        assert isinstance(store.backend, expected)
        assert store.keyring is not None  # sealed whatever the backend
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("url", "backend", "expected"),
    [
        (PG, "auto", SqlBlobBackend),
        ("sqlite+aiosqlite:///{tmp}/platform.db", "auto", LocalBlobBackend),
        (PG, "s3", S3Backend),
    ],
)
async def test_the_platform_keeps_documents_and_the_ca_in_the_same_store(
    tmp_path: Path, url: str, backend: str, expected: type
) -> None:
    settings = PlatformSettings(
        database_url=url.format(tmp=tmp_path),
        data_dir=tmp_path,
        storage_backend=backend,
        s3_endpoint_url="http://s3.internal:9000",
        s3_bucket="docs",
    )
    engine = make_engine(settings.database_url)
    try:
        storage = storage_from_settings(settings, PlatformClock(), engine)
        assert isinstance(storage.documents.blobs.backend, expected)
        assert isinstance(storage.ca.backend, expected)
        assert storage.documents.blobs.keyring is not None
        assert storage.ca.keyring is not None
    finally:
        await engine.dispose()


def test_s3_media_without_a_bucket_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_STORAGE_BACKEND", "s3")
    with pytest.raises(ConfigError, match="SEALBOT_S3_BUCKET"):
        load_settings(s3_access_key=SecretStr("ak"))


def test_the_platform_refuses_a_store_it_cannot_use(tmp_path: Path) -> None:
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/platform.db"
    for settings, problem in (
        (PlatformSettings(database_url=sqlite, storage_backend="database"), "needs a PostgreSQL"),
        (PlatformSettings(database_url=PG, storage_backend="s3"), "PLATFORM_S3_BUCKET"),
    ):
        with pytest.raises(ValueError, match=problem):
            storage_from_settings(settings, PlatformClock(), make_engine(settings.database_url))


async def test_the_service_closes_its_s3_media_client_when_it_stops(tmp_path: Path) -> None:
    settings = service_settings(
        tmp_path,
        free_port(),
        storage_backend="s3",
        s3_endpoint_url="http://s3.internal:9000",
        s3_bucket="sealbot",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        media = app.state.container.engine.media
        assert isinstance(media.backend, S3Backend)
        assert not media.backend.closed
    assert media.backend.closed
