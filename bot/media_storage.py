"""Which shared store holds the chat media, from settings (``SEALBOT_STORAGE_BACKEND``).

- ``local``: files under ``SEALBOT_DATA_DIR/media``, one host (the embedded default);
- ``database``: the ``bot_blobs`` table of the bot's database, so a file stored through one
  worker is read through any other, on any host;
- ``s3``: an S3-compatible bucket (``SEALBOT_S3_*``), under ``media/``;
- ``auto`` (default): ``database`` on PostgreSQL, ``local`` on SQLite.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine.media import SharedMediaStore
from bot.engine.ports import Clock
from bot.engine.tables import blobs
from bot.settings import Settings
from dbkit.blobs import BlobBackend, LocalBlobBackend, SqlBlobBackend, chosen_backend
from dbkit.envelope import Keyring
from dbkit.s3 import S3Backend


def media_keyring(settings: Settings) -> Keyring:
    """The keys of the chat media store (scans pass through it): current and older secrets."""
    return Keyring.from_secrets(
        settings.secret_key.get_secret_value(), settings.old_secret_keys.get_secret_value(), purpose=b"media"
    )


def media_store_for(settings: Settings, db: AsyncEngine, clock: Clock) -> SharedMediaStore:
    backend: BlobBackend
    chosen = chosen_backend(settings.storage_backend, settings.database_url)
    if chosen == "database":
        backend = SqlBlobBackend(db, blobs, "media", now=clock.now)
    elif chosen == "s3":
        backend = S3Backend(
            endpoint_url=settings.s3_endpoint_url,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            now=clock.now,
            prefix="media/",
        )
    else:
        backend = LocalBlobBackend(settings.data_dir / "media")
    return SharedMediaStore(backend, media_keyring(settings), now=clock.now)
