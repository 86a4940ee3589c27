"""``sealbot rotate-keys``: re-encrypt stored files under the current secret key.

Run it after setting a new ``SEALBOT_SECRET_KEY`` (and ``PLATFORM_SECRET_KEY``) with the old
ones kept in ``SEALBOT_OLD_SECRET_KEYS`` / ``PLATFORM_OLD_SECRET_KEYS``; the service keeps
running meanwhile (it reads both). Each file is replaced on its own, atomically, so a run
killed halfway (even ``kill -9``) leaves every file readable with the old or the new key, and
running it again finishes the work. Once it reports nothing left, the old secrets can be
dropped. It works on whichever shared store the settings choose (files, database, S3).
"""

from __future__ import annotations

from bot.engine.ports import SystemClock
from bot.media_storage import media_store_for
from bot.settings import Settings
from dbkit.engine import make_engine


async def rotate_keys(settings: Settings) -> dict[str, int]:
    db = make_engine(settings.database_url)
    try:
        counts = {"media": await media_store_for(settings, db, SystemClock()).rotate()}
    finally:
        await db.dispose()
    if settings.platform_mode == "embedded":
        from bot.app import embedded_platform_services
        from seal_platform.storage import ContentBlobStore

        services = await embedded_platform_services(settings)
        try:
            store = services.blob_store
            counts["platform_blobs"] = await store.rotate() if isinstance(store, ContentBlobStore) else 0
            counts["platform_ca"] = await services.ca_store.rotate() if services.ca_store is not None else 0
        finally:
            await services.db.dispose()
    return counts
